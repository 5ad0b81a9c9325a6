"""The services of the mesh: names, modules, default ports and start order.

One table that the launcher, the settings and the SRE commands all read, so a
new service is one line here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """How to run and reach one service."""

    name: str
    """Short name used in env vars, logs and the CLI (``orders``)."""
    module: str
    """``python -m <module>`` runs it."""
    default_port: int
    """Loopback port in the embedded default."""
    grpc_services: tuple[str, ...]
    """Fully qualified gRPC services it serves (health and reflection not included)."""
    depends_on: tuple[str, ...] = ()
    """Services it calls; the launcher starts those first."""

    @property
    def env_var(self) -> str:
        """The variable that overrides its address: ``WAYBILL_ORDERS_ADDR``."""
        return f"WAYBILL_{self.name.upper()}_ADDR"

    def address(self, env: dict[str, str] | None = None) -> str:
        """Its ``host:port``, from the environment or the default."""
        source = os.environ if env is None else env
        return source.get(self.env_var) or f"127.0.0.1:{self.default_port}"


WORKER_SERVICE = "waybill.worker.v1.WorkerService"

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("orders", "orders", 50061, ("waybill.orders.v1.OrdersService",)),
    ServiceSpec("ledger", "ledger", 50062, ("waybill.ledger.v1.LedgerService",)),
    ServiceSpec("retrieval", "retrieval", 50063, ("waybill.retrieval.v1.RetrievalService",)),
    ServiceSpec("guardrails", "guardrails", 50064, ("waybill.guardrails.v1.GuardrailsService",)),
    ServiceSpec("router", "router", 50065, ("waybill.router.v1.RouterService",)),
    ServiceSpec("tracking", "workers.tracking", 50066, (WORKER_SERVICE,), ("orders", "guardrails")),
    ServiceSpec("policy", "workers.policy", 50067, (WORKER_SERVICE,), ("retrieval", "orders")),
    ServiceSpec("negotiation", "workers.negotiation", 50068, (WORKER_SERVICE,), ("orders",)),
    ServiceSpec(
        "gateway",
        "gateway",
        50060,
        ("waybill.gateway.v1.GatewayService",),
        ("guardrails", "router", "tracking", "policy", "negotiation", "ledger", "orders"),
    ),
)

BY_NAME: dict[str, ServiceSpec] = {spec.name: spec for spec in SERVICES}


def spec(name: str) -> ServiceSpec:
    """The spec of a service by name; KeyError names the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None


def start_order() -> list[ServiceSpec]:
    """Services in dependency order (every service after the ones it calls)."""
    ordered: list[ServiceSpec] = []
    seen: set[str] = set()

    def visit(s: ServiceSpec) -> None:
        if s.name in seen:
            return
        seen.add(s.name)
        for dep in s.depends_on:
            visit(BY_NAME[dep])
        ordered.append(s)

    for s in SERVICES:
        visit(s)
    return ordered


@dataclass(frozen=True, slots=True)
class HttpServiceSpec:
    """How to run and reach a process that speaks HTTP, not gRPC (the REST edge).

    Kept apart from ``SERVICES`` on purpose: everything that walks that table
    (gRPC health, reflection, base-port layout) assumes a gRPC server.
    """

    name: str
    """Short name used in env vars, logs and the CLI (``edge``)."""
    module: str
    """``python -m <module>`` runs it."""
    default_port: int
    """Loopback port in the embedded default."""
    health_path: str
    """``GET`` path that answers 200 once it can serve."""
    depends_on: tuple[str, ...] = ()
    """gRPC services it calls; the launcher starts it after them."""

    @property
    def env_var(self) -> str:
        """The variable that overrides its address: ``WAYBILL_EDGE_ADDR``."""
        return f"WAYBILL_{self.name.upper()}_ADDR"

    def address(self, env: dict[str, str] | None = None) -> str:
        """Its ``host:port``, from the environment or the default."""
        source = os.environ if env is None else env
        return source.get(self.env_var) or f"127.0.0.1:{self.default_port}"


EDGE = HttpServiceSpec("edge", "gateway.edge", 8080, "/healthz", ("gateway",))
"""The REST edge in front of the gateway: browsers and plain HTTP clients."""
