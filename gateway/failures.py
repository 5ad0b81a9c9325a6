"""How a failed dependency ends a customer's turn: the ``error`` event the customer
sees and the status the call ends with. Pure: no I/O, unit-tested code by code.

The input is always a mapped error (``runtime.peer_errors.from_peer``), so the
codes a client acts on arrive intact; this module only chooses the words and
whether a retry can help, and makes sure no internal name reaches the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from waybill.common.v1 import events_pb2, intent_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from runtime import internal_names, status_codes
from runtime.errors import DomainError
from runtime.peer_errors import PeerError

W = intent_pb2
_TOPIC: dict[intent_pb2.Worker, str] = {
    W.WORKER_POLICY: "policy questions",
    W.WORKER_NEGOTIATION: "refunds, disputes and cancellations",
    W.WORKER_HUMAN: "handing over to a person",
}

RETRYABLE: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
"""Codes where trying the same turn again can succeed."""

# Codes whose meaning the caller acts on: passed on with the peer's reason and,
# when it names nothing internal, the peer's message.
_KEPT_AS_IS = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)

_FIXED_MESSAGES = {
    grpc.StatusCode.DEADLINE_EXCEEDED: "Sorry, that took too long. Please try again.",
    grpc.StatusCode.UNAVAILABLE: (
        "Sorry, part of our system is not answering right now. Please try again."
    ),
    grpc.StatusCode.CANCELLED: "Sorry, that request was interrupted. Please try again.",
    grpc.StatusCode.ABORTED: "Sorry, that clashed with another change. Please try again.",
}
_INTERNAL_MESSAGE = "Sorry, something went wrong on our side. Please try again."
BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
"""The ledger's reason when the paying team's monthly budget cannot cover a turn."""
_BUDGET_MESSAGE = (
    "Sorry, I can't take new requests at the moment. Please try again later or contact us."
)


def public_message(code: grpc.StatusCode, message: str) -> str:
    """``message`` if it is safe to show, else a plain description of ``code``."""
    plain = str(code.name).lower().replace("_", " ")
    return internal_names.public_message(message, fallback=plain) if message else plain


@dataclass(frozen=True, slots=True)
class TurnFailure:
    """How a turn ends after a failure."""

    event: pb.TurnEvent
    """The last event of the stream (``error``)."""
    error: DomainError
    """What the call then ends with: same code and reason, RetryInfo kept."""


def _busy_message(retry_after_s: float | None) -> str:
    if retry_after_s is None or retry_after_s <= 0:
        return "Sorry, we are handling too many requests right now. Please try again shortly."
    seconds = max(1, round(retry_after_s))
    unit = "second" if seconds == 1 else "seconds"
    return (
        f"Sorry, we are handling too many requests right now. Please try again in {seconds} {unit}."
    )


def turn_failure(error: DomainError, *, worker: intent_pb2.Worker | None = None) -> TurnFailure:
    """The ``error`` event and the status for a failure of a dependency of the turn.

    ``worker`` is the worker whose stream failed, None when an earlier step
    (hydration, guardrails, routing) did.
    """
    code = error.code
    reason = error.reason
    domain = error.domain
    metadata = dict(error.metadata)
    retry_after = error.retry_after_s
    if code == grpc.StatusCode.UNIMPLEMENTED:
        topic = _TOPIC.get(worker, "that request") if worker is not None else "that request"
        message = f"Sorry, I can't help with {topic} yet. I can track your shipments."
        if worker is not None:
            # The customer-facing reason of a worker that is not built (clients
            # branch on it); the peer's own reason names what is missing.
            reason, domain, metadata = "WORKER_NOT_AVAILABLE", "", {}
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED and reason == BUDGET_EXHAUSTED:
        message = _BUDGET_MESSAGE
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        message = _busy_message(retry_after)
    elif code in _FIXED_MESSAGES:
        message = _FIXED_MESSAGES[code]
    elif code in _KEPT_AS_IS:
        message = public_message(code, error.message)
    else:
        code = grpc.StatusCode.INTERNAL
        message = _INTERNAL_MESSAGE
        metadata = {}
    status = PeerError(
        code, message, reason=reason, domain=domain, metadata=metadata, retry_after_s=retry_after
    )
    event = pb.TurnEvent(
        error=events_pb2.TurnError(
            code=status_codes.to_proto(code),
            reason=reason,
            message=message,
            retryable=code in RETRYABLE,
        )
    )
    return TurnFailure(event=event, error=status)


def worker_error(turn_error: events_pb2.TurnError) -> TurnFailure:
    """A worker ended its own stream with an ``error`` event: pass it on, words checked."""
    code = status_codes.from_proto(turn_error.code)
    if code in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN):
        code = grpc.StatusCode.INTERNAL
    message = public_message(code, turn_error.message)
    if code == grpc.StatusCode.INTERNAL:
        message = _INTERNAL_MESSAGE
    reason = turn_error.reason or f"WORKER_{code.name}"
    event = pb.TurnEvent(
        error=events_pb2.TurnError(
            code=status_codes.to_proto(code),
            reason=reason,
            message=message,
            retryable=turn_error.retryable,
        )
    )
    return TurnFailure(event=event, error=PeerError(code, message, reason=reason))


def no_result() -> TurnFailure:
    """A worker stream that ended without a result: our bug, not the customer's."""
    return turn_failure(PeerError(grpc.StatusCode.INTERNAL, "no result", reason="WORKER_NO_RESULT"))
