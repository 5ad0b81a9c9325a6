"""Wiring of the ledger process: settings, the servicer, serving."""

from __future__ import annotations

from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from ledger.service import SERVICE, servicer
from ledger.settings import LedgerSettings
from runtime.server import Registration, serve


async def main() -> None:
    """Serve the contract (every method UNIMPLEMENTED for now)."""
    settings = LedgerSettings.from_env()
    add = pb_grpc.add_LedgerServiceServicer_to_server
    await serve(settings.service, [Registration(SERVICE, add, servicer())])
