"""The LedgerService servicer of the ledger: the contract is served but not built, so
every method answers UNIMPLEMENTED saying what is missing, never a fake success."""

from __future__ import annotations

from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.servicer import unimplemented_servicer

SERVICE = mesh.spec("ledger").grpc_services[0]
"""The fully qualified gRPC service served."""
PLANNED = "budgets and cost accounting are not built yet"
"""What the UNIMPLEMENTED answers say is missing."""


def servicer() -> pb_grpc.LedgerServiceServicer:
    """A servicer whose every method answers UNIMPLEMENTED (reason ``NOT_IMPLEMENTED``)."""
    built: pb_grpc.LedgerServiceServicer = unimplemented_servicer(
        pb_grpc.LedgerServiceServicer, SERVICE, PLANNED
    )
    return built
