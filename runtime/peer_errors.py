"""The one mapping of errors that come back from a peer.

Every client wrapper (and the server interceptor, for anything a handler lets
escape) turns a failed call into a DomainError here, so a caller three hops up
still sees what it must act on:

- kept as they are, with the peer's ErrorInfo (reason, domain, metadata) and
  RetryInfo: NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED,
  OUT_OF_RANGE, RESOURCE_EXHAUSTED, UNAUTHENTICATED, PERMISSION_DENIED,
  UNIMPLEMENTED;
- kept, retryable: UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED;
- changed: a peer's INVALID_ARGUMENT answers a request *we* built, so it is our
  bug (INTERNAL, reason ``DEPENDENCY_REJECTED_REQUEST``); INTERNAL, UNKNOWN and
  DATA_LOSS stay INTERNAL.

Nothing internal survives the mapping: the new message names neither the peer's
method nor its host (a kept message that does is replaced by the code's plain
words), and ErrorInfo metadata keys that name internals are dropped; all of it
goes to the log, under the trace id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

from runtime.errors import DomainError, details_of, unpack
from runtime.internal_names import names_internals

T = TypeVar("T")

log = logging.getLogger("waybill.peer")

KEPT: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
"""Codes the caller branches on: passed on with the peer's message and details."""
RETRYABLE: frozenset[grpc.StatusCode] = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)
"""Transient codes: passed on; the message says a dependency failed, not which."""

_TRANSIENT_MESSAGES = {
    grpc.StatusCode.UNAVAILABLE: "a dependency is not available; try again",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the request ran out of time",
    grpc.StatusCode.CANCELLED: "the request was cancelled",
}


class PeerError(DomainError):
    """A peer's failure, mapped: the status this service answers with."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str,
        domain: str = "",
        metadata: dict[str, str] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(
            message, reason=reason, domain=domain, metadata=metadata, retry_after_s=retry_after_s
        )
        self.code = code


def _details(
    status: status_pb2.Status | None,
) -> tuple[error_details_pb2.ErrorInfo | None, float | None]:
    info: error_details_pb2.ErrorInfo | None = None
    retry_after: float | None = None
    if status is None:
        return None, None
    for detail in status.details:
        if info is None:
            info = unpack(detail, error_details_pb2.ErrorInfo())
        retry = unpack(detail, error_details_pb2.RetryInfo())
        if retry is not None and retry_after is None:
            retry_after = max(retry.retry_delay.ToNanoseconds() / 1e9, 0.0)
    return info, retry_after


def from_peer(error: grpc.aio.AioRpcError, *, peer: str) -> PeerError:
    """The error to answer with when a call to ``peer`` failed with ``error``."""
    return _mapped(error.code(), error.details() or "", details_of(error), peer=peer)


def from_status(status: status_pb2.Status, *, peer: str) -> PeerError:
    """The error to answer with when ``peer`` answered one operation of a multiplexed
    stream with ``status`` (mapped as a unary call failing with it would be)."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    return _mapped(code, status.message, status, peer=peer)


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _mapped(
    code: grpc.StatusCode, message: str, status: status_pb2.Status | None, *, peer: str
) -> PeerError:
    info, retry_after = _details(status)
    extra = {"peer": peer, "peer_code": code.name, "peer_reason": info.reason if info else ""}
    if code in KEPT:
        plain = code.name.lower().replace("_", " ")
        if names_internals(message):
            log.warning("dependency message names internals", extra={**extra, "detail": message})
            message = plain
        if info is None:
            return PeerError(
                code,
                message or plain,
                reason=f"DEPENDENCY_{code.name}",
                retry_after_s=retry_after,
            )
        return PeerError(
            code,
            message or info.reason,
            reason=info.reason,
            domain=info.domain,
            metadata={k: v for k, v in info.metadata.items() if k not in INTERNAL_METADATA_KEYS},
            retry_after_s=retry_after,
        )
    if code in RETRYABLE:
        log.warning("dependency failed", extra=extra)
        if info is not None and info.reason:
            return PeerError(
                code,
                _TRANSIENT_MESSAGES[code],
                reason=info.reason,
                domain=info.domain,
                metadata={
                    k: v for k, v in info.metadata.items() if k not in INTERNAL_METADATA_KEYS
                },
                retry_after_s=retry_after,
            )
        return PeerError(
            code,
            _TRANSIENT_MESSAGES[code],
            reason=f"DEPENDENCY_{code.name}",
            retry_after_s=retry_after,
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        log.error("dependency rejected our request", extra={**extra, "detail": message})
        return PeerError(
            grpc.StatusCode.INTERNAL,
            "internal error",
            reason="DEPENDENCY_REJECTED_REQUEST",
        )
    log.error("dependency failed unexpectedly", extra={**extra, "detail": message})
    return PeerError(grpc.StatusCode.INTERNAL, "internal error", reason="DEPENDENCY_FAILED")


INTERNAL_METADATA_KEYS = frozenset({"target", "method", "host", "address", "peer"})
"""ErrorInfo metadata keys that would name internals; dropped when passing a status on."""


async def unary(method: Callable[[Any], Awaitable[T]], request: Any, *, peer: str) -> T:
    """``await method(request)``; a failed call leaves as the mapped PeerError."""
    try:
        return await method(request)
    except grpc.aio.AioRpcError as exc:
        raise from_peer(exc, peer=peer) from exc
