"""The negotiation worker: the contract is served, every method answers UNIMPLEMENTED
(never a fake success), and the settings fail naming a bad variable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from waybill.common.v1 import intent_pb2
from waybill.worker.v1 import worker_service_pb2 as pb
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from runtime.errors import error_info_of
from runtime.mesh import WORKER_SERVICE
from runtime.server import Registration
from runtime.settings import SettingsError
from tests.conftest import StartServer
from tests.support.unbuilt import every_method_is_unimplemented
from workers.negotiation import service as negotiation
from workers.negotiation.settings import NegotiationSettings
from workers.policy.settings import PolicySettings

UNBUILT = [("negotiation", negotiation)]


@pytest.mark.parametrize(("name", "module"), UNBUILT)
async def test_every_method_answers_unimplemented(name: str, module: Any) -> None:
    assert module.SERVICE == WORKER_SERVICE
    assert await every_method_is_unimplemented(module.servicer(), module.SERVICE) == ["RunTurn"]


@pytest.mark.parametrize(("name", "module"), UNBUILT)
async def test_a_turn_over_grpc_ends_unimplemented_without_an_event(
    name: str, module: Any, serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> None:
    address = await serve(
        name,
        [
            Registration(
                WORKER_SERVICE, pb_grpc.add_WorkerServiceServicer_to_server, module.servicer()
            )
        ],
    )
    stub = pb_grpc.WorkerServiceStub(channels(address))
    request = pb.RunTurnRequest(
        tenant_id="acme-retail",
        user_id="acme-0001",
        session_id="session-0001",
        message="I want a refund",
        intent=intent_pb2.INTENT_NEGOTIATION_REFUND_REQUEST,
    )
    events: list[pb.RunTurnResponse] = []

    async def consume() -> None:
        async for event in stub.RunTurn(request, timeout=5):
            events.append(event)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await consume()
    assert events == []
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert module.PLANNED in (raised.value.details() or "")
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "NOT_IMPLEMENTED"


@pytest.mark.parametrize("settings", [PolicySettings, NegotiationSettings])
def test_settings_name_a_bad_variable(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    assert settings.from_env().service.name in {"policy", "negotiation"}
    monkeypatch.setenv("WAYBILL_DRAIN_S", "-1")
    with pytest.raises(SettingsError, match="WAYBILL_DRAIN_S"):
        settings.from_env()
