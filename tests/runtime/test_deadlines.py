import logging
import time

import pytest

from runtime import context
from runtime.deadlines import DeadlinePolicy, outgoing_timeout, time_remaining
from runtime.errors import DeadlineExceeded

POLICY = DeadlinePolicy(margin_s=0.010, min_s=0.005, default_s=3.0)


def test_no_inbound_deadline_uses_the_default() -> None:
    token = context.deadline.set(None)
    try:
        assert time_remaining() is None
        assert outgoing_timeout(POLICY) == 3.0
        assert outgoing_timeout(POLICY, budget_s=0.5) == 0.5
    finally:
        context.deadline.reset(token)


def test_outgoing_timeout_is_remaining_minus_margin() -> None:
    token = context.deadline.set(time.monotonic() + 1.0)
    try:
        timeout = outgoing_timeout(POLICY)
        assert 0.9 < timeout <= 0.990  # a stalled 2-core machine may take a while
        assert outgoing_timeout(POLICY, budget_s=0.2) == 0.2
    finally:
        context.deadline.reset(token)


TARGET = "/waybill.guardrails.v1.GuardrailsService/CheckInput"


def test_too_little_time_fails_fast_naming_no_internal_method(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = context.deadline.set(time.monotonic() + 0.012)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="waybill.deadline"),
            pytest.raises(DeadlineExceeded) as raised,
        ):
            outgoing_timeout(POLICY, target=TARGET)
        error = raised.value
        assert error.reason == "DEADLINE_TOO_SHORT"
        assert set(error.metadata) == {"remaining_ms"}
        float(error.metadata["remaining_ms"])
        for text in (error.message, *error.metadata.values()):
            assert "GuardrailsService" not in text
            assert "/waybill." not in text
        # The target is for operators: in the log line, under the trace id.
        (record,) = [r for r in caplog.records if r.name == "waybill.deadline"]
        assert record.__dict__["target"] == TARGET
    finally:
        context.deadline.reset(token)
