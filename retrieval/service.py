"""The RetrievalService servicer of retrieval: the contract is served but not built, so
every method answers UNIMPLEMENTED saying what is missing, never a fake success."""

from __future__ import annotations

from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.servicer import unimplemented_servicer

SERVICE = mesh.spec("retrieval").grpc_services[0]
"""The fully qualified gRPC service served."""
PLANNED = "the policy knowledge base is not built yet"
"""What the UNIMPLEMENTED answers say is missing."""


def servicer() -> pb_grpc.RetrievalServiceServicer:
    """A servicer whose every method answers UNIMPLEMENTED (reason ``NOT_IMPLEMENTED``)."""
    built: pb_grpc.RetrievalServiceServicer = unimplemented_servicer(
        pb_grpc.RetrievalServiceServicer, SERVICE, PLANNED
    )
    return built
