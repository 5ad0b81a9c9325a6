"""The interceptor chain on a real aio server: validation, error mapping, context."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from runtime import context
from runtime.errors import ResourceExhausted, error_info_of, violations_of
from runtime.server import Registration
from tests.conftest import StartServer

SERVICE = "waybill.router.v1.RouterService"
seen: dict[str, str] = {}


class Probe(pb_grpc.RouterServiceServicer):
    """Behaves according to the text it is sent."""

    async def Classify(
        self, request: pb.ClassifyRequest, context_: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        seen["request_id"] = context.request_id.get()
        seen["tenant"] = context.tenant_id.get()
        if request.text == "budget":
            raise ResourceExhausted(
                "over budget", reason="BUDGET_EXCEEDED", metadata={"team": "t"}, retry_after_s=30
            )
        if request.text == "bug":
            raise ZeroDivisionError("boom")
        if request.text == "dependency-down":
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"
            )
        if request.text == "dependency-invalid":
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "bad"
            )
        if request.text == "slow":
            await asyncio.sleep(5)
        return pb.ClassifyResponse(classifier_version="probe")


@pytest.fixture
async def stub(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> pb_grpc.RouterServiceStub:
    address = await serve(
        "router", [Registration(SERVICE, pb_grpc.add_RouterServiceServicer_to_server, Probe())]
    )
    return pb_grpc.RouterServiceStub(channels(address))


async def test_valid_request_passes_with_context(stub: pb_grpc.RouterServiceStub) -> None:
    md = (("x-request-id", "req-123"), ("x-waybill-tenant", "acme-retail"))
    reply = await stub.Classify(pb.ClassifyRequest(tenant_id="acme-retail", text="hi"), metadata=md)
    assert reply.classifier_version == "probe"
    assert seen == {"request_id": "req-123", "tenant": "acme-retail"}


async def test_violations_become_invalid_argument_with_rule_ids(
    stub: pb_grpc.RouterServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Classify(pb.ClassifyRequest(tenant_id="Not A Tenant", text=""))
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    rules = {(v.field, v.reason) for v in violations_of(error)}
    assert rules == {("tenant_id", "string.pattern"), ("text", "string.min_len")}
    info = error_info_of(error)
    assert info is not None
    assert info.reason == "VALIDATION_FAILED"
    assert info.domain == "router.waybill"


async def test_domain_error_maps_to_status_with_one_error_info_and_retry(
    stub: pb_grpc.RouterServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Classify(pb.ClassifyRequest(tenant_id="acme", text="budget"))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info_of(raised.value)
    assert info is not None
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "BUDGET_EXCEEDED",
        "router.waybill",
        {"team": "t"},
    )
    from google.rpc import error_details_pb2

    from runtime.errors import details_of

    status = details_of(raised.value)
    assert status is not None
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(infos) == 1
    assert len(retry) == 1


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("bug", grpc.StatusCode.INTERNAL, "INTERNAL"),
        ("dependency-down", grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE"),
        ("dependency-invalid", grpc.StatusCode.INTERNAL, "DEPENDENCY_FAILED"),
    ],
)
async def test_unexpected_errors(
    stub: pb_grpc.RouterServiceStub, text: str, code: grpc.StatusCode, reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Classify(pb.ClassifyRequest(tenant_id="acme", text=text))
    assert raised.value.code() == code
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == reason
    assert "boom" not in (raised.value.details() or "")


async def test_deadline_expiry_ends_the_call(stub: pb_grpc.RouterServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Classify(pb.ClassifyRequest(tenant_id="acme", text="slow"), timeout=0.2)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
