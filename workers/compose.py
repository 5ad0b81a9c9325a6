"""Streaming a worker's answer through the LLM pool: text deltas (coalesced), the
usage of every generation, and the final result, or an error event when the
generation breaks. Every worker ends its turn this way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from waybill.common.v1 import conversation_pb2, events_pb2, usage_pb2
from waybill.worker.v1 import worker_service_pb2 as pb

from llm_pool import finish
from llm_pool.generation import Finished, GenerationRequest, StreamFailed, TextDelta
from llm_pool.pool import LLMPool
from workers import turn_errors
from workers.coalesce import DeltaCoalescer


def history(turns: Sequence[conversation_pb2.Turn]) -> tuple[tuple[str, str], ...]:
    """The session's turns as (role, text) pairs for a prompt."""
    return tuple(
        ("customer" if t.role == conversation_pb2.ROLE_CUSTOMER else "assistant", t.text)
        for t in turns
    )


async def compose(
    pool: LLMPool,
    generation: GenerationRequest,
    *,
    state: conversation_pb2.ConversationState,
    tool_calls: int,
) -> AsyncIterator[pb.RunTurnResponse]:
    """Stream the answer, then the result with usage (or an error event, then raise)."""
    usage = usage_pb2.Usage(tool_calls=tool_calls)
    text: list[str] = []
    pending = DeltaCoalescer()
    async for event in pool.stream(generation):
        if isinstance(event, TextDelta):
            text.append(event.text)
            if (ready := pending.add(event.text)) is not None:
                yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=ready))
            continue
        if (rest := pending.flush()) is not None:
            yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=rest))
        if isinstance(event, Finished):
            usage.input_tokens += event.input_tokens
            usage.output_tokens += event.output_tokens
            usage.generations.add(
                backend=event.backend,
                model=event.model,
                input_tokens=event.input_tokens,
                output_tokens=event.output_tokens,
                time_to_first_token_us=event.time_to_first_token_us,
                finish_reason=finish.to_proto(event.finish_reason),
            )
            if event.charge is not None:
                # One currency per turn: the price table prices every model in USD.
                usage.cost.currency_code = event.charge.currency_code
                usage.cost.micro_units += event.charge.micro_units
        elif isinstance(event, StreamFailed):
            failed = turn_errors.generation_failed(event)
            yield pb.RunTurnResponse(
                error=turn_errors.error_event(failed, message=turn_errors.STREAM_FAILED_MESSAGE)
            )
            raise failed
    if (rest := pending.flush()) is not None:
        yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=rest))
    yield pb.RunTurnResponse(result=pb.TurnResult(state=state, usage=usage, answer="".join(text)))
