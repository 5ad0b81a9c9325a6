"""Wiring of the policy process. Its contract is served; every method answers
UNIMPLEMENTED with a clear message until the policy worker is built on retrieval."""

from __future__ import annotations

from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.server import Registration, serve
from runtime.servicer import unimplemented_servicer
from runtime.settings import ServiceSettings

SERVICE = "waybill.worker.v1.WorkerService"
PLANNED = "the policy worker is built on retrieval"


async def main() -> None:
    """Serve the contract (UNIMPLEMENTED for now)."""
    settings = ServiceSettings.from_env("policy")
    servicer = unimplemented_servicer(pb_grpc.WorkerServiceServicer, SERVICE, PLANNED)
    add = pb_grpc.add_WorkerServiceServicer_to_server
    await serve(settings, [Registration(mesh.spec("policy").grpc_services[0], add, servicer)])
