"""The Triton backend and the pool against a real Triton server (CPU test model)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import tritonclient.grpc.aio as triton_aio  # type: ignore[import-untyped, unused-ignore]

from cli.triton import TritonServer, free_port
from llm_pool import pricing
from llm_pool.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from llm_pool.composer import Composer
from llm_pool.generation import (
    AnswerPlan,
    Finished,
    GenerationEvent,
    GenerationRequest,
    Prompt,
    StreamFailed,
    TextDelta,
    ToolPayload,
    ToolSpec,
)
from llm_pool.pool import LinkOptions, LLMPool
from llm_pool.retry import RetryPolicy
from llm_pool.triton import TritonBackend
from runtime import context
from tests.llm_pool.conftest import events_for, wait_event
from workers.tracking.templates import TEMPLATES

FACTS = {
    "awb": "WB1234567890",
    "eta": "by Tue 12 Nov",
    "last_event": "Departed hub",
    "last_location": "Dallas",
    "last_time": "Mon 11 Nov 09:00 UTC",
    "status": "in_transit",
    "title": "Desk lamp",
}
EXPECTED = (
    "Here is what I found. Awb: WB1234567890. Eta: by Tue 12 Nov. Last event: Departed hub."
    " Last location: Dallas. Last time: Mon 11 Nov 09:00 UTC. Status: in_transit."
    " Title: Desk lamp."
)


def _request(message: str = "where is my parcel?", **kwargs: object) -> GenerationRequest:
    return GenerationRequest(
        use_case="tracking",
        prompt=Prompt(instructions="be brief", context_block="[CONTEXT v1]", message=message),
        plan=AnswerPlan("tracking.status", FACTS),
        **kwargs,  # type: ignore[arg-type]
    )


def breaker_state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


class Clock:
    """A breaker clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pool(
    address: str,
    *,
    breaker: BreakerPolicy | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock | None = None,
) -> LLMPool:
    backend = TritonBackend(name="triton-small", url=address, served_model="waybill-cpu-test")
    return LLMPool(
        [backend, Composer(TEMPLATES)],
        {"tracking": ["triton-small", "composer"]},
        options={
            "triton-small": LinkOptions(
                timeout_s=10, min_attempt_s=0.01, breaker=breaker or BreakerPolicy()
            )
        },
        retry=retry or RetryPolicy(attempts=3, base_s=0.01, max_s=0.02),
        prices=pricing.load(),
        clock=clock or time.monotonic,
    )


@contextmanager
def request_id(value: str | None = None) -> Iterator[str]:
    rid = value or f"test-{secrets.token_hex(6)}"
    token = context.request_id.set(rid)
    try:
        yield rid
    finally:
        context.request_id.reset(token)


@contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    token = context.deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        context.deadline.reset(token)


async def _collect(pool: LLMPool, request: GenerationRequest) -> list[GenerationEvent]:
    return [event async for event in pool.stream(request)]


