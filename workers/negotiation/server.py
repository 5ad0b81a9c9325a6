"""Wiring of the negotiation process: settings, the servicer, serving."""

from __future__ import annotations

from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime.server import Registration, serve
from workers.negotiation.service import SERVICE, servicer
from workers.negotiation.settings import NegotiationSettings


async def main() -> None:
    """Serve the contract (every method UNIMPLEMENTED for now)."""
    settings = NegotiationSettings.from_env()
    add = pb_grpc.add_WorkerServiceServicer_to_server
    await serve(settings.service, [Registration(SERVICE, add, servicer())])
