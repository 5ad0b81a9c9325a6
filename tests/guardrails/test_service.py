"""GuardrailsService on a real aio server: redaction answers, the unbuilt grounding
check says UNIMPLEMENTED, and the settings fail naming a bad variable."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from waybill.guardrails.v1 import guardrails_service_pb2 as pb
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as pb_grpc

from guardrails.service import GuardrailsServicer
from guardrails.settings import GuardrailsSettings
from runtime.errors import error_info_of
from runtime.server import Registration
from runtime.settings import SettingsError
from tests.conftest import StartServer


@pytest.fixture
async def stub(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> pb_grpc.GuardrailsServiceStub:
    address = await serve(
        "guardrails",
        [
            Registration(
                "waybill.guardrails.v1.GuardrailsService",
                pb_grpc.add_GuardrailsServiceServicer_to_server,
                GuardrailsServicer(),
            )
        ],
    )
    return pb_grpc.GuardrailsServiceStub(channels(address))


async def test_input_is_redacted_and_the_checks_say_what_ran(
    stub: pb_grpc.GuardrailsServiceStub,
) -> None:
    reply = await stub.CheckInput(
        pb.CheckInputRequest(
            tenant_id="acme-retail",
            session_id="session-0001",
            text="mail me at avery@example.com about WB1234567890",
        ),
        timeout=5,
    )
    assert reply.verdict == pb.VERDICT_ALLOW
    assert "avery@example.com" not in reply.redacted_text
    assert "WB1234567890" in reply.redacted_text
    assert [f.entity_type for f in reply.findings] == ["EMAIL_ADDRESS"]
    assert list(reply.checks) == ["pii_patterns"]


async def test_the_grounding_check_is_unimplemented_not_a_pass(
    stub: pb_grpc.GuardrailsServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CheckOutput(
            pb.CheckOutputRequest(
                tenant_id="acme-retail",
                session_id="session-0001",
                text="Returns are accepted within 30 days.",
                require_grounding=True,
            ),
            timeout=5,
        )
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "NOT_IMPLEMENTED"


def test_settings_name_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GuardrailsSettings.from_env().service.name == "guardrails"
    monkeypatch.setenv("WAYBILL_ACCESS_LOG", "maybe")
    with pytest.raises(SettingsError, match="WAYBILL_ACCESS_LOG"):
        GuardrailsSettings.from_env()
