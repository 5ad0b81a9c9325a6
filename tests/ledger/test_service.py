"""The ledger: the contract is served, every method answers UNIMPLEMENTED (never a fake
success), and its settings fail naming a bad variable."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from waybill.ledger.v1 import ledger_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from ledger.service import PLANNED, SERVICE, servicer
from ledger.settings import LedgerSettings
from runtime.errors import error_info_of
from runtime.server import Registration
from runtime.settings import SettingsError
from tests.conftest import StartServer
from tests.support.unbuilt import every_method_is_unimplemented


async def test_every_method_answers_unimplemented() -> None:
    refused = await every_method_is_unimplemented(servicer(), SERVICE)
    assert {"Reserve", "Commit", "Release", "GetBudget"} <= set(refused)


async def test_over_grpc_the_answer_names_what_is_missing(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> None:
    address = await serve(
        "ledger", [Registration(SERVICE, pb_grpc.add_LedgerServiceServicer_to_server, servicer())]
    )
    stub = pb_grpc.LedgerServiceStub(channels(address))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetBudget(pb.GetBudgetRequest(tenant_id="acme-retail", team_id="support"))
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert PLANNED in (raised.value.details() or "")
    info = error_info_of(raised.value)
    assert info is not None
    assert (info.reason, info.domain) == ("NOT_IMPLEMENTED", "ledger.waybill")


def test_settings_name_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LedgerSettings.from_env().service.name == "ledger"
    monkeypatch.setenv("WAYBILL_LEDGER_ADDR", "ledger")
    with pytest.raises(SettingsError, match="WAYBILL_LEDGER_ADDR"):
        LedgerSettings.from_env()
