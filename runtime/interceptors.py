"""The one interceptor chain every service runs (``chain``), in this order:

tracing (``runtime.server_tracing``: the caller's context, the SERVER span)
-> request id / tenant / principal / deadline context, our attributes on that span
-> protovalidate -> handler
-> error mapping (domain errors; a downstream failure through runtime.peer_errors)
-> metrics, the access log and the span's status.

Cancellation and the interpreter's own exits (CancelledError, GeneratorExit,
SystemExit, KeyboardInterrupt) are recorded, never turned into a status.

After tracing it is a single interceptor with ordered steps rather than four stacked
ones: on two cores every wrapper layer per call shows up in the latency budget.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import protovalidate
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from runtime import context, metrics, telemetry
from runtime.errors import (
    STATUS_DETAILS_KEY,
    DomainError,
    FieldViolation,
    error_info_in,
    status_for,
    status_for_violations,
)
from runtime.peer_errors import from_peer
from runtime.server_tracing import ServerTracing
from runtime.settings import FaultInjection

log = logging.getLogger("waybill.rpc")
EXIT_INJECTED = 75
"""Exit status of a process ended by an injected fault (EX_TEMPFAIL)."""


def field_path(elements: Any) -> str:
    """A violation's field path as protovalidate writes it: ``documents[1].doc_id``,
    ``labels["tier"]``, so a caller knows which item of a list or map is wrong."""
    parts = []
    for e in elements:
        name = e.field_name
        subscript = getattr(e, "subscript", None)
        if subscript is not None:
            key, value = subscript.field, subscript.value
            if key == "string_key":
                name += f'["{value}"]'
            elif key == "bool_key":
                name += f"[{str(value).lower()}]"
            else:
                name += f"[{value}]"
        parts.append(name)
    return ".".join(parts)


def violations(validator: protovalidate.Validator, message: Any) -> list[FieldViolation]:
    """The protovalidate violations of ``message`` as FieldViolations."""
    found = []
    for v in validator.collect_violations(message):
        proto = v.proto
        path = field_path(proto.field.elements) if proto.field else ""
        found.append(FieldViolation(field=path, rule_id=proto.rule_id, description=proto.message))
    return found


class _Abort(Exception):
    """Internal: a status to end the call with."""

    def __init__(self, code: grpc.StatusCode, message: str, details: bytes, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.reason = reason


def chain(
    *,
    service: str,
    tracer_provider: trace.TracerProvider | None = None,
    access_log: bool = True,
    access_log_sample: float = 1.0,
    faults: FaultInjection | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors of a ``service``'s server, outermost first: tracing, then ours.
    ``tracer_provider`` defaults to the one ``runtime.telemetry.configure`` installed."""
    return [
        ServerTracing(tracer_provider),
        ServerInterceptor(
            service=service,
            access_log=access_log,
            access_log_sample=access_log_sample,
            faults=faults,
        ),
    ]


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler of a service with the ordered steps above; its spans are the
    ones the tracing interceptor outside it started (``chain``)."""

    def __init__(
        self,
        *,
        service: str,
        access_log: bool = True,
        access_log_sample: float = 1.0,
        faults: FaultInjection | None = None,
    ) -> None:
        self._service = service
        self._domain = f"{service}.waybill"
        self._access_log = access_log
        self._sample = access_log_sample
        self._faults = faults or FaultInjection()
        self._validator = protovalidate.Validator()
        self._cache: dict[str, grpc.RpcMethodHandler] = {}
        # Label lookups cost more than the increments: keep the children.
        self._counters: dict[tuple[str, str], Any] = {}
        self._histograms: dict[str, Any] = {}
        self._in_flight: dict[str, Any] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        wrapped = self._wrap(method, handler)
        self._cache[method] = wrapped
        return wrapped

    def _counter(self, method: str, code: str) -> Any:
        key = (method, code)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = metrics.RPC_TOTAL.labels(self._service, method, code)
        return child

    def _serving(self, method: str) -> Any:
        child = self._in_flight.get(method)
        if child is None:
            child = self._in_flight[method] = metrics.RPC_IN_FLIGHT.labels(self._service, method)
        return child

    def _histogram(self, method: str) -> Any:
        child = self._histograms.get(method)
        if child is None:
            child = self._histograms[method] = metrics.RPC_SECONDS.labels(self._service, method)
        return child

    # -- wrapping -------------------------------------------------------------------------

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        short = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            behavior = handler.unary_unary

            async def unary_unary(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                # The state exists before anything can fail, so the span always ends.
                state = self._new_state(method, short)
                try:
                    self._begin(state, ctx)
                    await self._before(method, short, request)
                    response = await behavior(request, ctx)
                    await self._after(method)
                    return response
                except BaseException as exc:
                    await self._fail(state, exc, ctx)
                    raise
                finally:
                    self._end(state)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream_behavior = handler.unary_stream

            async def unary_stream(
                request: Any, ctx: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                state = self._new_state(method, short)
                try:
                    self._begin(state, ctx)
                    await self._before(method, short, request)
                    async for item in stream_behavior(request, ctx):
                        yield item
                    await self._after(method)
                except BaseException as exc:
                    await self._fail(state, exc, ctx)
                    raise
                finally:
                    self._end(state)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            bidi_behavior = handler.stream_stream

            async def stream_stream(
                requests: AsyncIterator[Any], ctx: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                # A long-lived multiplexing stream: it validates and answers each of its
                # items itself (a bad item fails alone, not the stream).
                state = self._new_state(method, short)
                try:
                    self._begin(state, ctx)
                    async for item in bidi_behavior(requests, ctx):
                        yield item
                except BaseException as exc:
                    await self._fail(state, exc, ctx)
                    raise
                finally:
                    self._end(state)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streaming: not used by Waybill contracts

    # -- steps ----------------------------------------------------------------------------

    def _new_state(self, method: str, short: str) -> _CallState:
        self._serving(short).inc()  # undone in _end, which every call reaches
        return _CallState(method=method, short=short, started=time.perf_counter())

    def _begin(self, state: _CallState, ctx: grpc.aio.ServicerContext) -> None:
        # The tracing interceptor outside this one started the call's span and made it
        # current (without it, this is a non-recording span that costs nothing). From here
        # on _end sees it, whatever fails next.
        span = state.span = trace.get_current_span()
        md: Mapping[str, str] = {
            k: v for k, v in (ctx.invocation_metadata() or ()) if isinstance(v, str)
        }
        remaining = ctx.time_remaining()
        state.deadline_ms = None if remaining is None else remaining * 1000
        state.task = asyncio.current_task()
        rid = md.get(context.REQUEST_ID_HEADER, "")
        tenant = md.get(context.TENANT_HEADER, "")
        state.tokens = (
            context.request_id.set(rid),
            context.tenant_id.set(tenant),
            context.deadline.set(None if remaining is None else time.monotonic() + remaining),
            context.principal.set(context.principal_from(md)),
        )
        if span.is_recording():
            # The stock span is named "/pkg.Service/Method"; the conventions name it
            # without the slash, as our client and stream spans are.
            span.update_name(telemetry.rpc_span(state.method)[0])
            if state.deadline_ms is not None:
                span.set_attribute(telemetry.ATTR_DEADLINE_MS, state.deadline_ms)
            if rid:
                span.set_attribute(telemetry.ATTR_REQUEST_ID, rid)
            if tenant:
                span.set_attribute(telemetry.ATTR_TENANT, tenant)

    async def _before(self, method: str, short: str, request: Any) -> None:
        found = violations(self._validator, request)
        if found:
            for v in found:
                metrics.VALIDATION_FAILURES.labels(self._service, short, v.rule_id).inc()
            status = status_for_violations(
                found, domain=self._domain, message_type=request.DESCRIPTOR.full_name
            )
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                status.message,
                status.SerializeToString(),
                "VALIDATION_FAILED",
            )
        if not self._faults.after and self._faults.fires(method):
            await self._inject()

    async def _after(self, method: str) -> None:
        """Faults set to follow the handler: what it wrote stays, its reply is in doubt."""
        if self._faults.after and self._faults.fires(method):
            await self._inject()

    async def _inject(self) -> None:
        """Delay, then fail with the injected status, or end the process without a reply."""
        if self._faults.delay_ms:
            await asyncio.sleep(self._faults.delay_ms / 1000)
        if self._faults.exit:
            log.warning("injected fault: the process exits without replying")
            logging.shutdown()
            os._exit(EXIT_INJECTED)
        injected = self._faults.code()
        if injected is not None:
            fault = DomainError(
                "injected fault",
                reason="FAULT_INJECTED",
                retry_after_s=self._faults.retry_after_s,
            )
            fault.code = injected
            raise fault

    async def _fail(
        self, state: _CallState, exc: BaseException, ctx: grpc.aio.ServicerContext
    ) -> None:
        """Record why the call failed and, for errors we own, end it with a precise status."""
        if isinstance(exc, GeneratorExit):
            # The stream was closed under the handler (the caller went away): the
            # generator must finish closing; a status can no longer be sent.
            state.code = "CANCELLED"
            return
        if isinstance(exc, SystemExit | KeyboardInterrupt):
            # The process is stopping: let it; callers see the server go away.
            state.code = "UNAVAILABLE"
            return
        if isinstance(exc, asyncio.CancelledError):
            expired = state.deadline_ms is not None and (
                (time.perf_counter() - state.started) * 1000 >= state.deadline_ms - 1
            )
            state.code = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
            return
        if isinstance(exc, grpc.aio.AbortError):
            # The handler aborted with its own status: count it as what it was.
            state.code, state.reason = _aborted_with(ctx)
            return
        abort = self._classify(state, exc)
        state.code = abort.code.name
        state.reason = abort.reason
        await ctx.abort(
            abort.code, abort.message, trailing_metadata=((STATUS_DETAILS_KEY, abort.details),)
        )

    def _classify(self, state: _CallState, exc: BaseException) -> _Abort:
        if isinstance(exc, _Abort):
            return exc
        if isinstance(exc, grpc.aio.AioRpcError):
            # A downstream call the handler let escape: the one peer mapping decides
            # (it logs the peer's own text; the access log names this method).
            exc = from_peer(exc, peer=getattr(exc, "peer", None) or "dependency")
        if isinstance(exc, NotImplementedError):
            # What a generated servicer base class raises for a method nobody wrote:
            # the honest answer is UNIMPLEMENTED, not a bug report.
            log.warning("method not implemented", extra={"method": state.method})
            exc = DomainError("not implemented", reason="NOT_IMPLEMENTED")
            exc.code = grpc.StatusCode.UNIMPLEMENTED
        if isinstance(exc, DomainError):
            status = status_for(exc, default_domain=self._domain)
            return _Abort(exc.code, exc.message, status.SerializeToString(), exc.reason)
        log.exception("unhandled error", extra={"method": state.method})
        bug = DomainError("internal error", reason="INTERNAL")
        bug.code = grpc.StatusCode.INTERNAL
        status = status_for(bug, default_domain=self._domain)
        return _Abort(bug.code, bug.message, status.SerializeToString(), bug.reason)

    def _sampled(self, span: trace.Span | None) -> bool:
        """Whether a successful call is logged: by its trace id, so every hop of one turn
        decides alike (a call without a trace, at random)."""
        if self._sample >= 1:
            return True
        if self._sample <= 0:
            return False
        trace_id = span.get_span_context().trace_id if span is not None else 0
        if not trace_id:
            return random.random() < self._sample
        return (trace_id & 0xFFFFFFFF) < self._sample * 0x100000000

    def _end(self, state: _CallState) -> None:
        elapsed = time.perf_counter() - state.started
        span = state.span
        try:
            self._serving(state.short).dec()
            self._counter(state.short, state.code).inc()
            self._histogram(state.short).observe(elapsed)
            if self._access_log and (state.code != "OK" or self._sampled(span)):
                extra: dict[str, Any] = {
                    "method": state.method,
                    "code": state.code,
                    "duration_ms": round(elapsed * 1000, 3),
                }
                if state.deadline_ms is not None:
                    extra["deadline_ms"] = round(state.deadline_ms, 3)
                if state.reason:
                    extra["reason"] = state.reason
                if self._sample < 1:
                    extra["sample"] = self._sample  # successes are a sample of this share
                log.info("rpc", extra=extra)
        finally:
            # The span is the tracing interceptor's: it ends it once this call returns.
            if span is not None and span.is_recording():
                span.set_attribute(telemetry.ATTR_RPC_STATUS, telemetry.status_code(state.code))
                if state.code != "OK":
                    span.set_status(StatusCode.ERROR, state.code)
            _restore(state)


def _restore(state: _CallState) -> None:
    """Undo what _begin set in the call's context."""
    if state.task is not asyncio.current_task():
        # A stream closed by the loop's async-generator finaliser ends in another
        # task: the call's own context is gone, and its tokens cannot be reset here.
        return
    rid, tenant, deadline, principal = state.tokens
    if principal is not None:
        context.principal.reset(principal)
    if deadline is not None:
        context.deadline.reset(deadline)
    if tenant is not None:
        context.tenant_id.reset(tenant)
    if rid is not None:
        context.request_id.reset(rid)


def _aborted_with(ctx: grpc.aio.ServicerContext) -> tuple[str, str]:
    """The code and ErrorInfo reason a handler's own ``context.abort`` set."""
    code = ctx.code()
    name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    for key, value in ctx.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            info = error_info_in(value)
            return name, info.reason if info is not None else ""
    return name, ""


class _CallState:
    """Bookkeeping of one call between _begin and _end."""

    __slots__ = (
        "code",
        "deadline_ms",
        "method",
        "reason",
        "short",
        "span",
        "started",
        "task",
        "tokens",
    )

    def __init__(self, *, method: str, short: str, started: float) -> None:
        self.method = method
        self.short = short
        self.started = started
        self.span: trace.Span | None = None
        self.deadline_ms: float | None = None
        self.task: asyncio.Task[Any] | None = None
        self.code = "OK"
        self.reason = ""
        self.tokens: tuple[Any, Any, Any, Any] = (None, None, None, None)
