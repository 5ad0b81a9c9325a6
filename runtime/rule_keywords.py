"""protovalidate field rules as JSON Schema keywords.

Both JSON Schemas the platform derives from its contracts (the REST edge's
OpenAPI document and the tool schemas of guided decoding) read the same rules
the same way; only the surrounding shape differs.
"""

from __future__ import annotations

from typing import Any

_BOUNDS = (
    ("gt", "exclusiveMinimum"),
    ("gte", "minimum"),
    ("lt", "exclusiveMaximum"),
    ("lte", "maximum"),
    ("const", "const"),
)


def string_keywords(rules: Any) -> dict[str, Any]:
    """Keywords for ``buf.validate.StringRules``."""
    schema: dict[str, Any] = {}
    if rules.HasField("pattern"):
        schema["pattern"] = rules.pattern
    if rules.HasField("min_len"):
        schema["minLength"] = rules.min_len
    if rules.HasField("max_len"):
        schema["maxLength"] = rules.max_len
    if rules.HasField("len"):
        schema["minLength"] = schema["maxLength"] = rules.len
    if rules.HasField("const"):
        schema["const"] = rules.const
    if getattr(rules, "in"):
        schema["enum"] = list(getattr(rules, "in"))
    if rules.HasField("email"):
        schema["format"] = "email"
    if rules.HasField("uuid"):
        schema["format"] = "uuid"
    return schema


def numeric_keywords(rules: Any) -> dict[str, Any]:
    """Keywords for the numeric rule messages (``Int32Rules``, ``DoubleRules``, ...)."""
    schema: dict[str, Any] = {
        keyword: getattr(rules, name) for name, keyword in _BOUNDS if rules.HasField(name)
    }
    if getattr(rules, "in"):
        schema["enum"] = list(getattr(rules, "in"))
    return schema
