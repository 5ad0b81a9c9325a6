"""Why a generation stopped, as contract data (``waybill.common.v1.FinishReason``).

Backends report the reason in their own words (OpenAI's ``finish_reason``,
Triton's token count); the pool keeps those words internally and the worker
converts them once, here, when it fills in the turn's usage.
"""

from __future__ import annotations

from typing import cast

from opentelemetry import trace
from waybill.common.v1 import usage_pb2

from llm_pool.generation import Finished
from runtime import telemetry

_BY_WORD: dict[str, int] = {
    "stop": usage_pb2.FINISH_REASON_STOP,
    "length": usage_pb2.FINISH_REASON_LENGTH,
    "tool_calls": usage_pb2.FINISH_REASON_TOOL_CALLS,
    "function_call": usage_pb2.FINISH_REASON_TOOL_CALLS,
    "content_filter": usage_pb2.FINISH_REASON_CONTENT_FILTER,
    "error": usage_pb2.FINISH_REASON_ERROR,
    "cancelled": usage_pb2.FINISH_REASON_CANCELLED,
}


def to_proto(word: str) -> usage_pb2.FinishReason:
    """The contract value of a backend's finish reason; unknown words -> UNSPECIFIED."""
    value = _BY_WORD.get(word.lower(), usage_pb2.FINISH_REASON_UNSPECIFIED)
    return cast(usage_pb2.FinishReason, value)


def count_generation(usage: usage_pb2.Usage, event: Finished) -> None:
    """Add one finished generation to the turn's usage (and to the worker's span)."""
    trace.get_current_span().add_event(
        "generation", {telemetry.ATTR_BACKEND: event.backend_id or event.backend}
    )
    usage.input_tokens += event.input_tokens
    usage.output_tokens += event.output_tokens
    usage.generations.add(
        backend=event.backend,
        model=event.model,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        time_to_first_token_us=event.time_to_first_token_us,
        finish_reason=to_proto(event.finish_reason),
    )
    if event.charge is not None:
        # One currency per turn: the price table prices every model in USD.
        usage.cost.currency_code = event.charge.currency_code
        usage.cost.micro_units += event.charge.micro_units


def cut_short(
    backend: str,
    model: str,
    finish_reason: usage_pb2.FinishReason,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
) -> usage_pb2.Usage:
    """The usage of one generation that never finished (it failed, or its caller left):
    what it consumed, under one generation that says why it stopped."""
    usage = usage_pb2.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    usage.generations.add(
        backend=backend,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        finish_reason=finish_reason,
    )
    return usage
