"""Pool decisions with scripted backends of the pool's own interface (no server needed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from llm_pool.composer import Composer
from llm_pool.errors import BackendError, ErrorKind
from llm_pool.generation import (
    AnswerPlan,
    Finished,
    GenerationEvent,
    GenerationRequest,
    Prompt,
    StreamFailed,
    TextDelta,
)
from llm_pool.pool import LinkOptions, LLMPool
from llm_pool.retry import RetryPolicy
from runtime import context
from workers.tracking.templates import TEMPLATES


class Scripted:
    """Raises the scripted errors in turn, then streams two deltas."""

    kind = "triton"
    model = "scripted"

    def __init__(self, *errors: BackendError) -> None:
        self.name = "primary"
        self.errors = list(errors)
        self.calls: list[float | None] = []

    async def stream(
        self, request: GenerationRequest, *, timeout_s: float | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        self.calls.append(timeout_s)
        if self.errors:
            raise self.errors.pop(0)
        yield TextDelta("a")
        yield TextDelta("b")
        yield Finished("triton", "scripted", 3, 2, 10, "stop", usage_source="server")


def _error(code: str, kind: ErrorKind) -> BackendError:
    return BackendError("boom", code=code, reason="X", kind=kind)


def _request() -> GenerationRequest:
    return GenerationRequest(
        use_case="tracking",
        prompt=Prompt("i", "c", message="m"),
        plan=AnswerPlan("tracking.not_found", {"ref": "WB0000000000"}),
    )


def _pool(
    backend: Scripted, *, sleeps: list[float] | None = None, real_sleep: bool = False
) -> LLMPool:
    async def sleep(s: float) -> None:
        if sleeps is not None:
            sleeps.append(s)
        if real_sleep:
            await asyncio.sleep(s)

    return LLMPool(
        [backend, Composer(TEMPLATES)],
        {"tracking": ["primary", "composer"]},
        options={"primary": LinkOptions(timeout_s=5, min_attempt_s=0.05)},
        retry=RetryPolicy(attempts=3, base_s=0.1, max_s=1),
        sleep=sleep,
    )


async def _run(pool: LLMPool) -> list[GenerationEvent]:
    return [e async for e in pool.stream(_request())]


async def test_retries_back_off_then_succeed() -> None:
    sleeps: list[float] = []
    backend = Scripted(
        _error("UNAVAILABLE", ErrorKind.PROVIDER), _error("INTERNAL", ErrorKind.PROVIDER)
    )
    events = await _run(_pool(backend, sleeps=sleeps))
    final = events[-1]
    assert isinstance(final, Finished)
    assert (final.backend_id, final.attempts) == ("primary", 3)
    assert len(sleeps) == 2
    assert 0.05 <= sleeps[0] <= 0.15
    assert 0.1 <= sleeps[1] <= 0.3


async def test_request_errors_fall_back_at_once_without_counting() -> None:
    backend = Scripted(_error("INVALID_ARGUMENT", ErrorKind.REQUEST))
    pool = _pool(backend)
    events = await _run(pool)
    assert isinstance(events[-1], Finished)
    assert events[-1].backend_id == "composer"
    assert len(backend.calls) == 1
    assert pool.breaker("primary").consecutive_failures == 0


async def test_the_callers_deadline_bounds_each_attempt_and_the_retries() -> None:
    sleeps: list[float] = []
    backend = Scripted(*[_error("UNAVAILABLE", ErrorKind.PROVIDER)] * 3)
    token = context.deadline.set(time.monotonic() + 0.2)
    try:
        events = await _run(_pool(backend, sleeps=sleeps, real_sleep=True))
    finally:
        context.deadline.reset(token)
    timeout = backend.calls[0]
    assert timeout is not None
    assert timeout < 0.2
    assert isinstance(events[-1], Finished)
    assert events[-1].backend_id == "composer"
    assert sum(sleeps) < 0.2  # no backoff ran past the deadline


async def test_a_timeout_set_by_the_callers_deadline_ends_the_turn_uncounted() -> None:
    backend = Scripted(_error("DEADLINE_EXCEEDED", ErrorKind.PROVIDER))
    pool = _pool(backend)
    token = context.deadline.set(time.monotonic() + 1.0)
    try:
        events = await _run(pool)
    finally:
        context.deadline.reset(token)
    final = events[-1]
    assert isinstance(final, StreamFailed)
    assert final.code == "DEADLINE_EXCEEDED"
    assert pool.breaker("primary").consecutive_failures == 0


async def test_an_expired_deadline_fails_fast() -> None:
    backend = Scripted()
    token = context.deadline.set(time.monotonic() - 1)
    try:
        events = await _run(_pool(backend))
    finally:
        context.deadline.reset(token)
    assert len(events) == 1
    assert isinstance(events[0], StreamFailed)
    assert events[0].code == "DEADLINE_EXCEEDED"
    assert backend.calls == []


async def test_unknown_use_case_uses_the_default_chain() -> None:
    pool = LLMPool([Composer(TEMPLATES)], {}, default_chain=["composer"])
    request = GenerationRequest(
        use_case="other", prompt=Prompt("i", "c"), plan=AnswerPlan("tracking.no_orders")
    )
    events = [e async for e in pool.stream(request)]
    assert isinstance(events[-1], Finished)
