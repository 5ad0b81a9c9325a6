"""Screening of text others wrote before a model reads it (indirect prompt injection).

Text that reaches a prompt without being the customer's message was written by somebody
else: a delivery note (the gateway's context block), a carrier's event description and
location or an item title a merchant typed (a tracking worker with a model in its chain).
It is screened first: the guardrails score it (``ScreenTexts`` with the text's origin,
flagged at the flag threshold, 0.70 by default), and a flagged text is withheld by the
caller, counted once per text and logged without its content. Verdicts are kept by text
(notes and carrier texts recur on every turn); when the guardrails cannot answer, every
unknown text is withheld for that turn: the prompt gets plainer, never unscreened.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc

from runtime.bounded_cache import BoundedCache
from runtime.errors import DomainError
from runtime.metrics import GUARDRAIL_VERDICTS
from runtime.peer_errors import unary

log = logging.getLogger(__name__)

PEER = "guardrails"
VERDICTS = 10_000
"""Texts whose verdict a screen keeps."""


class TextScreen:
    """Which texts of one origin must not reach a model's prompt.

    ``check`` names the texts in ``waybill_guardrail_verdicts_total{check=...}``:
    ``action="withheld"`` counts flagged texts, ``action="unscreened"`` texts withheld
    because the guardrails did not answer."""

    def __init__(
        self,
        stub: guard_grpc.GuardrailsServiceStub,
        *,
        origin: guard.TextOrigin,
        check: str,
        entries: int = VERDICTS,
    ) -> None:
        self._stub = stub
        self._origin = origin
        self._check = check
        self._withheld = GUARDRAIL_VERDICTS.labels(check, "withheld")
        self._unscreened = GUARDRAIL_VERDICTS.labels(check, "unscreened")
        self._verdicts: BoundedCache[str, bool] = BoundedCache(ttl_s=math.inf, entries=entries)

    async def flagged(self, tenant_id: str, texts: Iterable[str]) -> set[str]:
        """The texts of ``texts`` to withhold (all unknown ones when the guardrails fail)."""
        wanted = {t for t in texts if t}
        verdicts = {t: v for t in wanted if (v := self._verdicts.get(t)) is not None}
        unknown = sorted(wanted - verdicts.keys())
        if unknown:
            request = guard.ScreenTextsRequest(
                tenant_id=tenant_id, origin=self._origin, texts=unknown
            )
            try:
                response: guard.ScreenTextsResponse = await unary(
                    self._stub.ScreenTexts, request, peer=PEER
                )
            except DomainError as exc:
                self._unscreened.inc(len(unknown))
                log.warning(
                    "text withheld from the prompt: the guardrails did not answer",
                    extra={"check": self._check, "texts": len(unknown), "reason": exc.reason},
                )
                return {t for t, flagged in verdicts.items() if flagged} | set(unknown)
            for text, result in zip(unknown, response.results, strict=True):
                verdicts[text] = result.flagged
                self._verdicts.put(text, result.flagged)
                if result.flagged:
                    self._withheld.inc()
                    log.warning(
                        "text withheld from the prompt",
                        extra={"check": self._check, "injection_score": round(result.score, 3)},
                    )
        return {t for t, flagged in verdicts.items() if flagged}
