"""GuardrailsService servicer. This version redacts PII with patterns; the
prompt-injection classifier and grounding checks are not built yet, and the
responses say so in ``checks`` instead of pretending to have run them."""

from __future__ import annotations

import grpc
from waybill.guardrails.v1 import guardrails_service_pb2 as pb
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as pb_grpc

from guardrails.pii import Finding, redact
from runtime.servicer import not_built

CHECKS = ("pii_patterns",)


def _findings(found: list[Finding]) -> list[pb.PiiFinding]:
    return [
        pb.PiiFinding(
            entity_type=f.entity_type, start=f.start, end=f.end, placeholder=f.placeholder
        )
        for f in found
    ]


class GuardrailsServicer(pb_grpc.GuardrailsServiceServicer):
    """Input and output checks."""

    async def CheckInput(
        self, request: pb.CheckInputRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckInputResponse:
        text, found = redact(request.text, request.session_id)
        return pb.CheckInputResponse(
            verdict=pb.VERDICT_ALLOW, redacted_text=text, findings=_findings(found), checks=CHECKS
        )

    async def CheckOutput(
        self, request: pb.CheckOutputRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckOutputResponse:
        if request.require_grounding:
            raise not_built(
                "GuardrailsService",
                "CheckOutput(require_grounding)",
                "the grounding check arrives with the policy worker",
            )
        text, found = redact(request.text, request.session_id)
        return pb.CheckOutputResponse(
            verdict=pb.VERDICT_ALLOW, redacted_text=text, findings=_findings(found), checks=CHECKS
        )

    async def Redact(
        self, request: pb.RedactRequest, context: grpc.aio.ServicerContext
    ) -> pb.RedactResponse:
        text, found = redact(request.text, request.salt)
        return pb.RedactResponse(redacted_text=text, findings=_findings(found))
