"""Wiring of the guardrails process: settings, the servicer, serving."""

from __future__ import annotations

from waybill.guardrails.v1 import guardrails_service_pb2_grpc as pb_grpc

from guardrails.service import GuardrailsServicer
from guardrails.settings import GuardrailsSettings
from runtime import mesh
from runtime.server import Registration, serve


async def main() -> None:
    """Serve the guardrails."""
    settings = GuardrailsSettings.from_env()
    add = pb_grpc.add_GuardrailsServiceServicer_to_server
    await serve(
        settings.service,
        [Registration(mesh.spec("guardrails").grpc_services[0], add, GuardrailsServicer())],
    )
