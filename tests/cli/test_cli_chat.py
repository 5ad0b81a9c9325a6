"""``waybill chat`` against an in-process fake gateway."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from waybill.common.v1 import (
    conversation_pb2,
    customer_pb2,
    events_pb2,
    intent_pb2,
    money_pb2,
    usage_pb2,
)
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc

from cli import chat, discovery
from cli.render import Style, use_color
from tests.support.keys import clients_file

KEY = "wb_test_key_not_a_secret"
ACTION_ID = "act_0123456789abcdef"
SESSION_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _final(answer: str, intent: int) -> gw.TurnEvent:
    return gw.TurnEvent(
        final=gw.Final(
            intent=intent,  # type: ignore[arg-type]
            worker=intent_pb2.WORKER_TRACKING,
            usage=usage_pb2.Usage(input_tokens=10, output_tokens=5),
            answer=answer,
        )
    )


@dataclass
class FakeGateway(gateway_service_pb2_grpc.GatewayServiceServicer):
    """Scripted answers keyed on the message; records what it was sent."""

    converse: list[gw.ConverseRequest] = field(default_factory=list)
    confirms: list[gw.ConfirmActionRequest] = field(default_factory=list)
    listed: int = 0

    async def _auth(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if dict(context.invocation_metadata() or ()).get("x-api-key") != KEY:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad key")

    async def ListCustomers(
        self, request: gw.ListCustomersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gw.ListCustomersResponse:
        await self._auth(context)
        self.listed += 1
        first = gw.CustomerSummary(
            user_id="acme-0001",
            display_name="Ada Demo",
            tier=customer_pb2.CUSTOMER_TIER_GOLD,
            region="US",
        )
        return gw.ListCustomersResponse(customers=[first])

    async def GetCustomerContext(
        self, request: gw.GetCustomerContextRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gw.GetCustomerContextResponse:
        await self._auth(context)
        order = customer_pb2.OrderBrief(
            order_id="ORD-20260001",
            awb="WB1234567890",
            title="Laptop stand",
            status=customer_pb2.SHIPMENT_STATUS_IN_TRANSIT,
            eta=timestamp_pb2.Timestamp(seconds=1_767_225_600),  # 2026-01-01
        )
        ctx = customer_pb2.HydratedContext(
            tier=customer_pb2.CUSTOMER_TIER_GOLD, region="US", active_orders=[order]
        )
        return gw.GetCustomerContextResponse(context=ctx)

    async def Converse(
        self, request: gw.ConverseRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[gw.ConverseResponse]:
        await self._auth(context)
        self.converse.append(request)
        if request.message == "boom":
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota spent")
        if request.message == "broken":
            failure = events_pb2.TurnError(
                code=events_pb2.STATUS_CODE_UNAVAILABLE,
                reason="BACKEND_STREAM_BROKEN",
                message="Try again.",
            )
            yield gw.ConverseResponse(event=gw.TurnEvent(error=failure))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Try again.")
        if request.message == "refund please":
            action = conversation_pb2.PendingAction(
                action_id=ACTION_ID,
                kind=conversation_pb2.ACTION_KIND_REFUND,
                order_id="ORD-20260001",
                amount=money_pb2.Money(currency_code="USD", minor_units=1234),
                summary="Refund 12.34 USD to your card.",
            )
            yield gw.ConverseResponse(
                event=gw.TurnEvent(
                    confirmation_request=events_pb2.ConfirmationRequest(action=action)
                )
            )
            return
        args = struct_pb2.Struct()
        args.update({"awb": "WB1234567890"})
        call = events_pb2.ToolCall(
            name="get_order_status",
            arguments=args,
            outcome=events_pb2.STATUS_CODE_OK,
            duration_us=1500,
        )
        yield gw.ConverseResponse(event=gw.TurnEvent(tool_call=call))
        for text in ("Your parcel ", "is on its way."):
            yield gw.ConverseResponse(event=gw.TurnEvent(delta=events_pb2.TextDelta(text=text)))
        final = _final("Your parcel is on its way.", intent_pb2.INTENT_TRACKING_STATUS)
        yield gw.ConverseResponse(event=final)

    async def ConfirmAction(
        self, request: gw.ConfirmActionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[gw.ConfirmActionResponse]:
        await self._auth(context)
        self.confirms.append(request)
        text = (
            "Refund created."
            if request.decision == conversation_pb2.DECISION_CONFIRM
            else "Nothing was changed."
        )
        final = _final(text, intent_pb2.INTENT_NEGOTIATION_REFUND_REQUEST)
        yield gw.ConfirmActionResponse(event=final)


@dataclass
class Gateway:
    address: str
    fake: FakeGateway


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    fake = FakeGateway()
    server = grpc.aio.server()
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Gateway(f"127.0.0.1:{port}", fake)
    await server.stop(None)


class Script:
    """Plays the lines a person would type; EOF after the last."""

    def __init__(self, *lines: str) -> None:
        self.lines = list(lines)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.lines:
            raise EOFError
        return self.lines.pop(0)


@dataclass
class Result:
    code: int
    out: str
    err: str
    script: Script


async def _chat(options: chat.ChatOptions, *lines: str) -> Result:
    out, err, script = io.StringIO(), io.StringIO(), Script(*lines)
    # The client is synchronous: off the loop that serves the fake gateway.
    code = await asyncio.to_thread(chat.run, options, read_line=script, out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue(), script)


async def test_full_conversation(gateway: Gateway, tmp_path: Path) -> None:
    options = chat.ChatOptions(run_dir=tmp_path, gateway=gateway.address, api_key=KEY)
    result = await _chat(
        options, "where is my parcel", "", "refund please", "y", "boom", "broken", "/quit"
    )
    assert result.code == 0
    out = result.out
    assert "customer: acme-0001 (Ada Demo, gold)" in out
    assert "ORD-20260001  WB1234567890  in_transit" in out
    assert "eta 2026-01-01  Laptop stand" in out
    assert '  [tool] get_order_status {"awb":"WB1234567890"} -> OK (1.5 ms)\n' in out
    assert "Your parcel is on its way.\n" in out
    assert "[tracking_status via tracking, 10+5 tokens]" in out
    assert "confirmation needed: refund of ORD-20260001, 12.34 USD" in out
    assert "Refund created." in out
    assert "error: RESOURCE_EXHAUSTED: quota spent" in result.err
    assert "turn failed: UNAVAILABLE BACKEND_STREAM_BROKEN: Try again." in out
    # The status that repeats the error event is not printed a second time.
    assert "error: UNAVAILABLE" not in result.err
    assert "Traceback" not in result.err
    assert "\x1b[" not in out  # not a TTY: plain text
    assert KEY not in out + result.err
    assert "Confirm? [y/N] " in result.script.prompts

    fake = gateway.fake
    assert [r.message for r in fake.converse] == [
        "where is my parcel",
        "refund please",
        "boom",
        "broken",
    ]
    sessions = {r.session_id for r in fake.converse} | {r.session_id for r in fake.confirms}
    assert len(sessions) == 1
    assert SESSION_PATTERN.match(sessions.pop())
    assert {r.user_id for r in fake.converse} == {"acme-0001"}
    assert [(r.action_id, r.decision) for r in fake.confirms] == [
        (ACTION_ID, conversation_pb2.DECISION_CONFIRM)
    ]


@pytest.mark.parametrize("answers", [("n",), ()], ids=["no", "eof"])
async def test_anything_but_yes_declines(
    gateway: Gateway, tmp_path: Path, answers: tuple[str, ...]
) -> None:
    options = chat.ChatOptions(
        run_dir=tmp_path, gateway=gateway.address, api_key=KEY, customer="acme-0002"
    )
    result = await _chat(options, "refund please", *answers)
    assert result.code == 0
    assert "Nothing was changed." in result.out
    assert [r.decision for r in gateway.fake.confirms] == [conversation_pb2.DECISION_DECLINE]
    assert gateway.fake.listed == 0
    assert {r.user_id for r in gateway.fake.converse} == {"acme-0002"}


async def test_bad_key_fails_at_start(gateway: Gateway, tmp_path: Path) -> None:
    options = chat.ChatOptions(run_dir=tmp_path, gateway=gateway.address, api_key="wrong")
    result = await _chat(options, "hello")
    assert result.code == 1
    assert result.err.startswith("error: UNAUTHENTICATED: bad key")
    assert "wrong" not in result.out


async def test_key_and_gateway_from_the_run_dir(gateway: Gateway, tmp_path: Path) -> None:
    keys = clients_file(tmp_path / "credentials.json", ("acme-retail", "globex-home"))
    entries = {"gateway": discovery.ServiceEntry(gateway.address, None, None)}
    discovery.write(tmp_path, entries, tmp_path / "credentials.json")
    options = chat.ChatOptions(run_dir=tmp_path, tenant="globex-home")
    assert chat.resolve_gateway(options) == gateway.address
    assert chat.resolve_api_key(options, {}) == keys[1].api_key
    assert chat.resolve_api_key(options, {chat.API_KEY_ENV: "from-env"}) == "from-env"
    with pytest.raises(chat.ChatSetupError, match="no key for tenant"):
        chat.resolve_api_key(chat.ChatOptions(run_dir=tmp_path, tenant="initech"), {})


def test_missing_credentials_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(chat.ChatSetupError, match="waybill up"):
        chat.resolve_api_key(chat.ChatOptions(run_dir=tmp_path), {})


def test_refusal_error_and_escalation_lines() -> None:
    out = io.StringIO()
    printer = chat.TurnPrinter(out, Style(enabled=False))
    printer.event(gw.TurnEvent(delta=events_pb2.TextDelta(text="Let me")))
    printer.event(
        gw.TurnEvent(
            refusal=events_pb2.Refusal(
                reason=events_pb2.REFUSAL_REASON_OUT_OF_SCOPE, message="I can't help with that."
            )
        )
    )
    printer.event(
        gw.TurnEvent(
            error=events_pb2.TurnError(
                code=events_pb2.STATUS_CODE_UNAVAILABLE,
                reason="BACKEND_STREAM_BROKEN",
                message="Try again.",
                retryable=True,
            )
        )
    )
    printer.event(gw.TurnEvent(escalation=events_pb2.Escalation(ticket_id="T-1", queue="refunds")))
    assert out.getvalue().splitlines() == [
        "Let me",
        "refused (OUT_OF_SCOPE): I can't help with that.",
        "turn failed: UNAVAILABLE BACKEND_STREAM_BROKEN: Try again. (retryable)",
        "handed to a human: ticket T-1 in queue refunds",
    ]


def test_tool_calls_are_dimmed_on_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Tty()
    printer = chat.TurnPrinter(out, Style(use_color(out)))
    printer.event(gw.TurnEvent(tool_call=events_pb2.ToolCall(name="get_order_status")))
    assert out.getvalue().startswith("\x1b[2m  [tool] get_order_status")


def test_money_exponents() -> None:
    assert chat.money(money_pb2.Money(currency_code="INR", minor_units=123456)) == "1234.56 INR"
    assert chat.money(money_pb2.Money(currency_code="JPY", minor_units=500)) == "500 JPY"
