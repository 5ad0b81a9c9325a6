"""The low-confidence hook: an LLM router through the LLM pool's Backend protocol.

No generative model can run here, so the backend is a scripted one that
speaks the pool's real Backend protocol (a stream of TextDelta and one
Finished, or a BackendError).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from waybill.router.v1 import router_service_pb2 as pb

from llm_pool.errors import BackendError, ErrorKind
from llm_pool.generation import Finished, GenerationEvent, GenerationRequest, TextDelta
from llm_pool.pool import LLMPool
from router.fallback import FallbackRequest, LlmPoolFallback
from router.intents import I
from tests.router.conftest import MakeClassifier

AMBIGUOUS = "tell me a joke about cats"


class Scripted:
    """A backend that streams a fixed answer (or fails, or stalls)."""

    name = "scripted"

    def __init__(self, text: str = "", *, fail: bool = False, stall_s: float = 0.0) -> None:
        self.text = text
        self.fail = fail
        self.stall_s = stall_s
        self.requests: list[GenerationRequest] = []

    async def stream(
        self, request: GenerationRequest, *, timeout_s: float | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        self.requests.append(request)
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        if self.fail:
            raise BackendError(
                "backend is down",
                code="UNAVAILABLE",
                reason="BACKEND_DOWN",
                kind=ErrorKind.PROVIDER,
            )
        for word in self.text.split(" "):
            yield TextDelta(word + " ")
        yield Finished(self.name, "scripted-1", 10, 3, 1000, "stop")


def _fallback(backend: Scripted) -> LlmPoolFallback:
    return LlmPoolFallback(LLMPool([backend], {"router": ["scripted"]}))


async def test_a_named_intent_decides_a_low_confidence_message(
    make_classifier: MakeClassifier,
) -> None:
    backend = Scripted("INTENT_TRACKING_ETA")
    classifier = make_classifier(fallback=_fallback(backend))
    outcome = await classifier.classify(AMBIGUOUS, time_left_s=2.0)
    assert outcome.method == pb.METHOD_LLM_FALLBACK
    assert outcome.decision.intent == I.INTENT_TRACKING_ETA
    assert outcome.decision.worker == I.WORKER_TRACKING
    assert not outcome.decision.low_confidence
    assert outcome.clarifying_question == ""
    (request,) = backend.requests
    assert request.use_case == "router"
    assert request.prompt.message == AMBIGUOUS
    assert "INTENT_NEGOTIATION_CANCELLATION" in request.prompt.context_block


async def test_confident_messages_never_reach_the_fallback(make_classifier: MakeClassifier) -> None:
    backend = Scripted("INTENT_OTHER")
    classifier = make_classifier(fallback=_fallback(backend))
    outcome = await classifier.classify("where is my order?")
    assert outcome.method == pb.METHOD_EMBEDDING
    assert backend.requests == []


async def test_none_garbage_failure_and_timeout_keep_the_question(
    make_classifier: MakeClassifier,
) -> None:
    for backend in (
        Scripted("NONE"),
        Scripted("I think you mean shipping"),
        Scripted("INTENT_OTHER"),
        Scripted(fail=True),
        Scripted("INTENT_TRACKING_ETA", stall_s=5.0),
    ):
        classifier = make_classifier(fallback=_fallback(backend))
        outcome = await classifier.classify(AMBIGUOUS, time_left_s=0.2)
        assert outcome.method == pb.METHOD_EMBEDDING, backend.text
        assert outcome.decision.low_confidence
        assert outcome.clarifying_question


async def test_a_follow_up_without_context_is_not_sent_to_the_model(
    make_classifier: MakeClassifier,
) -> None:
    backend = Scripted("INTENT_TRACKING_STATUS")
    classifier = make_classifier(fallback=_fallback(backend))
    outcome = await classifier.classify("and the other one?")
    assert outcome.decision.low_confidence
    assert backend.requests == []


async def test_the_prompt_carries_the_candidates() -> None:
    fallback = _fallback(Scripted("NONE"))
    generation = fallback.request_for(
        FallbackRequest(
            text="hmm",
            previous_intent=I.INTENT_TRACKING_STATUS,
            candidates=((I.INTENT_TRACKING_ETA, 0.41),),
            timeout_s=1.0,
        )
    )
    assert "INTENT_TRACKING_ETA (0.41)" in generation.prompt.context_block
    assert generation.prompt.history == (("previous intent", "INTENT_TRACKING_STATUS"),)
    assert generation.temperature == 0.0
