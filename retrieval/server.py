"""Wiring of the retrieval process: settings, the servicer, serving."""

from __future__ import annotations

from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from retrieval.service import SERVICE, servicer
from retrieval.settings import RetrievalSettings
from runtime.server import Registration, serve


async def main() -> None:
    """Serve the contract (every method UNIMPLEMENTED for now)."""
    settings = RetrievalSettings.from_env()
    add = pb_grpc.add_RetrievalServiceServicer_to_server
    await serve(settings.service, [Registration(SERVICE, add, servicer())])
