"""The interceptor chain on a real aio server: validation, error mapping, context."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from runtime import context
from runtime.errors import (
    STATUS_DETAILS_KEY,
    ResourceExhausted,
    details_of,
    error_info_of,
    violations_of,
)
from runtime.interceptors import ServerInterceptor, chain
from runtime.server import Registration
from tests.conftest import StartServer
from tests.runtime.peers import failing_peer, rich_status

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
        ("dependency-invalid", grpc.StatusCode.INTERNAL, "DEPENDENCY_REJECTED_REQUEST"),
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


# -- the one error model, metrics, spans and the access log -----------------------------

CLASSIFY = f"/{SERVICE}/Classify"
CLASSIFY_SPAN = f"{SERVICE}/Classify"
"""The span name of a Classify call (semantic conventions: no leading slash)."""


class Forwarder(pb_grpc.RouterServiceServicer):
    """Calls a failing peer and lets its error escape, or aborts by itself."""

    def __init__(self, peer: pb_grpc.RouterServiceStub) -> None:
        self._peer = peer

    async def Classify(
        self, request: pb.ClassifyRequest, context_: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        if request.text.startswith("abort:"):
            code = grpc.StatusCode[request.text.removeprefix("abort:")]
            await context_.abort(
                code,
                "not here",
                trailing_metadata=((STATUS_DETAILS_KEY, rich_status(code)),),
            )
        if request.text == "bare-abort":
            await context_.abort(grpc.StatusCode.ALREADY_EXISTS, "exists")
        await self._peer.Classify(pb.ClassifyRequest(tenant_id="acme", text=request.text))
        return pb.ClassifyResponse(classifier_version="unreachable")


@dataclass
class Probed:
    """A real server behind a ServerInterceptor of its own: its spans and metric labels."""

    stub: pb_grpc.RouterServiceStub
    spans: InMemorySpanExporter
    service: str

    def count(self, code: str) -> float:
        value = REGISTRY.get_sample_value(
            "waybill_rpc_total", {"service": self.service, "method": "Classify", "code": code}
        )
        return value or 0.0


@pytest.fixture
async def probed(request: pytest.FixtureRequest) -> AsyncIterator[Probed]:
    # A service label per test: counters in the process-wide registry do not mix.
    service = f"probe-{uuid.uuid4().hex[:8]}"
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with failing_peer() as peer:
        server = grpc.aio.server(interceptors=chain(service=service, tracer_provider=provider))
        pb_grpc.add_RouterServiceServicer_to_server(Forwarder(peer), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Probed(pb_grpc.RouterServiceStub(channel), spans, service)
        await server.stop(0)


async def _fails(probed: Probed, text: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await probed.stub.Classify(pb.ClassifyRequest(tenant_id="acme", text=text))
    return raised.value


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "waybill.rpc" and r.getMessage() == "rpc"]


async def _settled(
    probed: Probed, code: str, caplog: pytest.LogCaptureFixture | None = None
) -> None:
    """Wait (at most 2 s) for the server to count the call, end its span and log its
    access line: the client holds the status as soon as it is sent, before the server's
    interceptor has finished recording it."""
    for _ in range(200):
        logged = caplog is None or bool(_access_lines(caplog))
        if probed.count(code) and probed.spans.get_finished_spans() and logged:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server did not finish recording a {code} call within 2 s")


@pytest.mark.parametrize(
    ("peer_code", "code", "reason"),
    [
        ("NOT_FOUND", grpc.StatusCode.NOT_FOUND, "PEER_NOT_FOUND"),
        ("FAILED_PRECONDITION", grpc.StatusCode.FAILED_PRECONDITION, "PEER_FAILED_PRECONDITION"),
        ("PERMISSION_DENIED", grpc.StatusCode.PERMISSION_DENIED, "PEER_PERMISSION_DENIED"),
        ("RESOURCE_EXHAUSTED", grpc.StatusCode.RESOURCE_EXHAUSTED, "PEER_RESOURCE_EXHAUSTED"),
        ("UNAVAILABLE", grpc.StatusCode.UNAVAILABLE, "PEER_UNAVAILABLE"),
        ("INVALID_ARGUMENT", grpc.StatusCode.INTERNAL, "DEPENDENCY_REJECTED_REQUEST"),
        ("DATA_LOSS", grpc.StatusCode.INTERNAL, "DEPENDENCY_FAILED"),
    ],
)
async def test_an_escaping_downstream_error_goes_through_the_peer_mapping(
    probed: Probed,
    caplog: pytest.LogCaptureFixture,
    peer_code: str,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    # The level must hold until the access line is written: the server logs it after the
    # client already holds the status.
    with caplog.at_level(logging.INFO, logger="waybill.rpc"):
        error = await _fails(probed, peer_code)
        await _settled(probed, code.name, caplog)
    assert error.code() == code
    info = error_info_of(error)
    assert info is not None
    assert info.reason == reason
    if code is not grpc.StatusCode.INTERNAL:
        assert (info.domain, dict(info.metadata)) == ("orders.waybill", {"team": "support"})
    status = details_of(error)
    assert status is not None
    retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(retry) == (1 if peer_code in ("RESOURCE_EXHAUSTED", "UNAVAILABLE") else 0)
    for internal in ("/waybill.", "OrdersService", "127.0.0.1"):
        assert internal not in (error.details() or "")
    assert probed.count(code.name) == 1
    (line,) = _access_lines(caplog)
    assert (line.__dict__["method"], line.__dict__["code"], line.__dict__["reason"]) == (
        CLASSIFY,
        code.name,
        reason,
    )


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("abort:NOT_FOUND", "NOT_FOUND", "PEER_NOT_FOUND"),
        ("abort:FAILED_PRECONDITION", "FAILED_PRECONDITION", "PEER_FAILED_PRECONDITION"),
        ("bare-abort", "ALREADY_EXISTS", ""),
    ],
)
async def test_a_handlers_own_abort_is_counted_with_its_code(
    probed: Probed, caplog: pytest.LogCaptureFixture, text: str, code: str, reason: str
) -> None:
    with caplog.at_level(logging.INFO, logger="waybill.rpc"):
        error = await _fails(probed, text)
        await _settled(probed, code, caplog)
    assert error.code().name == code
    assert probed.count(code) == 1
    assert probed.count("OK") == 0
    (line,) = _access_lines(caplog)
    assert line.__dict__["code"] == code
    assert line.__dict__.get("reason", "") == reason
    (span,) = probed.spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode[code].value[0]
    assert span.attributes["rpc.system"] == "grpc"
    assert (span.attributes["rpc.service"], span.attributes["rpc.method"]) == (SERVICE, "Classify")


async def test_validation_failures_end_their_span(probed: Probed) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await probed.stub.Classify(pb.ClassifyRequest(tenant_id="Not A Tenant", text=""))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await _settled(probed, "INVALID_ARGUMENT")
    (span,) = probed.spans.get_finished_spans()
    assert span.name == CLASSIFY_SPAN
    assert span.status.status_code is StatusCode.ERROR
    assert probed.count("INVALID_ARGUMENT") == 1


# -- exits that are never a status: driven through the wrapped handler itself --------------


class _Metadatum(NamedTuple):
    """One metadata item as grpc.aio hands it to a server: a pair with names."""

    key: str
    value: str


class _Context:
    """The few ServicerContext methods the interceptors use; records aborts."""

    def __init__(self, *, fail_in_begin: bool = False) -> None:
        self.aborted: list[grpc.StatusCode] = []
        self._fail_in_begin = fail_in_begin

    def invocation_metadata(self) -> tuple[_Metadatum, ...]:
        return (_Metadatum("x-request-id", "req-1"),)

    def peer(self) -> str:
        return "ipv4:127.0.0.1:40000"

    def time_remaining(self) -> float | None:
        if self._fail_in_begin:
            raise RuntimeError("the context broke")
        return None

    async def abort(self, code: grpc.StatusCode, message: str, *_: object, **__: object) -> None:
        self.aborted.append(code)
        raise grpc.aio.AbortError(message)


async def _wrapped(
    spans: InMemorySpanExporter, behaviour: Callable[..., object], *, stream: bool
) -> tuple[Callable[..., Any], str]:
    """``behaviour`` behind the whole chain, as a server would call it."""
    service = f"probe-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    outer, inner = chain(service=service, tracer_provider=provider)
    if stream:
        handler = grpc.unary_stream_rpc_method_handler(behaviour)
    else:
        handler = grpc.unary_unary_rpc_method_handler(behaviour)

    async def terminal(_details: Any) -> grpc.RpcMethodHandler:
        return handler

    async def through_inner(details: Any) -> grpc.RpcMethodHandler:
        return await inner.intercept_service(terminal, details)

    wrapped = await outer.intercept_service(through_inner, _Details(CLASSIFY))
    return (wrapped.unary_stream if stream else wrapped.unary_unary), service


@dataclass(frozen=True)
class _Details:
    """What a server knows of a call before its handler runs."""

    method: str
    invocation_metadata: tuple[_Metadatum, ...] = ()


REQUEST = pb.ClassifyRequest(tenant_id="acme", text="hi")


@pytest.mark.parametrize("exit_", [SystemExit(3), KeyboardInterrupt(), asyncio.CancelledError()])
async def test_process_exits_and_cancellation_pass_untouched(exit_: BaseException) -> None:
    spans = InMemorySpanExporter()

    async def behaviour(_request: Any, _ctx: Any) -> Any:
        raise exit_

    call, _service = await _wrapped(spans, behaviour, stream=False)
    ctx = _Context()
    with pytest.raises(type(exit_)) as raised:
        await call(REQUEST, ctx)
    assert raised.value is exit_
    assert ctx.aborted == []
    assert len(spans.get_finished_spans()) == 1
    assert context.request_id.get() == ""


async def test_a_closed_stream_is_not_turned_into_a_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spans = InMemorySpanExporter()

    async def behaviour(_request: Any, _ctx: Any) -> AsyncIterator[pb.ClassifyResponse]:
        while True:
            yield pb.ClassifyResponse(classifier_version="v")

    call, service = await _wrapped(spans, behaviour, stream=True)
    ctx = _Context()
    stream = call(REQUEST, ctx)
    assert (await stream.__anext__()).classifier_version == "v"
    # The loop's async-generator finaliser closes an abandoned stream in a task
    # of its own: the call's context is not that task's.
    with caplog.at_level(logging.WARNING):
        await asyncio.create_task(stream.aclose())
    assert ctx.aborted == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert len(spans.get_finished_spans()) == 1
    value = REGISTRY.get_sample_value(
        "waybill_rpc_total", {"service": service, "method": "Classify", "code": "CANCELLED"}
    )
    assert value == 1


async def test_a_failure_while_starting_the_call_still_ends_the_span() -> None:
    spans = InMemorySpanExporter()

    async def behaviour(_request: Any, _ctx: Any) -> Any:
        raise AssertionError("the handler must not run")

    call, _service = await _wrapped(spans, behaviour, stream=False)
    ctx = _Context(fail_in_begin=True)
    with pytest.raises(grpc.aio.AbortError):
        await call(REQUEST, ctx)
    assert ctx.aborted == [grpc.StatusCode.INTERNAL]
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


async def test_a_method_nobody_wrote_is_unimplemented_not_a_bug() -> None:
    spans = InMemorySpanExporter()

    async def behaviour(_request: Any, _ctx: Any) -> Any:
        # What a generated servicer base class does for a method not overridden.
        raise NotImplementedError("Method not implemented!")

    call, _service = await _wrapped(spans, behaviour, stream=False)
    ctx = _Context()
    with pytest.raises(grpc.aio.AbortError):
        await call(REQUEST, ctx)
    assert ctx.aborted == [grpc.StatusCode.UNIMPLEMENTED]


def _failed_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in _access_lines(caplog) if r.__dict__.get("code") == "RESOURCE_EXHAUSTED"]


@pytest.mark.parametrize("share", [0.0, 0.25])
async def test_access_lines_are_sampled_by_trace_but_failures_always_logged(
    caplog: pytest.LogCaptureFixture, share: float
) -> None:
    service = f"sampled-{uuid.uuid4().hex[:8]}"
    server = grpc.aio.server(
        interceptors=chain(
            service=service, tracer_provider=TracerProvider(), access_log_sample=share
        )
    )
    pb_grpc.add_RouterServiceServicer_to_server(Probe(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    calls = 400
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            with caplog.at_level(logging.INFO, logger="waybill.rpc"):
                for _ in range(calls):  # each call its own trace
                    await stub.Classify(pb.ClassifyRequest(tenant_id="acme", text="ok"))
                for _ in range(5):
                    with pytest.raises(grpc.aio.AioRpcError):
                        await stub.Classify(pb.ClassifyRequest(tenant_id="acme", text="budget"))
                # An aborted call's access line follows its status: wait for the last one.
                for _ in range(500):
                    if len(_failed_lines(caplog)) >= 5:
                        break
                    await asyncio.sleep(0.01)
    finally:
        await server.stop(0)
    lines = [r for r in _access_lines(caplog) if getattr(r, "method", "").endswith("/Classify")]
    ok = [r for r in lines if r.code == "OK"]  # type: ignore[attr-defined]
    assert len(_failed_lines(caplog)) == 5  # every failure, whatever the share
    # Binomial(400, 0.25): mean 100, sd 8.7; these bounds are more than 6 sd wide.
    assert (len(ok) == 0) if share == 0 else (45 <= len(ok) <= 155)
    assert all(r.sample == share for r in lines)  # type: ignore[attr-defined]


def test_every_hop_of_one_trace_samples_alike() -> None:
    def sampler() -> ServerInterceptor:
        return ServerInterceptor(service="s", access_log_sample=0.5)

    first, second = sampler(), sampler()
    picked = 0
    for n in range(1, 2001):
        span = trace.NonRecordingSpan(
            trace.SpanContext(trace_id=n * 0x9E3779B97F4A7C15 % 2**128, span_id=1, is_remote=True)
        )
        assert first._sampled(span) == second._sampled(span)
        picked += first._sampled(span)
    assert 800 <= picked <= 1200


class Gated(pb_grpc.RouterServiceServicer):
    """Holds each call until released; fails the ones that say so."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def Classify(
        self, request: pb.ClassifyRequest, context_: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        self.arrived.set()
        await self.release.wait()
        if request.text == "bug":
            raise ZeroDivisionError("boom")
        return pb.ClassifyResponse(classifier_version="gated")


async def test_calls_in_flight_are_counted_while_served_and_not_after() -> None:
    service = f"probe-{uuid.uuid4().hex[:8]}"
    gated = Gated()
    server = grpc.aio.server(interceptors=chain(service=service, tracer_provider=TracerProvider()))
    pb_grpc.add_RouterServiceServicer_to_server(gated, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    def in_flight() -> float:
        labels = {"service": service, "method": "Classify"}
        return REGISTRY.get_sample_value("waybill_rpc_in_flight", labels) or 0.0

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            calls = [
                asyncio.ensure_future(stub.Classify(pb.ClassifyRequest(tenant_id="acme", text=t)))
                for t in ("fine", "bug")
            ]
            await gated.arrived.wait()
            for _ in range(200):
                if in_flight() == 2:
                    break
                await asyncio.sleep(0.01)
            assert in_flight() == 2
            gated.release.set()
            done = await asyncio.gather(*calls, return_exceptions=True)
            assert isinstance(done[1], grpc.aio.AioRpcError)
            for _ in range(200):
                if in_flight() == 0:
                    break
                await asyncio.sleep(0.01)
            assert in_flight() == 0  # the failed call too
    finally:
        await server.stop(0)
