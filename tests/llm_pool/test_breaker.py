"""The asyncio circuit breaker: counting, opening, one half-open probe, closing."""

from __future__ import annotations

import asyncio

import pytest

from llm_pool.breaker import BreakerPolicy, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _state(b: CircuitBreaker) -> BreakerState:
    """Read the state afresh (mypy would narrow a property read twice)."""
    return b.state


def _breaker(clock: Clock, **policy: float) -> CircuitBreaker:
    return CircuitBreaker("b", BreakerPolicy(**policy), clock=clock)  # type: ignore[arg-type]


def test_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=3, recovery_s=60)
    for _ in range(2):
        p = b.try_acquire()
        assert p is not None
        p.failure()
    ok = b.try_acquire()
    assert ok is not None
    ok.success()
    assert b.consecutive_failures == 0
    for _ in range(3):
        p = b.try_acquire()
        assert p is not None
        p.failure()
    assert _state(b) is BreakerState.OPEN
    assert b.try_acquire() is None


def test_release_is_neutral() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1)
    p = b.try_acquire()
    assert p is not None
    p.release()
    p.failure()  # a second resolution is ignored
    assert _state(b) is BreakerState.CLOSED


def test_half_open_lets_exactly_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, recovery_s=60)
    first = b.try_acquire()
    assert first is not None
    first.failure()
    clock.now += 59.9
    assert b.try_acquire() is None
    clock.now += 0.2
    assert _state(b) is BreakerState.HALF_OPEN
    probe = b.try_acquire()
    assert probe is not None
    assert probe.probe
    assert b.try_acquire() is None  # the probe is out: everyone else falls back
    probe.success()
    assert _state(b) is BreakerState.CLOSED
    assert b.try_acquire() is not None


def test_failed_probe_reopens_for_a_full_recovery_period() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, recovery_s=10)
    p = b.try_acquire()
    assert p is not None
    p.failure()
    clock.now += 10
    probe = b.try_acquire()
    assert probe is not None
    probe.failure()
    assert _state(b) is BreakerState.OPEN
    clock.now += 9
    assert b.try_acquire() is None
    clock.now += 1
    assert b.try_acquire() is not None


def test_a_released_probe_frees_the_slot_without_closing() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, recovery_s=0)
    p = b.try_acquire()
    assert p is not None
    p.failure()
    probe = b.try_acquire()
    assert probe is not None
    probe.release()  # e.g. the caller was cancelled
    assert _state(b) is BreakerState.HALF_OPEN
    again = b.try_acquire()
    assert again is not None
    assert again.probe


def test_outcomes_from_an_earlier_state_are_ignored() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, recovery_s=10)
    stale_ok = b.try_acquire()
    failing = b.try_acquire()
    assert stale_ok is not None
    assert failing is not None
    failing.failure()
    clock.now += 10
    probe = b.try_acquire()
    assert probe is not None
    stale_ok.success()  # issued while closed: says nothing about the probe
    assert _state(b) is BreakerState.HALF_OPEN
    probe.failure()
    assert _state(b) is BreakerState.OPEN


def test_probe_successes_policy() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, recovery_s=0, probe_successes=3)
    p = b.try_acquire()
    assert p is not None
    p.failure()
    for i in range(3):
        probe = b.try_acquire()
        assert probe is not None
        assert probe.probe
        probe.success()
        expected = BreakerState.CLOSED if i == 2 else BreakerState.HALF_OPEN
        assert _state(b) is expected


@pytest.mark.parametrize("bad", [{"failure_threshold": 0}, {"recovery_s": -1}])
def test_policy_is_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid breaker policy"):
        BreakerPolicy(**bad)  # type: ignore[arg-type]


async def test_concurrent_callers_count_open_probe_once_and_close() -> None:
    """Many coroutines at once: failures counted, opens, one probe in flight, closes."""
    clock = Clock()
    b = _breaker(clock, failure_threshold=5, recovery_s=30)
    healthy = False
    calls = 0
    rejected = 0

    async def call() -> None:
        nonlocal calls, rejected
        permit = b.try_acquire()
        if permit is None:
            rejected += 1
            return
        calls += 1
        await asyncio.sleep(0.01)  # every caller is in flight at the same time
        if healthy:
            permit.success()
        else:
            permit.failure()

    await asyncio.gather(*(call() for _ in range(20)))
    assert calls == 20  # all were admitted while closed...
    assert _state(b) is BreakerState.OPEN  # ...and their failures opened it
    calls = rejected = 0
    await asyncio.gather(*(call() for _ in range(20)))
    assert (calls, rejected) == (0, 20)
    clock.now += 30
    healthy = True
    calls = rejected = 0
    await asyncio.gather(*(call() for _ in range(20)))
    assert (calls, rejected) == (1, 19)  # exactly one half-open probe
    assert _state(b) is BreakerState.CLOSED
    calls = rejected = 0
    await asyncio.gather(*(call() for _ in range(20)))
    assert (calls, rejected) == (20, 0)


async def test_cancelled_probe_does_not_close_or_wedge_the_breaker() -> None:
    clock = Clock()
    b = _breaker(clock, failure_threshold=1, recovery_s=0)
    p = b.try_acquire()
    assert p is not None
    p.failure()
    started = asyncio.Event()

    async def probe() -> None:
        permit = b.try_acquire()
        assert permit is not None
        try:
            started.set()
            await asyncio.sleep(10)
            permit.success()
        finally:
            permit.release()

    task = asyncio.create_task(probe())
    await started.wait()
    assert b.try_acquire() is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _state(b) is BreakerState.HALF_OPEN
    assert b.try_acquire() is not None
