"""How a worker's turn that cannot finish ends: one ``error`` event the customer
reads, then the same failure as the stream's status (with its ErrorInfo and
RetryInfo, set by the server interceptor), so a caller that reads events and a
caller that reads the status learn the same thing.
"""

from __future__ import annotations

import grpc
from waybill.common.v1 import events_pb2

from llm_pool.generation import StreamFailed
from runtime import status_codes
from runtime.errors import DomainError

RETRYABLE: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
"""Codes after which the same turn may succeed (RESOURCE_EXHAUSTED: after its delay)."""

_MESSAGES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: "Our order system is busy right now. "
    "Please try again in a moment.",
    grpc.StatusCode.UNAVAILABLE: "Sorry, part of our system is not answering right now. "
    "Please try again.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Sorry, that took too long. Please try again.",
    grpc.StatusCode.NOT_FOUND: "I couldn't find that on your account.",
    grpc.StatusCode.PERMISSION_DENIED: "I'm not able to look that up for you.",
    grpc.StatusCode.UNAUTHENTICATED: "I'm not able to look that up for you.",
}
_GENERIC = "Sorry, something went wrong on our side. Please try again."
STREAM_FAILED_MESSAGE = "Sorry, I couldn't finish that answer. Please try again."


def error_event(error: DomainError, *, message: str = "") -> events_pb2.TurnError:
    """The customer-facing event for ``error`` (its code as the contract enum)."""
    return events_pb2.TurnError(
        code=status_codes.to_proto(error.code),
        reason=error.reason,
        message=message or _MESSAGES.get(error.code, _GENERIC),
        retryable=error.code in RETRYABLE,
    )


def generation_failed(event: StreamFailed) -> DomainError:
    """The status a turn ends with when its answer could not be generated."""
    error = DomainError("the answer could not be generated", reason=event.reason)
    code = getattr(grpc.StatusCode, event.code, None)
    # A backend's own words that are no gRPC code name are our bug to look at.
    known = isinstance(code, grpc.StatusCode) and code != grpc.StatusCode.OK
    error.code = code if known else grpc.StatusCode.INTERNAL
    return error
