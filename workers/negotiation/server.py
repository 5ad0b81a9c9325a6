"""Wiring of the negotiation worker process."""

from __future__ import annotations

from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.client import channel
from runtime.server import Registration, serve
from workers.negotiation.clients import OrdersClient
from workers.negotiation.service import NegotiationServicer
from workers.negotiation.settings import NegotiationSettings


async def main() -> None:
    """Serve the negotiation worker."""
    settings = NegotiationSettings.from_env()
    service = settings.service
    # Orders' writes are idempotent by key, so the channel's retries cannot make a
    # second refund.
    orders_channel = channel(
        settings.orders_address,
        policy=service.deadline_policy(),
        retry=[("waybill.orders.v1.OrdersService", None)],
    )
    servicer = NegotiationServicer(
        OrdersClient(orders_grpc.OrdersServiceStub(orders_channel)), settings.limits
    )

    async def on_stop() -> None:
        await orders_channel.close()

    await serve(
        service,
        [Registration(mesh.WORKER_SERVICE, pb_grpc.add_WorkerServiceServicer_to_server, servicer)],
        on_stop=on_stop,
    )
