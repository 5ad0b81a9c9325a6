"""The example client's reading of a failed call's google.rpc.Status, from statuses built
here the way the platform builds them (runtime.errors)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import status_pb2

from examples.order_status_client.order_status_client.rich_errors import (
    RichError,
    Violation,
    read_error,
)
from runtime.errors import (
    STATUS_DETAILS_KEY,
    FieldViolation,
    ResourceExhausted,
    status_for,
    status_for_violations,
)


@dataclass
class FailedCall(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What a stub raises: an RpcError that is also the call."""

    status_code: grpc.StatusCode
    message: str
    trailers: tuple[tuple[str, str | bytes], ...]

    def code(self) -> grpc.StatusCode:
        return self.status_code

    def details(self) -> str:
        return self.message

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self.trailers


def _failed(status: status_pb2.Status, *, message: str | None = None) -> FailedCall:
    code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
    details = ((STATUS_DETAILS_KEY, status.SerializeToString()),)
    return FailedCall(code, status.message if message is None else message, details)


def test_retry_info_and_error_info_are_read() -> None:
    error = ResourceExhausted(
        "busy", reason="BUDGET_EXCEEDED", metadata={"tenant": "acme"}, retry_after_s=1.5
    )
    read = read_error(_failed(status_for(error, default_domain="ledger.waybill")))
    assert read == RichError(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        message="busy",
        reason="BUDGET_EXCEEDED",
        domain="ledger.waybill",
        metadata={"tenant": "acme"},
        retry_delay_s=1.5,
    )
    assert "[error] retry after 1.5s" in read.lines()


def test_every_field_violation_is_read_with_its_rule_id() -> None:
    status = status_for_violations(
        [
            FieldViolation("session_id", "string.pattern", "does not match"),
            FieldViolation("", "refund.amount_lte_order_total", "too much"),
        ],
        domain="gateway.waybill",
        message_type="waybill.gateway.v1.ConverseRequest",
    )
    read = read_error(_failed(status))
    assert read.code == grpc.StatusCode.INVALID_ARGUMENT
    assert read.reason == "VALIDATION_FAILED"
    assert read.violations == (
        Violation("session_id", "string.pattern", "does not match"),
        Violation("", "refund.amount_lte_order_total", "too much"),
    )
    assert read.retry_delay_s is None
    assert "[error] violation (message) [refund.amount_lte_order_total]: too much" in read.lines()


def test_a_call_without_details_keeps_its_code_and_message() -> None:
    read = read_error(FailedCall(grpc.StatusCode.UNAVAILABLE, "connection refused", ()))
    assert read == RichError(code=grpc.StatusCode.UNAVAILABLE, message="connection refused")


def test_details_that_disagree_with_the_call_are_not_trusted() -> None:
    error = ResourceExhausted("busy", reason="BUDGET_EXCEEDED", retry_after_s=1.0)
    status = status_for(error, default_domain="ledger.waybill")
    read = read_error(_failed(status, message="something else"))
    assert read == RichError(code=grpc.StatusCode.RESOURCE_EXHAUSTED, message="something else")
