"""The OpenAI-compatible backend against a local server speaking that protocol."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator

import pytest

from llm_pool.composer import Composer
from llm_pool.generation import (
    AnswerPlan,
    Finished,
    GenerationEvent,
    GenerationRequest,
    Prompt,
    StreamFailed,
    TextDelta,
    ToolCallDelta,
    ToolPayload,
    whole_calls,
)
from llm_pool.openai import OpenAIBackend
from llm_pool.pool import LinkOptions, LLMPool
from llm_pool.retry import RetryPolicy
from runtime import context
from runtime.errors import InvalidArgument
from tests.llm_pool.fake_openai import API_KEY, Recorder, serving
from workers.tools import payload_from_model, tool_spec
from workers.tracking.templates import TEMPLATES

FACTS = {"awb": "WB1234567890", "title": "Desk lamp"}
AWB = {"awb": "WB1234567890"}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, Recorder]]:
    with serving() as found:
        yield found


def _request(
    message: str = "where?", facts: dict[str, str] | None = None, **kwargs: object
) -> GenerationRequest:
    return GenerationRequest(
        use_case="negotiation",
        prompt=Prompt(instructions="be brief", context_block="[CONTEXT v1]", message=message),
        plan=AnswerPlan("tracking.not_found", facts or {"ref": "WB1234567890", **FACTS}),
        **kwargs,  # type: ignore[arg-type]
    )


def _pool(url: str, *, key: str = API_KEY, tool_mode: str = "tools") -> LLMPool:
    backend = OpenAIBackend(
        name="openai", base_url=url, served_model="gpt-4o-mini", api_key=key, tool_mode=tool_mode
    )
    return LLMPool(
        [backend, Composer(TEMPLATES)],
        {"negotiation": ["openai", "composer"]},
        options={"openai": LinkOptions(timeout_s=10, min_attempt_s=0.01)},
        retry=RetryPolicy(attempts=2, base_s=0.01, max_s=0.02),
    )


async def _collect(pool: LLMPool, request: GenerationRequest) -> list[GenerationEvent]:
    try:
        return [e async for e in pool.stream(request)]
    finally:
        await pool.close()


def _text(events: list[GenerationEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_streams_deltas_with_exact_usage_from_the_final_chunk(
    fake: tuple[str, Recorder],
) -> None:
    url, recorder = fake
    events = await _collect(_pool(url), _request())
    expected = "Here is what I found. Awb: WB1234567890. Ref: WB1234567890. Title: Desk lamp."
    assert _text(events) == expected
    final = events[-1]
    assert isinstance(final, Finished)
    assert (final.backend, final.backend_id, final.model) == ("openai", "openai", "gpt-4o-mini")
    assert final.usage_source == "server"
    assert final.output_tokens == len([e for e in events if isinstance(e, TextDelta)])
    body = recorder.bodies[-1]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": "where?"}


async def test_without_usage_tokens_are_counted_and_labelled(fake: tuple[str, Recorder]) -> None:
    url, _ = fake
    events = await _collect(_pool(url), _request("[[fake:no-usage]]"))
    final = events[-1]
    assert isinstance(final, Finished)
    assert final.usage_source == "estimate"
    assert final.output_tokens > 0


async def test_tool_schema_goes_as_a_forced_function_call(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    spec = tool_spec("get_delivery_photo")
    events = await _collect(_pool(url), _request(facts=AWB, tool=spec))
    payload = events[0]
    assert isinstance(payload, ToolPayload)
    assert payload_from_model(payload.tool, payload.arguments).awb == "WB1234567890"  # type: ignore[attr-defined]
    body = recorder.bodies[-1]
    assert body["tools"][0]["function"]["parameters"] == spec.json_schema
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_delivery_photo"}}
    final = events[-1]
    assert isinstance(final, Finished)
    assert final.finish_reason == "tool_calls"


async def test_tool_schema_as_response_format(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    spec = tool_spec("get_delivery_photo")
    pool = _pool(url, tool_mode="response_format")
    events = await _collect(pool, _request(facts=AWB, tool=spec))
    assert isinstance(events[0], ToolPayload)
    assert recorder.bodies[-1]["response_format"]["json_schema"]["schema"] == spec.json_schema


async def test_a_payload_that_violates_the_schema_is_refused(fake: tuple[str, Recorder]) -> None:
    url, _ = fake
    request = _request("[[fake:bad-args]]", facts=AWB, tool=tool_spec("get_eta"))
    events = await _collect(_pool(url), request)
    payload = events[0]
    assert isinstance(payload, ToolPayload)
    with pytest.raises(InvalidArgument) as caught:
        payload_from_model(payload.tool, payload.arguments)
    assert caught.value.metadata["rule_id"] in {"string.pattern", "payload.malformed_json"}


async def test_rate_limit_falls_back_without_retry(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    before = len(recorder.bodies)
    pool = _pool(url)
    events = await _collect(pool, _request("[[fake:status=429]]"))
    final = events[-1]
    assert isinstance(final, Finished)
    assert final.backend_id == "composer"
    assert len(recorder.bodies) == before + 1
    assert pool.breaker("openai").consecutive_failures == 0


async def test_bad_credentials_count_as_provider_failures(fake: tuple[str, Recorder]) -> None:
    url, _ = fake
    pool = _pool(url, key="sk-wrong")
    events = await _collect(pool, _request())
    assert isinstance(events[-1], Finished)
    assert events[-1].backend_id == "composer"
    assert pool.breaker("openai").consecutive_failures == 2  # both attempts


@pytest.mark.parametrize("knob", ["[[fake:break-after=3]]", "[[fake:error-after=3]]"])
async def test_a_stream_broken_mid_way_ends_with_an_error_event(
    fake: tuple[str, Recorder], knob: str
) -> None:
    url, _ = fake
    events = await _collect(_pool(url), _request(knob))
    assert _text(events) == "Here is what"
    final = events[-1]
    assert isinstance(final, StreamFailed)
    assert (final.reason, final.after_first_delta) == ("BACKEND_STREAM_BROKEN", True)
    assert final.output_tokens == 3  # what was streamed is still reported
    assert not any(isinstance(e, Finished) for e in events)


async def test_caller_cancellation_disconnects_from_the_server(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    pool = _pool(url)
    rid = f"test-{secrets.token_hex(4)}"
    token = context.request_id.set(rid)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in pool.stream(_request("[[fake:slow=100]]")):
            first.set()

    try:
        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if recorder.outcomes.get(rid):
                break
            await asyncio.sleep(0.02)
    finally:
        context.request_id.reset(token)
        await pool.close()
    assert recorder.outcomes.get(rid) == "disconnected"


async def test_request_shape_is_what_the_protocol_expects(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    await _collect(_pool(url), _request(max_tokens=3, stop=("\n",)))
    body = recorder.bodies[-1]
    assert (body["model"], body["max_tokens"], body["stop"]) == ("gpt-4o-mini", 3, ["\n"])
    assert recorder.headers[-1]["authorization"] == f"Bearer {API_KEY}"
    json.dumps(body)  # plain JSON, nothing the protocol cannot carry


def test_streamed_tool_call_pieces_join_into_whole_calls_by_index() -> None:
    pieces = [
        ToolCallDelta(1, "call_b", "refund_order", '{"order'),
        ToolCallDelta(0, "call_a", "get_order_status", '{"awb": '),
        ToolCallDelta(1, arguments='_id": "ORD-1"}'),
        ToolCallDelta(0, arguments='"WB1234567890"}'),
    ]
    assert whole_calls(pieces) == [
        ToolCallDelta(0, "call_a", "get_order_status", '{"awb": "WB1234567890"}'),
        ToolCallDelta(1, "call_b", "refund_order", '{"order_id": "ORD-1"}'),
    ]
    assert whole_calls([]) == []
