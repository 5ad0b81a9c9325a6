"""gRPC status codes as contract data (``waybill.common.v1.StatusCode``) and back.

The enum names are ``STATUS_CODE_`` + the gRPC code name, so the two convert by
name; code that branches on an outcome compares enum values, never strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import grpc
from waybill.common.v1 import events_pb2

_PREFIX = "STATUS_CODE_"
# The generated stubs type enum values as the enum class itself.
if TYPE_CHECKING:
    StatusCodeValue: TypeAlias = events_pb2.StatusCode
else:
    StatusCodeValue = events_pb2.StatusCode.ValueType


def to_proto(code: grpc.StatusCode) -> StatusCodeValue:
    """The contract value of a gRPC status code."""
    value: StatusCodeValue = events_pb2.StatusCode.Value(_PREFIX + code.name)  # type: ignore[assignment]
    return value


def from_proto(value: StatusCodeValue) -> grpc.StatusCode:
    """The gRPC status code of a contract value; UNSPECIFIED or unknown -> UNKNOWN."""
    try:
        name = events_pb2.StatusCode.Name(value).removeprefix(_PREFIX)
    except ValueError:
        return grpc.StatusCode.UNKNOWN
    code: grpc.StatusCode = getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)
    return code


def short_name(value: StatusCodeValue) -> str:
    """``OK``, ``UNAVAILABLE``...: the gRPC name of a contract value, for people."""
    return str(from_proto(value).name)
