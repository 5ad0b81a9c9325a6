"""Streaming a worker's answer through the LLM pool: text deltas (coalesced), the
usage of every generation, and the final result, or an error event when the
generation breaks. Every worker ends its turn this way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from waybill.common.v1 import conversation_pb2, events_pb2, usage_pb2
from waybill.worker.v1 import worker_service_pb2 as pb

from llm_pool.finish import count_generation
from llm_pool.generation import Finished, GenerationRequest, StreamFailed, TextDelta, ToolPayload
from llm_pool.pool import LLMPool
from workers import turn_errors
from workers.coalesce import DeltaCoalescer
from workers.output_guard import STOP_MESSAGE, CanaryLeak, OutputGuard


def history(turns: Sequence[conversation_pb2.Turn]) -> tuple[tuple[str, str], ...]:
    """The session's turns as (role, text) pairs for a prompt."""
    return tuple(
        ("customer" if t.role == conversation_pb2.ROLE_CUSTOMER else "assistant", t.text)
        for t in turns
    )


async def generate_payload(
    pool: LLMPool, request: GenerationRequest
) -> tuple[str | None, Finished | StreamFailed | None]:
    """The tool payload the pool wrote for ``request`` (None when it wrote none) and how its
    stream ended: ``Finished`` with the usage, or ``StreamFailed``."""
    text: str | None = None
    finished: Finished | None = None
    stream = pool.stream(request)
    try:
        async for event in stream:
            if isinstance(event, ToolPayload):
                text = event.arguments
            elif isinstance(event, Finished):
                finished = event
            elif isinstance(event, StreamFailed):
                return None, event
    finally:
        await stream.aclose()
    return text, finished


def _rest(guard: OutputGuard) -> tuple[str | None, bool]:
    """The guard's held-back text at the end of a stream, and whether it leaked."""
    try:
        return guard.finish(), False
    except CanaryLeak:
        return None, True


async def compose(
    pool: LLMPool,
    generation: GenerationRequest,
    *,
    state: conversation_pb2.ConversationState,
    tool_calls: int,
    canary: str = "",
    usage: usage_pb2.Usage | None = None,
    events: Sequence[pb.RunTurnResponse] = (),
) -> AsyncIterator[pb.RunTurnResponse]:
    """Stream the answer through the output checks, then ``events`` (a confirmation
    request, an escalation), then the result with usage (or an error event, then raise).
    ``usage`` holds what the turn generated before its answer (tool payloads). An answer
    that carries the session's canary is stopped there: a refusal event follows what was
    already released."""
    usage = usage_pb2.Usage() if usage is None else usage
    usage.tool_calls = tool_calls
    text: list[str] = []
    pending = DeltaCoalescer()
    guard = OutputGuard(canary)
    stream = pool.stream(generation)
    stopped = False
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                try:
                    released = guard.feed(event.text, screened=event.screened)
                except CanaryLeak:
                    stopped = True
                    break
                if released is not None:
                    text.append(released)
                    if (ready := pending.add(released)) is not None:
                        yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=ready))
                continue
            if (rest := pending.flush()) is not None:
                yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=rest))
            if isinstance(event, Finished):
                count_generation(usage, event)
            elif isinstance(event, StreamFailed):
                # What was generated before the break has been checked whole: it goes out.
                rest_of_it, _ = _rest(guard)
                if rest_of_it:
                    text.append(rest_of_it)
                    yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=rest_of_it))
                failed = turn_errors.generation_failed(event)
                yield pb.RunTurnResponse(
                    error=turn_errors.error_event(failed, message=turn_errors.STREAM_FAILED_MESSAGE)
                )
                raise failed
    finally:
        await stream.aclose()
    if not stopped:
        last, stopped = _rest(guard)
        if last is not None:
            text.append(last)
            if (ready := pending.add(last)) is not None:
                yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=ready))
    if (rest := pending.flush()) is not None:
        yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=rest))
    if stopped:
        yield pb.RunTurnResponse(
            refusal=events_pb2.Refusal(
                reason=events_pb2.REFUSAL_REASON_OUTPUT_BLOCKED, message=STOP_MESSAGE
            )
        )
        text.append(("\n" if text else "") + STOP_MESSAGE)
    for beside in events:
        yield beside
    yield pb.RunTurnResponse(result=pb.TurnResult(state=state, usage=usage, answer="".join(text)))
