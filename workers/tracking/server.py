"""Wiring of the tracking worker process."""

from __future__ import annotations

from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool import config as llm_config
from llm_pool.build import build_pool
from runtime import mesh
from runtime.client import channel
from runtime.server import Registration, serve
from workers.pool_lifecycle import PoolLifecycle
from workers.tool_screen import model_reads, tool_text_screen
from workers.tracking.clients import OrdersClient
from workers.tracking.service import TrackingServicer
from workers.tracking.settings import TrackingSettings
from workers.tracking.templates import TEMPLATES


async def main() -> None:
    """Serve the tracking worker."""
    settings = TrackingSettings.from_env()
    service = settings.service
    # Chains, endpoints and prices come from the inference configuration and the
    # WAYBILL_LLM_* variables; with no endpoint set the chain is the composer alone.
    pool = build_pool(
        llm_config.load(), templates=TEMPLATES, deadline_margin_s=service.deadline_margin_s
    )
    orders_channel = channel(
        settings.orders_address,
        policy=service.deadline_policy(),
        retry=[("waybill.orders.v1.OrdersService", None)],
    )
    orders = OrdersClient(orders_grpc.OrdersServiceStub(orders_channel))
    channels = [orders_channel]
    screen = None
    if model_reads(pool, "tracking"):
        # A model reads the facts: text others wrote is screened first.
        guardrails_channel = channel(
            settings.guardrails_address,
            policy=service.deadline_policy(),
            retry=[("waybill.guardrails.v1.GuardrailsService", None)],
        )
        channels.append(guardrails_channel)
        screen = tool_text_screen(guard_grpc.GuardrailsServiceStub(guardrails_channel))
    servicer = TrackingServicer(orders, pool, screen)
    lifecycle = PoolLifecycle(
        pool,
        channels,
        readiness_timeout_s=settings.readiness_timeout_s,
        readiness_interval_s=settings.readiness_interval_s,
    )

    await serve(
        service,
        [Registration(mesh.WORKER_SERVICE, pb_grpc.add_WorkerServiceServicer_to_server, servicer)],
        ready=lifecycle.ready,
        on_stop=lifecycle.on_stop,
    )
