"""RouterService servicer (keyword placeholder until the embedding classifier lands)."""

from __future__ import annotations

import grpc
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from router import keywords
from runtime.servicer import not_built


class RouterServicer(pb_grpc.RouterServiceServicer):
    """Classifies with the keyword placeholder; retraining is not available for it."""

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        decision = keywords.classify(request.text, request.previous_intent)
        return pb.ClassifyResponse(
            intent=decision.intent,
            confidence=decision.confidence,
            worker=decision.worker,
            low_confidence=decision.low_confidence,
            clarifying_question=keywords.CLARIFY if decision.low_confidence else "",
            method=pb.METHOD_KEYWORD_PLACEHOLDER,
            classifier_version=keywords.VERSION,
        )

    async def AddExemplars(
        self, request: pb.AddExemplarsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddExemplarsResponse:
        raise not_built("RouterService", "AddExemplars", "arrives with the embedding classifier")

    async def GetClassifierInfo(
        self, request: pb.GetClassifierInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetClassifierInfoResponse:
        return pb.GetClassifierInfoResponse(
            classifier_version=keywords.VERSION,
            method=pb.METHOD_KEYWORD_PLACEHOLDER,
            exemplar_count=0,
            confidence_threshold=keywords.PLACEHOLDER_CONFIDENCE,
        )
