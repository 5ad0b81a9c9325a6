"""Why the pool does not use pybreaker from asyncio (evidence for docs/inference.md).

Each test pins one behaviour of pybreaker 1.4 that breaks a requirement of
the pool. If a future pybreaker changes it, the test fails and the choice
should be revisited.
"""

from __future__ import annotations

import asyncio
import contextlib

import pybreaker


async def _fails() -> None:
    raise ConnectionError("provider down")


async def test_call_with_a_coroutine_function_never_counts_the_failure() -> None:
    breaker = pybreaker.CircuitBreaker(fail_max=1)
    coroutine = breaker.call(_fails)  # returns the coroutine without awaiting it
    assert breaker.fail_counter == 0
    with contextlib.suppress(ConnectionError):
        await coroutine
    assert breaker.fail_counter == 0
    assert breaker.current_state == "closed"


async def test_calling_lets_every_concurrent_caller_through_half_open() -> None:
    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=0)
    try:
        with breaker.calling():
            await _fails()
    except (ConnectionError, pybreaker.CircuitBreakerError):
        pass
    admitted = 0
    gate = asyncio.Event()

    async def probe() -> None:
        nonlocal admitted
        with breaker.calling():
            admitted += 1
            await gate.wait()

    tasks = [asyncio.create_task(probe()) for _ in range(5)]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(*tasks)
    assert admitted == 5  # not one probe: all five hit the recovering backend


async def test_an_excluded_error_counts_as_a_success_and_closes_half_open() -> None:
    breaker = pybreaker.CircuitBreaker(
        fail_max=1, reset_timeout=0, exclude=[lambda e: isinstance(e, asyncio.CancelledError)]
    )
    try:
        with breaker.calling():
            await _fails()
    except (ConnectionError, pybreaker.CircuitBreakerError):
        pass
    try:
        with breaker.calling():
            raise asyncio.CancelledError  # our own cancellation during the probe
    except asyncio.CancelledError:
        pass
    assert breaker.current_state == "closed"  # closed without any successful probe
