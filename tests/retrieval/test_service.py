"""Retrieval: the contract is served, every method answers UNIMPLEMENTED (never a fake
success), and its settings fail naming a bad variable."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from waybill.retrieval.v1 import retrieval_service_pb2 as pb
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from retrieval.service import PLANNED, SERVICE, servicer
from retrieval.settings import RetrievalSettings
from runtime.errors import error_info_of
from runtime.server import Registration
from runtime.settings import SettingsError
from tests.conftest import StartServer
from tests.support.unbuilt import every_method_is_unimplemented


async def test_every_method_answers_unimplemented() -> None:
    refused = await every_method_is_unimplemented(servicer(), SERVICE)
    assert {"Search", "IngestDocuments", "DeleteDocument"} <= set(refused)


async def test_over_grpc_the_answer_names_what_is_missing(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> None:
    address = await serve(
        "retrieval",
        [Registration(SERVICE, pb_grpc.add_RetrievalServiceServicer_to_server, servicer())],
    )
    stub = pb_grpc.RetrievalServiceStub(channels(address))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Search(pb.SearchRequest(tenant_id="acme-retail", query="return window"))
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert PLANNED in (raised.value.details() or "")
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "NOT_IMPLEMENTED"


def test_settings_name_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RetrievalSettings.from_env().service.name == "retrieval"
    monkeypatch.setenv("WAYBILL_GRACE_S", "soon")
    with pytest.raises(SettingsError, match="WAYBILL_GRACE_S"):
        RetrievalSettings.from_env()
