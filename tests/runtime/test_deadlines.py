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
        assert 0.97 < timeout <= 0.990
        assert outgoing_timeout(POLICY, budget_s=0.2) == 0.2
    finally:
        context.deadline.reset(token)


def test_too_little_time_fails_fast() -> None:
    token = context.deadline.set(time.monotonic() + 0.012)
    try:
        with pytest.raises(DeadlineExceeded) as raised:
            outgoing_timeout(POLICY, target="/x.Y/Z")
        assert raised.value.reason == "DEADLINE_TOO_SHORT"
        assert raised.value.metadata["target"] == "/x.Y/Z"
    finally:
        context.deadline.reset(token)
