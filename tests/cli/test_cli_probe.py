"""Health and reflection probes against a real in-process server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from waybill.gateway.v1 import gateway_service_pb2_grpc

from cli import probe
from cli.ports import free_base_port
from runtime import server
from runtime.settings import ServiceSettings

GATEWAY = "waybill.gateway.v1.GatewayService"


@pytest.fixture
async def running() -> AsyncIterator[server.RunningServer]:
    """A server like every service's: health, reflection and the gateway's servicer base."""
    registration = server.Registration(
        name=GATEWAY,
        add=gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server,
        servicer=gateway_service_pb2_grpc.GatewayServiceServicer(),
    )
    started = await server.start(
        ServiceSettings(name="gateway", address="127.0.0.1:0"), [registration]
    )
    yield started
    await started.server.stop(None)


async def _health(address: str, services: list[str]) -> dict[str, str]:
    # The probes are synchronous: off the loop, or they would wait on a server
    # that cannot answer while they block it.
    return await asyncio.to_thread(probe.check_health, address, services, 5.0)


async def test_health_follows_serving_state(running: server.RunningServer) -> None:
    address = f"127.0.0.1:{running.port}"
    assert await _health(address, ["", GATEWAY]) == {"": "NOT_SERVING", GATEWAY: "NOT_SERVING"}
    await running.set_serving(True)
    assert await _health(address, ["", GATEWAY]) == {"": "SERVING", GATEWAY: "SERVING"}


async def test_health_of_unknown_service(running: server.RunningServer) -> None:
    address = f"127.0.0.1:{running.port}"
    assert await _health(address, ["waybill.nope.v1.Nope"]) == {
        "waybill.nope.v1.Nope": "UNREACHABLE: NOT_FOUND"
    }


async def test_health_of_nothing_listening() -> None:
    address = f"127.0.0.1:{free_base_port(1)}"
    assert await _health(address, [""]) == {"": "UNREACHABLE: UNAVAILABLE"}


async def test_list_services(running: server.RunningServer) -> None:
    address = f"127.0.0.1:{running.port}"
    found = await asyncio.to_thread(probe.list_services, address, 5.0)
    assert set(found) == {
        GATEWAY,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert set(found[GATEWAY]) == {
        "Converse",
        "ConfirmAction",
        "GetSession",
        "GetCustomerContext",
        "ListCustomers",
        "ListTickets",
        "ClaimTicket",
        "ResolveTicket",
    }
    assert "Check" in found["grpc.health.v1.Health"]
    assert found["grpc.reflection.v1alpha.ServerReflection"] == ["ServerReflectionInfo"]


async def test_list_services_unreachable() -> None:
    address = f"127.0.0.1:{free_base_port(1)}"
    with pytest.raises(grpc.RpcError) as exc:
        await asyncio.to_thread(probe.list_services, address, 2.0)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
