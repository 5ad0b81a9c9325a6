"""Wiring of the gateway process."""

from __future__ import annotations

import logging
from pathlib import Path

from waybill.common.v1 import intent_pb2
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.router.v1 import router_service_pb2_grpc as router_grpc
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from gateway.auth import Authenticator
from gateway.conversation import Conversations, Dependencies, Limits
from gateway.redis_sessions import RedisSessionStore
from gateway.service import GatewayServicer
from gateway.sessions import InMemorySessionStore, SessionStore
from runtime import credentials, mesh
from runtime.client import channel
from runtime.server import Registration, serve
from runtime.settings import ServiceSettings, SettingsError, env_float, env_int, env_str

log = logging.getLogger("waybill.gateway")


def session_store() -> SessionStore:
    """Redis when ``WAYBILL_REDIS_URL`` is set (the fleet), else in-process (embedded)."""
    ttl_s = env_float("WAYBILL_SESSION_TTL_S", 1800.0, minimum=1)
    turns = env_int("WAYBILL_SESSION_TURNS", 10, minimum=1)
    url = env_str("WAYBILL_REDIS_URL", "")
    if url:
        prefix = env_str("WAYBILL_REDIS_PREFIX", "waybill:")
        log.info("sessions in redis", extra={"prefix": prefix})
        return RedisSessionStore.from_url(url, prefix=prefix, ttl_s=ttl_s, turns=turns)
    return InMemorySessionStore(ttl_s=ttl_s, turns=turns)


async def main() -> None:
    """Connect to the mesh and serve the gateway."""
    settings = ServiceSettings.from_env("gateway")
    creds_path = Path(env_str(credentials.CREDENTIALS_ENV, ".waybill/credentials.json"))
    try:
        keys = credentials.load(creds_path)
    except FileNotFoundError:
        raise SettingsError(f"{credentials.CREDENTIALS_ENV}={creds_path} does not exist") from None
    auth = Authenticator(keys)
    policy = settings.deadline_policy()
    reads = [
        ("waybill.orders.v1.OrdersService", "ListActiveOrders"),
        ("waybill.orders.v1.OrdersService", "ListCustomers"),
        ("waybill.guardrails.v1.GuardrailsService", None),
        ("waybill.router.v1.RouterService", "Classify"),
    ]
    # The tracking worker is read-only by construction, so a turn it never
    # started may be retried on UNAVAILABLE; the other workers write.
    tracking_reads = [*reads, (mesh.WORKER_SERVICE, "RunTurn")]
    channels = {
        name: channel(
            mesh.spec(name).address(),
            policy=policy,
            retry=tracking_reads if name == "tracking" else reads,
        )
        for name in ("guardrails", "router", "orders", "tracking", "policy", "negotiation")
    }
    negotiation = worker_grpc.WorkerServiceStub(channels["negotiation"])
    deps = Dependencies(
        guardrails=guard_grpc.GuardrailsServiceStub(channels["guardrails"]),
        router=router_grpc.RouterServiceStub(channels["router"]),
        orders=orders_grpc.OrdersServiceStub(channels["orders"]),
        workers={
            intent_pb2.WORKER_TRACKING: worker_grpc.WorkerServiceStub(channels["tracking"]),
            intent_pb2.WORKER_POLICY: worker_grpc.WorkerServiceStub(channels["policy"]),
            intent_pb2.WORKER_NEGOTIATION: negotiation,
            intent_pb2.WORKER_HUMAN: negotiation,
        },
    )
    sessions = session_store()
    limits = Limits(hydration_ttl_s=env_float("WAYBILL_HYDRATION_TTL_S", 5.0))
    servicer = GatewayServicer(
        auth=auth, conversations=Conversations(deps, sessions, limits), sessions=sessions, deps=deps
    )

    async def on_stop() -> None:
        for ch in channels.values():
            await ch.close()
        await sessions.close()

    await serve(
        settings,
        [
            Registration(
                mesh.spec("gateway").grpc_services[0],
                pb_grpc.add_GatewayServiceServicer_to_server,
                servicer,
            )
        ],
        on_stop=on_stop,
    )
