"""Wiring of the negotiation worker process."""

from __future__ import annotations

from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool import config as llm_config
from llm_pool.build import build_pool
from runtime import mesh
from runtime.client import channel
from runtime.server import Registration, serve
from runtime.settings import SettingsError
from workers.negotiation.clients import OrdersClient
from workers.negotiation.service import SHADOW_USE_CASE, USE_CASE, NegotiationServicer
from workers.negotiation.settings import NegotiationSettings
from workers.negotiation.templates import TEMPLATES
from workers.pool_lifecycle import PoolLifecycle
from workers.shadow import Shadow


async def main() -> None:
    """Serve the negotiation worker."""
    settings = NegotiationSettings.from_env()
    service = settings.service
    # Chains, endpoints and prices come from the inference configuration and the
    # WAYBILL_LLM_* variables; with no endpoint set the chain is the composer alone.
    config = llm_config.load()
    if settings.shadow is not None:
        # The candidate gets its own chain in the same pool (its own breakers, its metrics);
        # a prompt-only candidate runs on production's chain.
        names = settings.shadow.chain or config.chain(USE_CASE)
        try:
            config = llm_config.with_chain(config, SHADOW_USE_CASE, names)
        except llm_config.ConfigError as exc:
            raise SettingsError(f"WAYBILL_SHADOW_CHAIN: {exc}") from None
    pool = build_pool(config, templates=TEMPLATES, deadline_margin_s=service.deadline_margin_s)
    shadow = (
        Shadow(pool, settings.shadow, use_case=USE_CASE, candidate_use_case=SHADOW_USE_CASE)
        if settings.shadow is not None
        else None
    )
    # Orders' writes are idempotent by key, so the channel's retries cannot make a
    # second refund.
    orders_channel = channel(
        settings.orders_address,
        policy=service.deadline_policy(),
        retry=[("waybill.orders.v1.OrdersService", None)],
    )
    servicer = NegotiationServicer(
        OrdersClient(orders_grpc.OrdersServiceStub(orders_channel)),
        settings.limits,
        pool=pool,
        shadow=shadow,
    )
    lifecycle = PoolLifecycle(
        pool,
        [orders_channel],
        readiness_timeout_s=settings.readiness_timeout_s,
        readiness_interval_s=settings.readiness_interval_s,
    )

    async def on_stop() -> None:
        if shadow is not None:
            await shadow.close()
        await lifecycle.on_stop()

    await serve(
        service,
        [Registration(mesh.WORKER_SERVICE, pb_grpc.add_WorkerServiceServicer_to_server, servicer)],
        ready=lifecycle.ready,
        on_stop=on_stop,
    )
