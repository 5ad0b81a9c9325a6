"""JSON Schemas derived from the proto descriptors, as the proto3 JSON mapping writes them.

The contract stays the single source: field names (lowerCamelCase), types
(64-bit integers as strings, enums by name, well-known types in their JSON
forms) and the protovalidate rules the contract declares (patterns, lengths,
ranges, item counts) all come from the descriptors the gateway is built from.
"""

from __future__ import annotations

from typing import Any

import protovalidate
from buf.validate import validate_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor

from runtime.rule_keywords import numeric_keywords, string_keywords

REF_PREFIX = "#/components/schemas/"

_T = FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    _T.TYPE_DOUBLE: {"type": "number"},
    _T.TYPE_FLOAT: {"type": "number"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    _T.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    # The mapping writes 64-bit integers as decimal strings (JavaScript numbers
    # lose precision above 2^53) and reads strings or numbers.
    _T.TYPE_INT64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": r"^[0-9]+$"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": r"^[0-9]+$"},
}

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.BytesValue": {"type": "string", "contentEncoding": "base64"},
    "google.protobuf.DoubleValue": {"type": "number"},
    "google.protobuf.FloatValue": {"type": "number"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "uint32"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
}


# The generated extension handle is typed as a plain FieldDescriptor.
_FIELD_RULES: Any = validate_pb2.field

# Descriptors are typed ``Any`` below: the generated ``DESCRIPTOR`` attributes are
# unions of the pure-Python and the upb descriptor classes.
Desc = Any


def _rules(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    if not options.HasExtension(_FIELD_RULES):
        return None
    rules: validate_pb2.FieldRules = options.Extensions[_FIELD_RULES]
    return rules


def _apply_scalar_rules(schema: dict[str, Any], rules: validate_pb2.FieldRules) -> None:
    """protovalidate string and integer rules as JSON Schema keywords."""
    kind = rules.WhichOneof("type")
    if kind == "string":
        schema.update(string_keywords(rules.string))
    elif kind in {"int32", "uint32", "sint32"}:
        schema.update(numeric_keywords(getattr(rules, kind)))
    elif kind in {"int64", "uint64", "sint64"}:
        # Written as strings: numeric keywords would not apply, so say it in words.
        r = getattr(rules, kind)
        bounds = [
            f"{word} {getattr(r, rule)}"
            for rule, word in (("gte", ">="), ("gt", ">"), ("lte", "<="), ("lt", "<"))
            if r.HasField(rule)
        ]
        if bounds:
            schema["description"] = "value " + " and ".join(bounds)


def required_fields(descriptor: Desc) -> set[str]:
    """Proto names of the fields whose rules reject their default value.

    Leaving such a field out of a JSON body (or a query) is the same as sending
    the default, which the gateway's protovalidate rejects: for a client the
    field is required. Asking protovalidate itself keeps this exact, whatever
    the rule (a pattern that needs a character, a minimum length, an enum
    without UNSPECIFIED, ``required``).
    """
    empty = message_factory.GetMessageClass(descriptor)()
    names: set[str] = set()
    for violation in protovalidate.collect_violations(empty):
        path = violation.proto.field
        if path is not None and len(path.elements) == 1:
            names.add(path.elements[0].field_name)
    return names


class SchemaSet:
    """Component schemas collected while walking messages (each type once)."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, descriptor: Desc) -> dict[str, Any]:
        """A ``$ref`` to the component of a message or enum, building it on first use."""
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages terminate
            if isinstance(descriptor, EnumDescriptor):
                self.components[name] = self._enum(descriptor)
            else:
                self.components[name] = self._message(descriptor)
        return {"$ref": REF_PREFIX + name}

    def message(self, descriptor: Desc, *, omit: tuple[str, ...] = ()) -> dict[str, Any]:
        """An inline schema of a message without the fields in ``omit`` (taken from the URL)."""
        return self._message(descriptor, omit=omit)

    def field(self, descriptor: Desc, name: str) -> dict[str, Any]:
        """The schema of one field of a message, its rules included (a path or query value)."""
        return self._field(descriptor.fields_by_name[name])

    def _enum(self, descriptor: Desc) -> dict[str, Any]:
        return {
            "type": "string",
            "enum": [v.name for v in descriptor.values],
            "x-proto-enum": descriptor.full_name,
        }

    def _message(self, descriptor: Desc, *, omit: tuple[str, ...] = ()) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        properties = {f.json_name: self._field(f) for f in descriptor.fields if f.name not in omit}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            "x-proto-message": descriptor.full_name,
        }
        required = required_fields(descriptor)
        listed = [
            f.json_name for f in descriptor.fields if f.name in required and f.name not in omit
        ]
        if listed:
            schema["required"] = listed
        oneofs = [o for o in descriptor.oneofs if not o.name.startswith("_")]
        if oneofs:
            schema["description"] = "; ".join(
                f"at most one of {', '.join(f.json_name for f in o.fields)} is set" for o in oneofs
            )
        return schema

    def _single(self, field: Desc) -> dict[str, Any]:
        """The schema of one value of ``field`` (ignoring repetition)."""
        if field.type == _T.TYPE_MESSAGE:
            if field.message_type.full_name in _WELL_KNOWN:
                return dict(_WELL_KNOWN[field.message_type.full_name])
            return self.ref(field.message_type)
        if field.type == _T.TYPE_ENUM:
            return self.ref(field.enum_type)
        return dict(_SCALARS[field.type])

    def _field(self, field: Desc) -> dict[str, Any]:
        rules = _rules(field)
        if field.type == _T.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            value = self._single(field.message_type.fields_by_name["value"])
            return {"type": "object", "additionalProperties": value}
        single = self._single(field)
        if rules is not None and "$ref" not in single:
            _apply_scalar_rules(single, rules)
        if rules is not None and rules.WhichOneof("type") == "enum" and "$ref" in single:
            excluded = set(rules.enum.not_in)
            allowed = [v.name for v in field.enum_type.values if v.number not in excluded]
            single = {"allOf": [single], "enum": allowed}
        if not field.is_repeated:
            return single
        schema: dict[str, Any] = {"type": "array", "items": single}
        if rules is not None and rules.WhichOneof("type") == "repeated":
            if rules.repeated.HasField("max_items"):
                schema["maxItems"] = rules.repeated.max_items
            if rules.repeated.HasField("min_items"):
                schema["minItems"] = rules.repeated.min_items
        return schema
