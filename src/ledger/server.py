"""Wiring of the ledger process. Its contract is served; every method answers
UNIMPLEMENTED with a clear message until the budgets issue builds the ledger."""

from __future__ import annotations

from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.server import Registration, serve
from runtime.servicer import unimplemented_servicer
from runtime.settings import ServiceSettings

SERVICE = "waybill.ledger.v1.LedgerService"
PLANNED = "the budgets issue builds the ledger"


async def main() -> None:
    """Serve the contract (UNIMPLEMENTED for now)."""
    settings = ServiceSettings.from_env("ledger")
    servicer = unimplemented_servicer(pb_grpc.LedgerServiceServicer, SERVICE, PLANNED)
    add = pb_grpc.add_LedgerServiceServicer_to_server
    await serve(settings, [Registration(mesh.spec("ledger").grpc_services[0], add, servicer)])
