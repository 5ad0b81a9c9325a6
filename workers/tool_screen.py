"""Screening of tool-returned text before a model reads it (indirect prompt injection).

Some of what the order system returns was written by others than the customer or us: a
carrier's event description and location, an item title a merchant typed. A worker whose
answer a model writes puts that text into the prompt, so it is screened first: the
guardrails score it (``ScreenTexts``, origin ``TOOL_RESULT``, flagged at the flag
threshold, 0.70 by default), and a flagged text is withheld (the worker puts neutral words
in its place), counted and logged without its content. Verdicts are kept by text (carrier
texts recur on every turn); when the guardrails cannot answer, every such text is withheld
for that turn: the answer gets plainer, never unscreened.

A worker whose chain is the composer alone does not screen: the composer renders facts into
fixed templates as data, where no instruction in them can act.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc

from llm_pool.pool import LLMPool
from runtime.bounded_cache import BoundedCache
from runtime.errors import DomainError
from runtime.metrics import GUARDRAIL_VERDICTS
from runtime.peer_errors import unary

log = logging.getLogger(__name__)

PEER = "guardrails"
VERDICTS = 10_000
"""Texts whose verdict a worker keeps."""
WITHHELD = GUARDRAIL_VERDICTS.labels("tool_result_injection", "withheld")
UNSCREENED = GUARDRAIL_VERDICTS.labels("tool_result_injection", "unscreened")


def model_reads(pool: LLMPool, use_case: str) -> bool:
    """Whether a model (not the composer) may write the answers of ``use_case``."""
    return any(getattr(link.backend, "kind", "") != "composer" for link in pool.links(use_case))


class ToolTextScreen:
    """Which tool-returned texts must not reach a model's prompt."""

    def __init__(self, stub: guard_grpc.GuardrailsServiceStub, *, entries: int = VERDICTS) -> None:
        self._stub = stub
        self._verdicts: BoundedCache[str, bool] = BoundedCache(ttl_s=math.inf, entries=entries)

    async def flagged(self, tenant_id: str, texts: Iterable[str]) -> set[str]:
        """The texts of ``texts`` to withhold (all of them when the guardrails fail)."""
        wanted = {t for t in texts if t}
        verdicts = {t: v for t in wanted if (v := self._verdicts.get(t)) is not None}
        unknown = sorted(wanted - verdicts.keys())
        if unknown:
            request = guard.ScreenTextsRequest(
                tenant_id=tenant_id, origin=guard.TEXT_ORIGIN_TOOL_RESULT, texts=unknown
            )
            try:
                response: guard.ScreenTextsResponse = await unary(
                    self._stub.ScreenTexts, request, peer=PEER
                )
            except DomainError as exc:
                UNSCREENED.inc(len(unknown))
                log.warning(
                    "tool text withheld: the guardrails did not answer",
                    extra={"texts": len(unknown), "reason": exc.reason},
                )
                return {t for t, flagged in verdicts.items() if flagged} | set(unknown)
            for text, result in zip(unknown, response.results, strict=True):
                verdicts[text] = result.flagged
                self._verdicts.put(text, result.flagged)
                if result.flagged:
                    WITHHELD.inc()
                    log.warning(
                        "tool text withheld from the prompt",
                        extra={"injection_score": round(result.score, 3)},
                    )
        return {t for t, flagged in verdicts.items() if flagged}
