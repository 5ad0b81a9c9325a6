"""Wiring of the negotiation process: its contract is served and every method
answers UNIMPLEMENTED with a message saying what is not built yet."""

from __future__ import annotations

from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime.servicer import serve_unbuilt


async def main() -> None:
    """Serve the contract (UNIMPLEMENTED for now)."""
    await serve_unbuilt(
        "negotiation",
        add=pb_grpc.add_WorkerServiceServicer_to_server,
        base=pb_grpc.WorkerServiceServicer,
        planned="refunds and disputes are not built yet",
    )
