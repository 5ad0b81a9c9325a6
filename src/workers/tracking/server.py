"""Wiring of the tracking worker process."""

from __future__ import annotations

from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool.composer import Composer
from llm_pool.pool import LLMPool
from runtime import mesh
from runtime.client import channel
from runtime.server import Registration, serve
from runtime.settings import ServiceSettings
from workers.tracking.service import TrackingServicer
from workers.tracking.templates import TEMPLATES


async def main() -> None:
    """Serve the tracking worker."""
    settings = ServiceSettings.from_env("tracking")
    orders_channel = channel(
        mesh.spec("orders").address(),
        policy=settings.deadline_policy(),
        retry=[("waybill.orders.v1.OrdersService", None)],
    )
    pool = LLMPool([Composer(TEMPLATES)], {"tracking": ["composer"]})
    servicer = TrackingServicer(orders_grpc.OrdersServiceStub(orders_channel), pool)

    async def on_stop() -> None:
        await orders_channel.close()

    await serve(
        settings,
        [Registration(mesh.WORKER_SERVICE, pb_grpc.add_WorkerServiceServicer_to_server, servicer)],
        on_stop=on_stop,
    )
