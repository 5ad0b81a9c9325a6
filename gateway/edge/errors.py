"""gRPC status -> HTTP status, and the one error body every failure is answered with:

``{"error": {"code": <HTTP status>, "message": str, "status": <gRPC code name>,
"details": [<google.rpc detail as proto3 JSON, with "@type">...]}}``

The mapping is google.rpc's (code.proto), with two deliberate choices:
FAILED_PRECONDITION is 409, not 400 (the request was well formed; the state of
the session forbids it now), and CANCELLED is 499 (client closed request).
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2, status_pb2

from runtime.errors import details_of
from runtime.internal_names import names_internals
from runtime.peer_errors import INTERNAL_METADATA_KEYS

log = logging.getLogger("waybill.edge")

EDGE_DOMAIN = "edge.waybill"
"""ErrorInfo domain of errors the edge itself raises."""

HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# When the gateway sent no rich status the failure was produced by the edge's own
# gRPC client (connection refused, local deadline): its text names internal
# addresses, so the caller gets a plain message instead.
_LOCAL_MESSAGES: Mapping[grpc.StatusCode, tuple[str, str]] = {
    grpc.StatusCode.UNAVAILABLE: ("the gateway is not available", "GATEWAY_UNAVAILABLE"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (
        "the request timed out before the gateway answered",
        "DEADLINE_EXCEEDED",
    ),
    grpc.StatusCode.CANCELLED: ("the request was cancelled", "CANCELLED"),
}


@dataclass(frozen=True, slots=True)
class HttpError:
    """A failure as the HTTP caller sees it."""

    http_status: int
    status: str
    """gRPC code name (``INVALID_ARGUMENT``)."""
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers (``Retry-After``)."""

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}``."""
        return {
            "error": {
                "code": self.http_status,
                "message": self.message,
                "status": self.status,
                "details": self.details,
            }
        }

    def json_bytes(self) -> bytes:
        """The body, serialized."""
        return json.dumps(self.body(), separators=(",", ":")).encode()


class EdgeError(Exception):
    """A request the edge refuses before (or instead of) calling the gateway."""

    def __init__(
        self,
        http_status: int,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str,
        metadata: Mapping[str, str] | None = None,
        violations: list[tuple[str, str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.violations = violations or []
        """(field, reason/rule id, description) for a BadRequest detail."""

    def to_http(self) -> HttpError:
        """The body and status this refusal is answered with."""
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=EDGE_DOMAIN, metadata=self.metadata
        )
        details = [_detail_json(_pack(info))]
        if self.violations:
            bad = error_details_pb2.BadRequest()
            for path, reason, description in self.violations:
                bad.field_violations.add(field=path, reason=reason, description=description)
            details.append(_detail_json(_pack(bad)))
        return HttpError(self.http_status, self.code.name, self.message, details)


def invalid_argument(
    message: str, *, reason: str, field_path: str = "", metadata: Mapping[str, str] | None = None
) -> EdgeError:
    """400 INVALID_ARGUMENT naming the offending field, if any."""
    violations = [(field_path, reason, message)] if field_path else None
    return EdgeError(
        400,
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        reason=reason,
        metadata=metadata,
        violations=violations,
    )


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _detail_json(detail: any_pb2.Any) -> dict[str, Any]:
    """A packed detail as proto3 JSON (``{"@type": ..., ...}``)."""
    try:
        return json_format.MessageToDict(detail)
    except (TypeError, KeyError, json_format.Error):
        # A detail type this process does not know: keep it, opaque but intact.
        return {"@type": detail.type_url, "value": base64.b64encode(detail.value).decode()}


def _retry_after(status: status_pb2.Status) -> str | None:
    """``Retry-After`` seconds from a RetryInfo detail (rounded up)."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            seconds = info.retry_delay.ToNanoseconds() / 1e9
            return str(max(0, math.ceil(seconds)))
    return None


def _plain(code: grpc.StatusCode) -> str:
    return f"the request failed ({code.name.lower().replace('_', ' ')})"


def _public_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """A detail as the caller may see it: ErrorInfo metadata naming internals is dropped."""
    if not str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
        return detail
    metadata = detail.get("metadata")
    if isinstance(metadata, dict):
        detail["metadata"] = {
            k: v
            for k, v in metadata.items()
            if k not in INTERNAL_METADATA_KEYS and not names_internals(f"{k} {v}")
        }
    return detail


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    """The HTTP error for a failed gateway call, details carried over from its rich status.

    The edge is the public boundary: a message or ErrorInfo metadata that names
    a method, a service, an address or a stack trace never reaches the caller
    (the original is logged under the request id instead).
    """
    code = error.code()
    http_status = HTTP_STATUS.get(code, 500)
    rich = details_of(error)
    if rich is None:
        # The transport's own text (connection refused, local deadline) names
        # addresses: the caller gets plain words.
        log.info("gateway call failed", extra={"grpc_status": code.name, "detail": error.details()})
        message, reason = _LOCAL_MESSAGES.get(code, (_plain(code), code.name))
        info = error_details_pb2.ErrorInfo(
            reason=reason, domain=EDGE_DOMAIN, metadata={"grpc_status": code.name}
        )
        return HttpError(http_status, code.name, message, [_detail_json(_pack(info))])
    message = rich.message or error.details() or ""
    if names_internals(message):
        log.warning(
            "gateway status names internals", extra={"grpc_status": code.name, "detail": message}
        )
        message = _plain(code)
    details = [_public_detail(_detail_json(d)) for d in rich.details]
    headers: dict[str, str] = {}
    if (after := _retry_after(rich)) is not None:
        headers["Retry-After"] = after
    return HttpError(http_status, code.name, message or _plain(code), details, headers)


def not_found_route(path: str) -> HttpError:
    """404 for a path the edge does not serve."""
    return EdgeError(
        404, grpc.StatusCode.NOT_FOUND, f"no route {path}", reason="NO_ROUTE"
    ).to_http()


def internal() -> HttpError:
    """500 for a bug in the edge (never its details)."""
    return EdgeError(
        500, grpc.StatusCode.INTERNAL, "internal error in the edge", reason="INTERNAL"
    ).to_http()
