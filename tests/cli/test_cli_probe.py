"""Health and reflection probes against a real in-process server."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection as reflection_v1alpha
from grpc_reflection.v1alpha import reflection_pb2
from waybill.gateway.v1 import gateway_service_pb2_grpc

from cli import discovery, health, probe
from cli.main import main as cli_main
from cli.ports import free_base_port
from runtime import reflection, server
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
        "grpc.reflection.v1.ServerReflection",
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
    assert found["grpc.reflection.v1.ServerReflection"] == ["ServerReflectionInfo"]


def _ask(address: str, version: str, request: Any) -> Any:
    with grpc.insecure_channel(address) as ch:
        (response,) = list(probe._reflection_call(ch, version)(iter([request]), timeout=5))
    return response


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_both_reflection_versions_answer_the_same(
    running: server.RunningServer, version: str
) -> None:
    address = f"127.0.0.1:{running.port}"
    listing = reflection_pb2.ServerReflectionRequest(list_services="")
    response = await asyncio.to_thread(_ask, address, version, listing)
    names = {s.name for s in response.list_services_response.service}
    assert {GATEWAY, f"grpc.reflection.{version}.ServerReflection"} <= names
    # A client of either version resolves the v1 service itself: its descriptor is v1's.
    symbol = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="grpc.reflection.v1.ServerReflection"
    )
    response = await asyncio.to_thread(_ask, address, version, symbol)
    (blob, *_) = response.file_descriptor_response.file_descriptor_proto
    file = descriptor_pb2.FileDescriptorProto.FromString(blob)
    assert (file.name, file.package) == (
        "grpc/reflection/v1/reflection.proto",
        "grpc.reflection.v1",
    )
    (method,) = file.service[0].method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert method.output_type == ".grpc.reflection.v1.ServerReflectionResponse"
    assert {m.name for m in file.message_type} >= {"ServerReflectionRequest", "ErrorResponse"}


def test_the_v1_file_is_v1alpha_renamed_throughout() -> None:
    v1 = reflection.v1_file()
    alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(alpha)
    assert [m.name for m in v1.message_type] == [m.name for m in alpha.message_type]
    for new, old in zip(v1.message_type, alpha.message_type, strict=True):
        assert [(f.number, f.type) for f in new.field] == [(f.number, f.type) for f in old.field]
    assert "v1alpha" not in v1.SerializeToString().decode("latin-1")


async def test_a_server_with_only_v1alpha_is_still_listed() -> None:
    old_style = grpc.aio.server()
    reflection_v1alpha.enable_server_reflection(
        (GATEWAY, reflection_v1alpha.SERVICE_NAME), old_style
    )
    port = old_style.add_insecure_port("127.0.0.1:0")
    await old_style.start()
    try:
        found = await asyncio.to_thread(probe.list_services, f"127.0.0.1:{port}", 5.0)
    finally:
        await old_style.stop(None)
    assert set(found) == {GATEWAY, "grpc.reflection.v1alpha.ServerReflection"}
    assert "Converse" in found[GATEWAY]


async def test_list_services_unreachable() -> None:
    address = f"127.0.0.1:{free_base_port(1)}"
    with pytest.raises(grpc.RpcError) as exc:
        await asyncio.to_thread(probe.list_services, address, 2.0)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_watch_writes_the_changes_when_piped(
    running: server.RunningServer, tmp_path: Path
) -> None:
    entry = discovery.ServiceEntry(address=f"127.0.0.1:{running.port}", pid=None, log=None)
    discovery.write(tmp_path, {"gateway": entry}, tmp_path / "credentials.json")
    loop = asyncio.get_running_loop()
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        # Between the first check and the second the gateway starts serving.
        pauses.append(seconds)
        if len(pauses) == 1:
            asyncio.run_coroutine_threadsafe(running.set_serving(True), loop).result(5)

    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(
        health.watch,
        tmp_path,
        timeout_s=2.0,
        interval_s=0.5,
        count=3,
        out=out,
        err=err,
        sleep=sleep,
    )
    assert code == 0  # the last check's
    assert pauses == [0.5, 0.5]
    tables = out.getvalue().split("--- ")[1:]
    # Three checks, two tables: the third saw nothing new.
    assert len(tables) == 2
    assert "0/2 SERVING" in tables[0]
    assert "2/2 SERVING" in tables[1]


def test_health_count_needs_watch(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["health", "--count", "2"])
    assert exited.value.code == 2
    assert "--count goes with --watch" in capsys.readouterr().err
