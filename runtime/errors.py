"""Domain errors and their one mapping to gRPC status with a single ErrorInfo.

Domain code raises these; the server interceptor turns them into a status whose
details carry exactly one ``google.rpc.ErrorInfo`` (plus RetryInfo or BadRequest
where the caller needs them). Choose the class by what the caller should do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2


class DomainError(Exception):
    """Base of every error a handler raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.retry_after_s = retry_after_s


class InvalidArgument(DomainError):
    """The caller must fix the input."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    """The thing does not exist for this caller (or exists for someone else)."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(DomainError):
    """The current state forbids it (e.g. refund before confirmation)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DomainError):
    """A conflict: retry the whole sequence."""

    code = grpc.StatusCode.ABORTED


class PermissionDenied(DomainError):
    """Authenticated, but not allowed."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    """No valid credential."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    """A limit or budget is exhausted; retry after the given time, if any."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    """A dependency is down; retryable."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(DomainError):
    """Too little time remains to do the work."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unimplemented(DomainError):
    """The contract exists, the implementation does not yet."""

    code = grpc.StatusCode.UNIMPLEMENTED


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One violated validation rule."""

    field: str
    """Dotted path of the field, empty for message-level rules."""
    rule_id: str
    """The rule's id, e.g. ``string.pattern`` or ``refund.amount_lte_order_total``."""
    description: str
    """Human-readable description."""


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def status_for(error: DomainError, *, default_domain: str) -> status_pb2.Status:
    """The google.rpc.Status for a domain error."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=error.domain or default_domain, metadata=error.metadata
    )
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    status.details.append(_pack(info))
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_s * 1e9))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status


def status_for_violations(
    violations: Iterable[FieldViolation], *, domain: str, message_type: str
) -> status_pb2.Status:
    """INVALID_ARGUMENT with a BadRequest listing every violation and one ErrorInfo."""
    items = list(violations)
    bad = error_details_pb2.BadRequest()
    for v in items:
        bad.field_violations.add(field=v.field, description=v.description, reason=v.rule_id)
    first = items[0]
    where = f"{first.field}: " if first.field else ""
    message = f"invalid {message_type}: {where}{first.description} [{first.rule_id}]"
    if len(items) > 1:
        message += f" (and {len(items) - 1} more)"
    info = error_details_pb2.ErrorInfo(
        reason="VALIDATION_FAILED",
        domain=domain,
        metadata={"rule_ids": ",".join(v.rule_id for v in items), "message_type": message_type},
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message)
    status.details.append(_pack(info))
    status.details.append(_pack(bad))
    return status


STATUS_DETAILS_KEY = "grpc-status-details-bin"
_M = TypeVar("_M", bound=Message)


def status_in(details: bytes) -> status_pb2.Status | None:
    """The google.rpc.Status serialized in ``details``; None when it does not parse.

    The bytes come from a peer: a malformed trailer must not turn the mapping
    of its failure into a crash of our own.
    """
    try:
        return status_pb2.Status.FromString(details)
    except DecodeError:
        return None


def details_of(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The rich status a peer attached to a failed call, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_in(value)
    return None


def unpack(detail: any_pb2.Any, message: _M) -> _M | None:
    """``detail`` unpacked into ``message`` when it holds that type and parses."""
    descriptor: Any = message.DESCRIPTOR  # the pure-Python and upb descriptor classes differ
    if not detail.Is(descriptor):
        return None
    try:
        detail.Unpack(message)
    except DecodeError:
        return None
    return message


def _first_error_info(status: status_pb2.Status | None) -> error_details_pb2.ErrorInfo | None:
    if status is None:
        return None
    for detail in status.details:
        info = unpack(detail, error_details_pb2.ErrorInfo())
        if info is not None:
            return info
    return None


def error_info_in(details: bytes) -> error_details_pb2.ErrorInfo | None:
    """The first ErrorInfo of a serialized google.rpc.Status, if any."""
    return _first_error_info(status_in(details))


def error_info_of(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo a peer attached to a failed call, if any."""
    return _first_error_info(details_of(error))


def violations_of(error: grpc.aio.AioRpcError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The field violations of an INVALID_ARGUMENT reply."""
    status = details_of(error)
    found: list[error_details_pb2.BadRequest.FieldViolation] = []
    if status is None:
        return found
    for detail in status.details:
        bad = unpack(detail, error_details_pb2.BadRequest())
        if bad is not None:
            found.extend(bad.field_violations)
    return found
