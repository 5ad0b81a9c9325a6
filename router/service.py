"""RouterService servicer: translates between the contract and the classifier."""

from __future__ import annotations

from typing import cast

import grpc
from opentelemetry import trace
from waybill.common.v1.intent_pb2 import Intent, Worker
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from router.admin_keys import AdminKeys
from router.classifier import Classifier
from router.exemplars import Exemplar
from router.intents import intent_name
from runtime import telemetry
from runtime.errors import Unavailable

WARMING_UP_RETRY_S = 0.5


class RouterServicer(pb_grpc.RouterServiceServicer):
    """Serves the embedding classifier once :meth:`attach` hands it over.

    AddExemplars needs an admin key of the request's tenant (``admin_keys``;
    without any, every AddExemplars is UNAUTHENTICATED).
    """

    def __init__(
        self, classifier: Classifier | None = None, *, admin_keys: AdminKeys | None = None
    ) -> None:
        self._classifier = classifier
        self._admin_keys = admin_keys if admin_keys is not None else AdminKeys()

    def attach(self, classifier: Classifier) -> None:
        """The classifier is warm: start answering with it."""
        self._classifier = classifier

    def _ready(self) -> Classifier:
        if self._classifier is None:
            raise Unavailable(
                "the router is loading its model",
                reason="WARMING_UP",
                retry_after_s=WARMING_UP_RETRY_S,
            )
        return self._classifier

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        classifier = self._ready()
        outcome = await classifier.classify(
            request.text, request.previous_intent, tenant_id=request.tenant_id
        )
        decision = outcome.decision
        span = trace.get_current_span()
        span.set_attribute(telemetry.ATTR_INTENT, intent_name(decision.intent))
        span.set_attribute(telemetry.ATTR_CONFIDENCE, decision.confidence)
        response = pb.ClassifyResponse(
            intent=cast(Intent, decision.intent),
            confidence=decision.confidence,
            worker=cast(Worker, decision.worker),
            alternatives=[
                pb.IntentScore(intent=cast(Intent, intent), confidence=confidence)
                for intent, confidence in decision.alternatives
            ],
            low_confidence=decision.low_confidence,
            clarifying_question=outcome.clarifying_question,
            method=cast(pb.Method, outcome.method),
            classifier_version=outcome.version,
        )
        if outcome.vector is not None and decision.worker in request.embedding_for:
            response.embedding.model_version = classifier.embedder.version
            response.embedding.values.extend(outcome.vector.tolist())
        return response

    async def AddExemplars(
        self, request: pb.AddExemplarsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddExemplarsResponse:
        # Authorisation first: a caller without a key learns nothing from readiness.
        self._admin_keys.authorise(context.invocation_metadata() or (), request.tenant_id)
        classifier = self._ready()
        result = await classifier.add_exemplars(
            [Exemplar(text=e.text, label=e.intent) for e in request.exemplars],
            request.request_id,
            tenant_id=request.tenant_id,
        )
        return pb.AddExemplarsResponse(
            classifier_version=result.version, exemplar_count=result.exemplar_count
        )

    async def GetClassifierInfo(
        self, request: pb.GetClassifierInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetClassifierInfoResponse:
        classifier = self._ready()
        view = classifier.view(request.tenant_id)
        return pb.GetClassifierInfoResponse(
            classifier_version=view.version,
            method=pb.METHOD_EMBEDDING,
            exemplar_count=view.exemplar_count,
            confidence_threshold=classifier.calibration.threshold,
            model_version=classifier.embedder.version,
            added_exemplar_count=view.added,
        )
