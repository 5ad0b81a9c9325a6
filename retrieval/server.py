"""Wiring of the retrieval process: its contract is served and every method
answers UNIMPLEMENTED with a message saying what is not built yet."""

from __future__ import annotations

from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from runtime.servicer import serve_unbuilt


async def main() -> None:
    """Serve the contract (UNIMPLEMENTED for now)."""
    await serve_unbuilt(
        "retrieval",
        add=pb_grpc.add_RetrievalServiceServicer_to_server,
        base=pb_grpc.RetrievalServiceServicer,
        planned="the policy knowledge base is not built yet",
    )
