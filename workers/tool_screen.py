"""Tool-returned text a model would read is screened first (``runtime.text_screen``).

Some of what the order system returns was written by others than the customer or us: a
carrier's event description and location, an item title a merchant typed. A worker whose
answer a model writes screens that text (origin ``TOOL_RESULT``) and puts neutral words in
place of a flagged one. A worker whose chain is the composer alone does not screen: the
composer renders facts into fixed templates as data, where no instruction in them can act.
"""

from __future__ import annotations

from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc

from llm_pool.pool import LLMPool
from runtime.text_screen import TextScreen

CHECK = "tool_result_injection"


def model_reads(pool: LLMPool, use_case: str) -> bool:
    """Whether a model (not the composer) may write the answers of ``use_case``."""
    return any(getattr(link.backend, "kind", "") != "composer" for link in pool.links(use_case))


def tool_text_screen(stub: guard_grpc.GuardrailsServiceStub) -> TextScreen:
    """The screen of tool-returned text."""
    return TextScreen(stub, origin=guard.TEXT_ORIGIN_TOOL_RESULT, check=CHECK)