def _text(events: list[GenerationEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_streamed_deltas_assemble_to_the_full_text(
    triton_server: TritonServer, triton_events: Path
) -> None:
    pool = _pool(triton_server.address)
    try:
        with request_id() as rid:
            events = await _collect(pool, _request())
    finally:
        await pool.close()
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 5  # one response per token
    assert _text(events) == EXPECTED
    final = events[-1]
    assert isinstance(final, Finished)
    assert (final.backend, final.backend_id, final.model) == (
        "triton",
        "triton-small",
        "waybill-cpu-test",
    )
    # Costed from what the server reported per streamed response.
    assert final.usage_source == "server"
    assert final.output_tokens == len(deltas)
    assert final.input_tokens > 0
    assert final.finish_reason == "stop"
    assert final.charge is not None
    assert final.charge.price_version == pricing.load().version
    assert wait_event(triton_events, rid) == {
        "request_id": rid,
        "outcome": "completed",
        "tokens": len(deltas),
    }


async def test_max_tokens_and_stop_words_reach_the_model(triton_server: TritonServer) -> None:
    pool = _pool(triton_server.address)
    try:
        capped = await _collect(pool, _request(max_tokens=4))
        stopped = await _collect(pool, _request(stop=(" Last",)))
    finally:
        await pool.close()
    assert _text(capped) == "Here is what I"
    final = capped[-1]
    assert isinstance(final, Finished)
    assert (final.output_tokens, final.finish_reason) == (4, "length")
    assert _text(stopped) == "Here is what I found. Awb: WB1234567890. Eta: by Tue 12 Nov."


async def test_tool_payload_uses_guided_decoding_with_the_schema(
    triton_server: TritonServer,
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "awb": {"type": "string", "pattern": "^WB[0-9]{10}$"},
            "region": {"type": "string", "pattern": "^[A-Z]{2}$"},
        },
        "required": ["awb", "region"],
        "additionalProperties": False,
    }
    pool = _pool(triton_server.address)
    try:
        events = await _collect(pool, _request(tool=ToolSpec("get_eta", schema)))
    finally:
        await pool.close()
    assert not [e for e in events if isinstance(e, TextDelta)]  # no tool JSON as answer text
    payload = events[0]
    assert isinstance(payload, ToolPayload)
    assert payload.tool == "get_eta"
    # The model took the AWB from the facts; the grammar forced a valid region.
    assert json.loads(payload.arguments) == {"awb": "WB1234567890", "region": "AA"}
    assert isinstance(events[-1], Finished)


async def test_deadline_expiry_stops_the_request_on_the_server(
    triton_server: TritonServer, triton_events: Path
) -> None:
    pool = _pool(triton_server.address)
    try:
        with request_id() as rid, deadline_in(0.6):
            events = await _collect(pool, _request("where? [[test:slow=100]]"))
    finally:
        await pool.close()
    final = events[-1]
    assert isinstance(final, StreamFailed)
    assert final.code == "DEADLINE_EXCEEDED"
    assert final.after_first_delta
    assert not any(isinstance(e, Finished) for e in events)
    assert 0 < final.output_tokens < 20  # what was streamed is still reported for charging
    record = wait_event(triton_events, rid)
    assert record["outcome"] == "cancelled"
    assert record["tokens"] < len(EXPECTED.split())


async def test_caller_cancellation_stops_the_request_on_the_server(
    triton_server: TritonServer, triton_events: Path
) -> None:
    pool = _pool(triton_server.address)
    first = asyncio.Event()
    seen: list[GenerationEvent] = []

    async def consume() -> None:
        async for event in pool.stream(_request("where? [[test:slow=100]]")):
            seen.append(event)
            first.set()

    try:
        with request_id() as rid:
            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        record = wait_event(triton_events, rid)
    finally:
        await pool.close()
    assert record["outcome"] == "cancelled"
    assert not any(isinstance(e, Finished | StreamFailed) for e in seen)
    # The half-finished attempt neither counted against nor held the breaker.
    assert pool.breaker("triton-small").state is BreakerState.CLOSED
    assert pool.breaker("triton-small").consecutive_failures == 0


async def test_closing_the_stream_early_cancels_the_request_at_once(
    triton_server: TritonServer, triton_events: Path
) -> None:
    pool = _pool(triton_server.address)
    try:
        with request_id() as rid:
            stream = pool.stream(_request("where? [[test:slow=100]]"))
            assert isinstance(await anext(stream), TextDelta)
            await stream.aclose()
            record = wait_event(triton_events, rid)
    finally:
        await pool.close()
    assert record["outcome"] == "cancelled"
    assert pool.breaker("triton-small").consecutive_failures == 0


async def test_a_stream_broken_after_its_first_delta_ends_with_an_error(
    triton_server: TritonServer,
) -> None:
    pool = _pool(triton_server.address)
    try:
        events = await _collect(pool, _request("where? [[test:break-after=3]]"))
    finally:
        await pool.close()
    assert _text(events) == "Here is what"  # and nothing from the composer after it
    final = events[-1]
    assert isinstance(final, StreamFailed)
    assert (final.code, final.reason) == ("UNAVAILABLE", "BACKEND_STREAM_BROKEN")
    assert final.after_first_delta
    assert final.output_tokens == 3
    assert not any(isinstance(e, Finished) for e in events)
    assert pool.breaker("triton-small").consecutive_failures == 1


async def test_provider_failures_are_retried_with_backoff(
    triton_server: TritonServer, triton_events: Path
) -> None:
    pool = _pool(triton_server.address)
    key = secrets.token_hex(4)
    try:
        with request_id() as rid:
            events = await _collect(pool, _request(f"[[test:fail-times=2:{key}]]"))
    finally:
        await pool.close()
    final = events[-1]
    assert isinstance(final, Finished)
    assert (final.backend_id, final.attempts) == ("triton-small", 3)
    assert [e["outcome"] for e in events_for(triton_events, rid)] == [
        "failed",
        "failed",
        "completed",
    ]


async def test_rate_limits_are_not_retried_nor_counted_and_fall_back(
    triton_server: TritonServer, triton_events: Path
) -> None:
    pool = _pool(triton_server.address)
    try:
        with request_id() as rid:
            events = await _collect(pool, _request("[[test:queue-full]]"))
        wait_event(triton_events, rid)
    finally:
        await pool.close()
    final = events[-1]
    assert isinstance(final, Finished)
    assert final.backend_id == "composer"
    assert len(events_for(triton_events, rid)) == 1
    assert pool.breaker("triton-small").consecutive_failures == 0


async def test_a_server_that_is_down_opens_the_breaker_and_the_composer_answers() -> None:
    pool = _pool(f"127.0.0.1:{free_port()}", breaker=BreakerPolicy(failure_threshold=3))
    try:
        first = await _collect(pool, _request())
        breaker = pool.breaker("triton-small")
        assert breaker_state(breaker) is BreakerState.OPEN  # 3 attempts, 3 provider failures
        second = await _collect(pool, _request())
    finally:
        await pool.close()
    for events in (first, second):
        final = events[-1]
        assert isinstance(final, Finished)
        assert final.backend_id == "composer"
        assert _text(events) == TEMPLATES["tracking.status"](FACTS)
    final = second[-1]
    assert isinstance(final, Finished)
    assert final.attempts == 1  # the open breaker skipped Triton without trying


async def test_unloaded_model_opens_breaker_falls_back_then_a_probe_closes_it(
    triton_server: TritonServer, triton_events: Path
) -> None:
    """Model unloaded -> breaker opens -> composer answers -> reload -> one probe -> closed."""
    clock = Clock()
    pool = _pool(
        triton_server.address,
        breaker=BreakerPolicy(failure_threshold=2, recovery_s=60),
        retry=RetryPolicy(attempts=1),
        clock=clock,
    )
    admin = triton_aio.InferenceServerClient(triton_server.address)
    headers = dict(triton_server.admin_metadata())
    breaker = pool.breaker("triton-small")
    try:
        assert await pool.probe_ready() == {"triton-small": True}
        await admin.unload_model("ensemble", headers=headers)
        try:
            for _ in range(2):
                events = await _collect(pool, _request())
                final = events[-1]
                assert isinstance(final, Finished)
                assert final.backend_id == "composer"
            assert breaker_state(breaker) is BreakerState.OPEN
            assert await pool.probe_ready() == {"triton-small": False}  # ModelReady
        finally:
            await admin.load_model("ensemble", headers=headers)
        assert await pool.probe_ready() == {"triton-small": True}
        # Still open until the recovery time has passed: no request reaches Triton.
        with request_id() as rid:
            events = await _collect(pool, _request())
        assert isinstance(events[-1], Finished)
        assert events[-1].backend_id == "composer"
        assert events_for(triton_events, rid) == []
        clock.now += 60
        assert breaker_state(breaker) is BreakerState.HALF_OPEN
        # Two turns at once: exactly one probes Triton, the other gets the composer.
        with request_id() as rid:
            both = await asyncio.gather(_collect(pool, _request()), _collect(pool, _request()))
        served = sorted(e[-1].backend_id for e in both if isinstance(e[-1], Finished))
        assert served == ["composer", "triton-small"]
        assert len(events_for(triton_events, rid)) == 1
        assert breaker_state(breaker) is BreakerState.CLOSED
        events = await _collect(pool, _request())
        assert isinstance(events[-1], Finished)
        assert events[-1].backend_id == "triton-small"
        assert _text(events) == EXPECTED
    finally:
        await admin.close()
        await pool.close()


async def test_a_model_that_is_not_ready_is_skipped_without_an_attempt(
    triton_server: TritonServer,
) -> None:
    pool = _pool(triton_server.address)
    try:
        pool.set_ready("triton-small", False)
        events = await _collect(pool, _request())
    finally:
        await pool.close()
    final = events[-1]
    assert isinstance(final, Finished)
    assert (final.backend_id, final.attempts) == ("composer", 1)
