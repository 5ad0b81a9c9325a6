"""JSON Schema compiled from a protobuf message and its protovalidate rules.

The contract is the one source of truth for a tool's arguments: this schema is
what guided decoding constrains a model to, and protovalidate checks the
parsed message again before anything runs (it also checks the CEL rules a
JSON Schema cannot express; their ids and messages go into ``description``).

Mapping: proto field names (as ``json_format.Parse`` accepts them); scalars to
JSON types with string/number/repeated rules (pattern, lengths, bounds,
``in``, ``const``); enums to string enums of their names, without the values
the rules exclude (``not_in: [0]``, ``defined_only``); nested messages
inline; ``google.protobuf.Timestamp`` to an RFC 3339 string. A field is
required when its rules reject the zero value (``required``, ``min_len >= 1``,
a pattern the empty string fails, an enum that excludes 0, a bound above 0).
``additionalProperties`` is false everywhere.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, cast

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from runtime.rule_keywords import numeric_keywords, string_keywords

_INTEGERS = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "sint64",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
}
_NUMBERS = {FieldDescriptor.TYPE_FLOAT: "float", FieldDescriptor.TYPE_DOUBLE: "double"}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
}


def schema_for(descriptor: Any) -> dict[str, Any]:
    """The JSON Schema of a message type (cached per type)."""
    return _message(descriptor.full_name, descriptor)


@cache
def _message(_name: str, descriptor: Descriptor) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in descriptor.fields:
        rules = _rules_of(field)
        properties[field.name] = _field(field, rules)
        if _rejects_zero(field, rules):
            required.append(field.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    options: Any = descriptor.GetOptions().Extensions
    cel = cast(validate_pb2.MessageRules, options[validate_pb2.message]).cel
    if cel:
        schema["description"] = "Also checked: " + "; ".join(
            f"{rule.id} ({rule.message})" for rule in cel
        )
    return schema


def _rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules:
    options: Any = field.GetOptions().Extensions
    return cast(validate_pb2.FieldRules, options[validate_pb2.field])


def _field(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> dict[str, Any]:
    single = _single(field, rules)
    if not _is_repeated(field):
        return single
    schema: dict[str, Any] = {"type": "array", "items": single}
    if rules.HasField("repeated"):
        repeated = rules.repeated
        if repeated.HasField("min_items"):
            schema["minItems"] = repeated.min_items
        if repeated.HasField("max_items"):
            schema["maxItems"] = repeated.max_items
        if repeated.unique:
            schema["uniqueItems"] = True
        if repeated.HasField("items"):
            schema["items"] = _single(field, repeated.items)
    return schema


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _single(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> dict[str, Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        name = field.message_type.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        return _message(name, field.message_type)
    if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return _enum(field.enum_type, rules)
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(rules)
    if kind == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if kind in _INTEGERS:
        return _numeric("integer", rules, _INTEGERS[kind])
    return _numeric("number", rules, _NUMBERS.get(kind, "double"))


def _enum(enum: EnumDescriptor, rules: validate_pb2.FieldRules) -> dict[str, Any]:
    values = list(enum.values)
    if rules.HasField("enum"):
        enum_rules = rules.enum
        if enum_rules.HasField("const"):
            values = [v for v in values if v.number == enum_rules.const]
        if enum_rules.not_in:
            values = [v for v in values if v.number not in enum_rules.not_in]
        if getattr(enum_rules, "in"):
            allowed = set(getattr(enum_rules, "in"))
            values = [v for v in values if v.number in allowed]
    return {"type": "string", "enum": [v.name for v in values]}


def _string(rules: validate_pb2.FieldRules) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if rules.HasField("string"):
        schema.update(string_keywords(rules.string))
    return schema


def _numeric(kind: str, rules: validate_pb2.FieldRules, rule_field: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if rules.HasField(rule_field):
        schema.update(numeric_keywords(getattr(rules, rule_field)))
    return schema


def _rejects_zero(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> bool:
    """Whether the rules refuse the field's zero value (so the field must be present)."""
    if rules.required:
        return True
    if _is_repeated(field):
        return rules.HasField("repeated") and rules.repeated.min_items > 0
    if field.type == FieldDescriptor.TYPE_ENUM and rules.HasField("enum"):
        e = rules.enum
        return 0 in e.not_in or bool(getattr(e, "in") and 0 not in getattr(e, "in"))
    if field.type == FieldDescriptor.TYPE_STRING and rules.HasField("string"):
        s = rules.string
        if s.min_len > 0 or s.len > 0:
            return True
        return s.HasField("pattern") and re.search(s.pattern, "") is None
    rule_field = _INTEGERS.get(field.type) or _NUMBERS.get(field.type)
    if rule_field and rules.HasField(rule_field):
        n = getattr(rules, rule_field)
        return bool((n.HasField("gt") and n.gt >= 0) or (n.HasField("gte") and n.gte > 0))
    return False
