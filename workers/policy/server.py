"""Wiring of the policy process: settings, the servicer, serving."""

from __future__ import annotations

from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime.server import Registration, serve
from workers.policy.service import SERVICE, servicer
from workers.policy.settings import PolicySettings


async def main() -> None:
    """Serve the contract (every method UNIMPLEMENTED for now)."""
    settings = PolicySettings.from_env()
    add = pb_grpc.add_WorkerServiceServicer_to_server
    await serve(settings.service, [Registration(SERVICE, add, servicer())])
