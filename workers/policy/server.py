"""Wiring of the policy worker process."""

from __future__ import annotations

from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as retrieval_grpc
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool import config as llm_config
from llm_pool.build import build_pool
from runtime import mesh
from runtime.client import channel
from runtime.server import Registration, serve
from workers.policy.clients import OrdersClient, RetrievalClient
from workers.policy.service import PolicyServicer
from workers.policy.settings import PolicySettings
from workers.policy.templates import TEMPLATES
from workers.pool_lifecycle import PoolLifecycle

SERVICE = mesh.WORKER_SERVICE


async def main() -> None:
    """Serve the policy worker."""
    settings = PolicySettings.from_env()
    service = settings.service
    pool = build_pool(
        llm_config.load(), templates=TEMPLATES, deadline_margin_s=service.deadline_margin_s
    )
    retrieval_channel = channel(
        settings.retrieval_address,
        policy=service.deadline_policy(),
        retry=[
            ("waybill.retrieval.v1.RetrievalService", "Search"),
            ("waybill.retrieval.v1.RetrievalService", "GetReturnWindow"),
        ],
    )
    orders_channel = channel(
        settings.orders_address,
        policy=service.deadline_policy(),
        retry=[("waybill.orders.v1.OrdersService", None)],
    )
    servicer = PolicyServicer(
        RetrievalClient(retrieval_grpc.RetrievalServiceStub(retrieval_channel)),
        OrdersClient(orders_grpc.OrdersServiceStub(orders_channel)),
        pool,
        gate=settings.gate,
    )
    lifecycle = PoolLifecycle(
        pool,
        [retrieval_channel, orders_channel],
        readiness_timeout_s=settings.readiness_timeout_s,
        readiness_interval_s=settings.readiness_interval_s,
    )

    await serve(
        service,
        [Registration(SERVICE, pb_grpc.add_WorkerServiceServicer_to_server, servicer)],
        ready=lifecycle.ready,
        on_stop=lifecycle.on_stop,
    )
