"""Why a generation stopped, as contract data (``waybill.common.v1.FinishReason``).

Backends report the reason in their own words (OpenAI's ``finish_reason``,
Triton's token count); the pool keeps those words internally and the worker
converts them once, here, when it fills in the turn's usage.
"""

from __future__ import annotations

from typing import cast

from waybill.common.v1 import usage_pb2

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
