"""Wiring of the router process."""

from __future__ import annotations

from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from router.service import RouterServicer
from runtime import mesh
from runtime.server import Registration, serve
from runtime.settings import ServiceSettings


async def main() -> None:
    """Serve the router."""
    settings = ServiceSettings.from_env("router")
    add = pb_grpc.add_RouterServiceServicer_to_server
    await serve(
        settings, [Registration(mesh.spec("router").grpc_services[0], add, RouterServicer())]
    )
