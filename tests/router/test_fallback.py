"""The low-confidence hook: an LLM router through the LLM pool's Backend protocol.

No generative model can run here, so the backend is a scripted one that
speaks the pool's real Backend protocol (a stream of TextDelta and one
Finished, or a BackendError).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable

import grpc
import pytest
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from llm_pool.errors import BackendError, ErrorKind
from llm_pool.generation import Finished, GenerationEvent, GenerationRequest, TextDelta
from llm_pool.pool import LLMPool
from router.classifier import Classifier, ClassifierOptions
from router.fallback import FallbackChoice, FallbackRequest, LlmPoolFallback, fallback_timeout
from router.intents import I
from router.service import RouterServicer
from runtime import context
from runtime.deadlines import DeadlinePolicy
from runtime.server import Registration
from tests.conftest import StartServer
from tests.router.conftest import MakeClassifier

AMBIGUOUS = "tell me a joke about cats"
WIRE_ROUNDING_S = 0.011
"""How much later than the caller's a server's deadline can fall: gRPC rounds the time left
up to whole milliseconds, then a grpc-timeout between 1 and 10 s up to whole 10 ms."""


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
    outcome = await classifier.classify(AMBIGUOUS)
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
        outcome = await classifier.classify(AMBIGUOUS)
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


class Recording:
    """A RouterFallback that records the time it was given and declines."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    async def choose(self, request: FallbackRequest) -> FallbackChoice | None:
        self.timeouts.append(request.timeout_s)
        return None


async def _classify_over_grpc(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    classifier: Classifier,
    *,
    timeout_s: float,
) -> pb.ClassifyResponse:
    address = await serve(
        "router",
        [
            Registration(
                "waybill.router.v1.RouterService",
                pb_grpc.add_RouterServiceServicer_to_server,
                RouterServicer(classifier),
            )
        ],
    )
    stub = pb_grpc.RouterServiceStub(channels(address))
    reply: pb.ClassifyResponse = await stub.Classify(
        pb.ClassifyRequest(tenant_id="acme-retail", text=AMBIGUOUS), timeout=timeout_s
    )
    return reply


async def test_the_fallback_gets_the_remaining_time_minus_the_margin(
    make_classifier: MakeClassifier,
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
) -> None:
    fallback = Recording()
    options = ClassifierOptions(
        deadlines=DeadlinePolicy(margin_s=1.0, min_s=0.005), fallback_budget_s=60.0
    )
    classifier = make_classifier(fallback=fallback, options=options)
    reply = await _classify_over_grpc(serve, channels, classifier, timeout_s=5.0)
    assert reply.low_confidence
    (given,) = fallback.timeouts
    # Not the caller's whole 5 s: what remained minus the 1 s margin (as the server sees
    # the deadline, which the wire rounds up).
    assert 2.0 < given <= 4.0 + WIRE_ROUNDING_S


async def test_the_fallback_budget_caps_a_long_deadline(
    make_classifier: MakeClassifier,
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
) -> None:
    fallback = Recording()
    classifier = make_classifier(fallback=fallback)
    await _classify_over_grpc(serve, channels, classifier, timeout_s=30.0)
    assert fallback.timeouts == [pytest.approx(0.3)]


async def test_too_little_time_left_skips_the_fallback_and_keeps_the_question(
    make_classifier: MakeClassifier,
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
) -> None:
    fallback = Recording()
    options = ClassifierOptions(deadlines=DeadlinePolicy(margin_s=10.0, min_s=0.005))
    classifier = make_classifier(fallback=fallback, options=options)
    reply = await _classify_over_grpc(serve, channels, classifier, timeout_s=5.0)
    assert fallback.timeouts == []
    assert reply.method == pb.METHOD_EMBEDDING
    assert reply.low_confidence
    assert reply.clarifying_question


def test_fallback_timeout_is_remaining_minus_margin_capped_by_the_budget() -> None:
    policy = DeadlinePolicy(margin_s=0.2, min_s=0.01, default_s=10.0)
    assert fallback_timeout(policy, budget_s=0.3) == pytest.approx(0.3)  # no inbound deadline
    token = context.deadline.set(time.monotonic() + 1.0)
    try:
        assert fallback_timeout(policy, budget_s=0.3) == pytest.approx(0.3)
        long = fallback_timeout(policy, budget_s=60.0)
        assert long is not None
        assert 0.5 < long <= 0.8
    finally:
        context.deadline.reset(token)
    token = context.deadline.set(time.monotonic() + 0.205)
    try:
        assert fallback_timeout(policy, budget_s=0.3) is None
    finally:
        context.deadline.reset(token)
