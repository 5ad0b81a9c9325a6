"""Wiring of the guardrails process."""

from __future__ import annotations

from waybill.guardrails.v1 import guardrails_service_pb2_grpc as pb_grpc

from guardrails.service import GuardrailsServicer
from runtime import mesh
from runtime.server import Registration, serve
from runtime.settings import ServiceSettings


async def main() -> None:
    """Serve the guardrails."""
    settings = ServiceSettings.from_env("guardrails")
    add = pb_grpc.add_GuardrailsServiceServicer_to_server
    await serve(
        settings,
        [Registration(mesh.spec("guardrails").grpc_services[0], add, GuardrailsServicer())],
    )
