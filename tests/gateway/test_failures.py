"""How a failed dependency ends a turn: the customer's error event and the status."""

from __future__ import annotations

import grpc
import pytest
from waybill.common.v1 import events_pb2, intent_pb2

from gateway.failures import no_result, public_message, turn_failure, worker_error
from runtime import status_codes
from runtime.errors import Aborted
from runtime.internal_names import names_internals
from runtime.peer_errors import PeerError

C = grpc.StatusCode


def _peer(code: grpc.StatusCode, message: str = "peer says", **kw: object) -> PeerError:
    return PeerError(code, message, reason=str(kw.pop("reason", "PEER_REASON")), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (C.NOT_FOUND, False),
        (C.FAILED_PRECONDITION, False),
        (C.PERMISSION_DENIED, False),
        (C.UNAUTHENTICATED, False),
        (C.ALREADY_EXISTS, False),
        (C.ABORTED, True),
        (C.UNAVAILABLE, True),
        (C.DEADLINE_EXCEEDED, True),
        (C.CANCELLED, True),
    ],
)
def test_codes_the_caller_acts_on_keep_code_and_reason(
    code: grpc.StatusCode, retryable: bool
) -> None:
    failure = turn_failure(_peer(code, domain="orders.waybill", metadata={"order_id": "ORD-1"}))
    assert failure.error.code == code
    assert failure.error.reason == "PEER_REASON"
    assert failure.error.domain == "orders.waybill"
    assert failure.event.error.code == status_codes.to_proto(code)
    assert failure.event.error.reason == "PEER_REASON"
    assert failure.event.error.retryable is retryable
    assert failure.event.error.message == failure.error.message


def test_a_kept_code_keeps_the_peers_words_when_they_are_safe() -> None:
    failure = turn_failure(_peer(C.NOT_FOUND, "no such order for this customer"))
    assert failure.error.message == "no such order for this customer"


def test_resource_exhausted_stays_retryable_with_its_retry_info() -> None:
    failure = turn_failure(
        _peer(C.RESOURCE_EXHAUSTED, "budget", reason="BUDGET_EXCEEDED", retry_after_s=2.0),
        worker=intent_pb2.WORKER_TRACKING,
    )
    assert failure.error.code == C.RESOURCE_EXHAUSTED
    assert failure.error.retry_after_s == 2.0
    assert failure.error.reason == "BUDGET_EXCEEDED"
    assert failure.event.error.code == events_pb2.STATUS_CODE_RESOURCE_EXHAUSTED
    assert failure.event.error.retryable
    assert "2 seconds" in failure.event.error.message


def test_an_unbuilt_worker_gets_the_friendly_message() -> None:
    failure = turn_failure(
        _peer(
            C.UNIMPLEMENTED, "WorkerService.RunTurn is not implemented", reason="NOT_IMPLEMENTED"
        ),
        worker=intent_pb2.WORKER_NEGOTIATION,
    )
    assert failure.error.code == C.UNIMPLEMENTED
    assert failure.error.reason == "WORKER_NOT_AVAILABLE"
    assert "refunds" in failure.event.error.message
    assert not failure.event.error.retryable


@pytest.mark.parametrize("code", [C.INTERNAL, C.UNKNOWN, C.DATA_LOSS, C.INVALID_ARGUMENT])
def test_anything_else_is_internal_without_details(code: grpc.StatusCode) -> None:
    failure = turn_failure(_peer(code, "boom at 10.0.0.7:5001", metadata={"x": "y"}))
    assert failure.error.code == C.INTERNAL
    assert failure.error.metadata == {}
    assert "10.0.0.7" not in failure.error.message
    assert not failure.event.error.retryable


@pytest.mark.parametrize(
    "message",
    [
        "failed calling /waybill.orders.v1.OrdersService/GetOrder",
        "OrdersService.GetOrder is not implemented",
        "connect to 127.0.0.1 failed",
        "upstream localhost refused",
        "dial orders:50051",
        "ipv4:127.0.0.1:5001 unreachable",
        "peer [::1] gone",
    ],
)
def test_messages_naming_internals_are_replaced(message: str) -> None:
    assert names_internals(message)
    failure = turn_failure(_peer(C.NOT_FOUND, message))
    assert failure.error.message == "not found"
    assert failure.event.error.message == "not found"
    assert public_message(C.FAILED_PRECONDITION, message) == "failed precondition"


def test_a_plain_message_is_not_mistaken_for_an_internal_name() -> None:
    assert not names_internals("no such order for this customer")
    assert not names_internals("the refund of 12.50 USD was already issued")


def test_a_worker_error_event_is_passed_on_with_its_code() -> None:
    failure = worker_error(
        events_pb2.TurnError(
            code=events_pb2.STATUS_CODE_FAILED_PRECONDITION,
            reason="ORDER_NOT_REFUNDABLE",
            message="this order cannot be refunded",
            retryable=False,
        )
    )
    assert failure.error.code == C.FAILED_PRECONDITION
    assert failure.error.reason == "ORDER_NOT_REFUNDABLE"
    assert failure.event.error.message == "this order cannot be refunded"
    unspecified = worker_error(events_pb2.TurnError(message="from 10.1.1.1:9"))
    assert unspecified.error.code == C.INTERNAL
    assert "10.1.1.1" not in unspecified.event.error.message


def test_a_stream_without_result_and_a_write_conflict() -> None:
    assert no_result().error.code == C.INTERNAL
    assert no_result().error.reason == "WORKER_NO_RESULT"
    conflict = turn_failure(Aborted("changed", reason="SESSION_CONFLICT"))
    assert conflict.error.code == C.ABORTED
    assert conflict.event.error.retryable
