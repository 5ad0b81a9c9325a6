"""Wiring of the policy process: its contract is served and every method
answers UNIMPLEMENTED with a message saying what is not built yet."""

from __future__ import annotations

from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime.servicer import serve_unbuilt


async def main() -> None:
    """Serve the contract (UNIMPLEMENTED for now)."""
    await serve_unbuilt(
        "policy",
        add=pb_grpc.add_WorkerServiceServicer_to_server,
        base=pb_grpc.WorkerServiceServicer,
        planned="policy answers need the knowledge base, not built yet",
    )
