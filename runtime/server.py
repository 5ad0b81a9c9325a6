"""Service bootstrap: aio server, health (per service), reflection, the
interceptor chain, and a graceful stop (NOT_SERVING first, then drain)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from runtime import logs, metrics, reflection, telemetry
from runtime.interceptors import chain
from runtime.settings import ServiceSettings

log = logging.getLogger("waybill.server")


@dataclass(frozen=True, slots=True)
class Registration:
    """One gRPC service a process serves."""

    name: str
    """Fully qualified service name (``waybill.orders.v1.OrdersService``)."""
    add: Callable[[Any, grpc.aio.Server], None]
    """The generated ``add_XServicer_to_server`` function."""
    servicer: Any
    """The servicer instance."""


@dataclass(slots=True)
class RunningServer:
    """A started server and what is needed to stop it."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    names: tuple[str, ...]

    async def set_serving(self, serving: bool) -> None:
        """Report every service (and the overall "") SERVING or NOT_SERVING."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.names):
            await self.health.set(name, status)

    async def stop(self, *, drain_s: float, grace_s: float) -> None:
        """NOT_SERVING first, wait for load balancers to notice, then stop."""
        await self.set_serving(False)
        if drain_s:
            await asyncio.sleep(drain_s)
        await self.server.stop(grace_s)


async def start(settings: ServiceSettings, registrations: Sequence[Registration]) -> RunningServer:
    """Build and start the server; every service starts NOT_SERVING."""
    telemetry.configure(settings.name)
    interceptors = chain(
        service=settings.name,
        access_log=settings.access_log,
        access_log_sample=settings.access_log_sample,
        faults=settings.faults,
    )
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 8 * 1024 * 1024)],
    )
    names = tuple(r.name for r in registrations)
    for registration in registrations:
        registration.add(registration.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable(server, (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    port = server.add_insecure_port(settings.address)
    await server.start()
    running = RunningServer(server=server, port=port, health=health_servicer, names=names)
    await running.set_serving(False)
    if settings.faults.delay_ms:
        log.warning(
            "fault injection on",
            extra={"delay_ms": settings.faults.delay_ms, "methods": list(settings.faults.methods)},
        )
    return running


async def serve(
    settings: ServiceSettings,
    registrations: Sequence[Registration],
    *,
    ready: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT: start, warm up, report SERVING, then stop gracefully."""
    logs.configure(settings.name, settings.log_level)
    metrics.expose(settings.metrics_port, settings.metrics_host)
    running = await start(settings, registrations)
    host = settings.address.rpartition(":")[0]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        # A stop signal during warm-up (loading data, a model) is honoured at once.
        warm = asyncio.ensure_future(ready())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({warm, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not warm.done():
            warm.cancel()
            await asyncio.gather(warm, return_exceptions=True)
        else:
            stopping.cancel()
            warm.result()
    if not stop.is_set():
        await running.set_serving(True)
        log.info(
            "serving", extra={"address": f"{host}:{running.port}", "services": list(running.names)}
        )
        await stop.wait()
    log.info("stopping", extra={"drain_s": settings.drain_s, "grace_s": settings.grace_s})
    await running.stop(drain_s=settings.drain_s, grace_s=settings.grace_s)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` on uvloop when available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main())
    else:
        uvloop.run(main())
