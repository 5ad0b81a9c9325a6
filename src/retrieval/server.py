"""Wiring of the retrieval process. Its contract is served; every method answers
UNIMPLEMENTED with a clear message until the retrieval issue builds the policy knowledge base."""

from __future__ import annotations

from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.server import Registration, serve
from runtime.servicer import unimplemented_servicer
from runtime.settings import ServiceSettings

SERVICE = "waybill.retrieval.v1.RetrievalService"
PLANNED = "the retrieval issue builds the policy knowledge base"


async def main() -> None:
    """Serve the contract (UNIMPLEMENTED for now)."""
    settings = ServiceSettings.from_env("retrieval")
    servicer = unimplemented_servicer(pb_grpc.RetrievalServiceServicer, SERVICE, PLANNED)
    add = pb_grpc.add_RetrievalServiceServicer_to_server
    await serve(settings, [Registration(mesh.spec("retrieval").grpc_services[0], add, servicer)])
