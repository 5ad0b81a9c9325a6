"""JSON <-> protobuf through the proto3 JSON mapping (google.protobuf.json_format).

Requests accept both lowerCamelCase and the proto field names, as the mapping
does; responses use lowerCamelCase, enums by name, 64-bit integers as strings,
and every field printed (defaults included) so that clients see a fixed shape.
Field *values* are validated by the gateway (protovalidate), not here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.edge.errors import invalid_argument

M = TypeVar("M", bound=Message)


def _field_names(message: Message, name: str) -> tuple[str, str]:
    """The proto name and the JSON name of field ``name``."""
    descriptor = message.DESCRIPTOR.fields_by_name[name]
    return descriptor.name, descriptor.json_name


def parse_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request body, or 400 naming what is wrong."""
    try:
        value = json.loads(raw)
    except UnicodeDecodeError:
        raise invalid_argument("the body is not UTF-8", reason="MALFORMED_JSON") from None
    except json.JSONDecodeError as exc:
        raise invalid_argument(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            reason="MALFORMED_JSON",
            metadata={"line": str(exc.lineno), "column": str(exc.colno)},
        ) from None
    if not isinstance(value, dict):
        raise invalid_argument(
            f"the body must be a JSON object, not {type(value).__name__}",
            reason="MALFORMED_JSON",
        )
    return value


def to_message(
    values: Mapping[str, Any], message_type: type[M], *, from_path: Mapping[str, str] | None = None
) -> M:
    """``values`` parsed into ``message_type``; ``from_path`` fields come from the URL.

    A path field repeated in ``values`` with another value is a 400: which one
    was meant cannot be guessed.
    """
    message = message_type()
    merged = dict(values)
    for name, value in (from_path or {}).items():
        proto_name, json_name = _field_names(message, name)
        for key in (proto_name, json_name):
            if key in merged and merged[key] != value:
                raise invalid_argument(
                    f"{key} in the body ({merged[key]!r}) differs from the URL ({value!r})",
                    reason="FIELD_CONFLICT",
                    field_path=proto_name,
                )
            merged.pop(key, None)
        merged[json_name] = value
    try:
        json_format.ParseDict(merged, message)
    except json_format.ParseError as exc:
        # ParseError names the field and the message type; no request content.
        raise invalid_argument(
            f"does not match {message.DESCRIPTOR.full_name}: {exc}".split("\n", 1)[0],
            reason="INVALID_JSON_FIELD",
            metadata={"message_type": message.DESCRIPTOR.full_name},
        ) from None
    return message


def from_query(
    params: Mapping[str, str], message_type: type[M], *, allowed: tuple[str, ...]
) -> dict[str, Any]:
    """Query parameters (``allowed`` proto field names, in either spelling) as JSON values."""
    descriptor = message_type.DESCRIPTOR
    spellings: dict[str, str] = {}
    for name in allowed:
        fd = descriptor.fields_by_name[name]
        spellings[fd.name] = fd.json_name
        spellings[fd.json_name] = fd.json_name
    values: dict[str, Any] = {}
    for key, value in params.items():
        if key not in spellings:
            raise invalid_argument(
                f"unknown query parameter {key!r}; allowed: {', '.join(sorted(set(spellings)))}",
                reason="UNKNOWN_QUERY_PARAMETER",
                field_path=key,
            )
        values[spellings[key]] = value
    return values


def to_dict(message: Message) -> dict[str, Any]:
    """A message as proto3 JSON values (every field printed)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def to_json(message: Message) -> str:
    """A message as one line of proto3 JSON."""
    return json.dumps(to_dict(message), separators=(",", ":"), ensure_ascii=False)
