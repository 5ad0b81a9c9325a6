"""The WorkerService servicer of the negotiation worker: the contract is served but not built, so
every method answers UNIMPLEMENTED saying what is missing, never a fake success."""

from __future__ import annotations

from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.servicer import unimplemented_servicer

SERVICE = mesh.spec("negotiation").grpc_services[0]
"""The fully qualified gRPC service served."""
PLANNED = "refunds and disputes are not built yet"
"""What the UNIMPLEMENTED answers say is missing."""


def servicer() -> pb_grpc.WorkerServiceServicer:
    """A servicer whose every method answers UNIMPLEMENTED (reason ``NOT_IMPLEMENTED``)."""
    built: pb_grpc.WorkerServiceServicer = unimplemented_servicer(
        pb_grpc.WorkerServiceServicer, SERVICE, PLANNED
    )
    return built
