"""GuardrailsService servicer: PII redaction (Presidio), prompt-injection scoring, and
output checks (PII, the session's canary, grounding in cited sources).

CPU-bound checks run on a small thread pool: ONNX Runtime and the regular expressions
release the GIL for most of their work, and the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import grpc
from waybill.guardrails.v1 import guardrails_service_pb2 as pb
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as pb_grpc

from guardrails import grounding
from guardrails.injection import InjectionScorer, Score
from guardrails.pii import Finding, PiiRedactor
from guardrails.settings import Thresholds
from runtime import canary
from runtime.canary import Canaries
from runtime.pii import might_hold_pii

INPUT_CHECKS = ("pii", "injection")
OUTPUT_CHECKS = ("pii", "canary")
REASON_INJECTION = "prompt_injection"
REASON_CANARY = "canary_leak"
REASON_UNGROUNDED = "ungrounded"
_T = TypeVar("_T")


def _findings(found: Sequence[Finding]) -> list[pb.PiiFinding]:
    return [
        pb.PiiFinding(
            entity_type=f.entity_type, start=f.start, end=f.end, placeholder=f.placeholder
        )
        for f in found
    ]


class GuardrailsServicer(pb_grpc.GuardrailsServiceServicer):
    """Input and output checks."""

    def __init__(
        self,
        redactor: PiiRedactor,
        scorer: InjectionScorer,
        canaries: Canaries,
        thresholds: Thresholds,
        *,
        threads: int = 2,
    ) -> None:
        self._redactor = redactor
        self._scorer = scorer
        self._canaries = canaries
        self._thresholds = thresholds
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="guardrails")

    def _run(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        return asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def CheckInput(
        self, request: pb.CheckInputRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckInputResponse:
        text, session = request.text, request.session_id
        # The encoder only runs when the patterns and the n-gram half cannot settle the
        # verdict (InjectionScorer.triage); it runs before the PII analyzer, which a
        # blocked message never needs (side by side, the two fought over the two cores).
        # A message with nothing for either is answered inline, with no thread hop.
        first = self._scorer.triage(text, self._thresholds.block_input)
        if isinstance(first, Score):
            score = first
        else:
            score = await self._run(partial(self._scorer.finish, first))
        if score.score >= self._thresholds.block_input:
            # Nothing of a blocked message goes further: no redacted text either.
            return pb.CheckInputResponse(
                verdict=pb.VERDICT_BLOCK,
                injection_score=score.score,
                block_reason=REASON_INJECTION,
                checks=INPUT_CHECKS,
            )
        if might_hold_pii(text):
            redacted, found = await self._run(partial(self._redactor.redact, text, session))
        else:
            redacted, found = text, []  # what the redactor answers (its own pre-check)
        return pb.CheckInputResponse(
            verdict=pb.VERDICT_ALLOW,
            redacted_text=redacted,
            findings=_findings(found),
            injection_score=score.score,
            checks=INPUT_CHECKS,
            canary=self._canaries.of(session),
        )

    async def CheckOutput(
        self, request: pb.CheckOutputRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckOutputResponse:
        def check() -> pb.CheckOutputResponse:
            checks = list(OUTPUT_CHECKS)
            if canary.leaked(self._canaries.of(request.session_id), request.text):
                return pb.CheckOutputResponse(
                    verdict=pb.VERDICT_BLOCK, block_reason=REASON_CANARY, checks=checks
                )
            response = pb.CheckOutputResponse(verdict=pb.VERDICT_ALLOW, checks=checks)
            if request.sources:
                checks.append("grounding")
                verdict = grounding.check(request.text, [s.text for s in request.sources])
                claims = max(1, len(grounding.claims(request.text)))
                response.grounded = verdict.grounded
                response.grounding_score = max(0.0, 1.0 - len(verdict.unsupported) / claims)
                if request.require_grounding and not verdict.grounded:
                    response.verdict = pb.VERDICT_BLOCK
                    response.block_reason = REASON_UNGROUNDED
                    del response.checks[:]
                    response.checks.extend(checks)
                    return response
            text, found = self._redactor.redact(request.text, request.session_id)
            response.redacted_text = text
            response.findings.extend(_findings(found))
            del response.checks[:]
            response.checks.extend(checks)
            return response

        return await self._run(check)

    def threshold_for(self, origin: pb.TextOrigin) -> float:
        """The flag threshold of an origin: quarantine for documents, flag for the rest."""
        if origin == pb.TEXT_ORIGIN_DOCUMENT:
            return self._thresholds.quarantine
        return self._thresholds.flag_retrieved

    async def ScreenTexts(
        self, request: pb.ScreenTextsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScreenTextsResponse:
        threshold = self.threshold_for(request.origin)

        def screen() -> pb.ScreenTextsResponse:
            scores = self._scorer.score_many(list(request.texts))
            return pb.ScreenTextsResponse(
                results=[
                    pb.ScreenedText(score=s.score, flagged=s.score >= threshold) for s in scores
                ],
                threshold=threshold,
            )

        return await self._run(screen)

    async def Redact(
        self, request: pb.RedactRequest, context: grpc.aio.ServicerContext
    ) -> pb.RedactResponse:
        def redact() -> pb.RedactResponse:
            text, found = self._redactor.redact(request.text, request.salt or "redact")
            return pb.RedactResponse(redacted_text=text, findings=_findings(found))

        return await self._run(redact)
