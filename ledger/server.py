"""Wiring of the ledger process: its contract is served and every method
answers UNIMPLEMENTED with a message saying what is not built yet."""

from __future__ import annotations

from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from runtime.servicer import serve_unbuilt


async def main() -> None:
    """Serve the contract (UNIMPLEMENTED for now)."""
    await serve_unbuilt(
        "ledger",
        add=pb_grpc.add_LedgerServiceServicer_to_server,
        base=pb_grpc.LedgerServiceServicer,
        planned="budgets and cost accounting are not built yet",
    )
