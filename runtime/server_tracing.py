"""The outermost server interceptor: the caller's trace context and the call's SERVER span.

Unary methods get OpenTelemetry's own gRPC aio server interceptor
(``opentelemetry-instrumentation-grpc``): it extracts the caller's W3C context, starts the
span with the RPC semantic conventions' attributes, makes it current and ends it. The mesh's
interceptor (``runtime.interceptors``) runs inside it and puts our attributes and the final
status on that span.

Methods that stream their responses (server streams and bidi streams) get a small wrapper
of ours instead. When a caller cancels while
grpc is sending a message, grpc's task stops outside the handler's generator, and the
generator is closed later by the event loop's finaliser in another task. The stock stream
wrapper then ends the span before the handler inside it has recorded the cancellation (the
span says OK) and detaches its context in the wrong task, which logs "Failed to detach
context" twice per call (``tests/runtime/test_server_tracing.py`` shows both). Ours closes
the handler's generator before the span ends, and detaches only in the call's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.trace import SpanKind

from runtime import telemetry

UNTRACED_SERVICES = ("grpc.health.", "grpc.reflection.")
"""Service prefixes that get no span: probes and tooling, not traffic."""


def _untraced(method: str) -> bool:
    return method.lstrip("/").startswith(UNTRACED_SERVICES)


def stock(provider: trace.TracerProvider | None = None) -> grpc.aio.ServerInterceptor:
    """OpenTelemetry's aio server interceptor for every method but health and reflection."""
    skipped = filters.any_of(*(filters.service_prefix(p) for p in UNTRACED_SERVICES))
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=filters.negate(skipped)
    )
    return interceptor


class ServerTracing(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Unary responses through the stock interceptor, streamed ones through ``_traced``."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self._stock = stock(provider)
        self._tracer = trace.get_tracer("waybill.server", tracer_provider=provider)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or _untraced(method):
            return handler
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._traced(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._traced(method, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        async def resolved(_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return handler

        wrapped: grpc.RpcMethodHandler = await self._stock.intercept_service(
            resolved, handler_call_details
        )
        return wrapped

    def _traced(
        self, method: str, behavior: Callable[..., AsyncGenerator[Any, None]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
        name, attributes = telemetry.rpc_span(method)
        tracer = self._tracer

        async def streamed(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # ``request`` is the request of a server stream, the requests of a bidi one.
            md = {k: v for k, v in (ctx.invocation_metadata() or ()) if isinstance(v, str)}
            span = tracer.start_span(
                name, context=propagate.extract(md), kind=SpanKind.SERVER, attributes=attributes
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            task = asyncio.current_task()
            try:
                # Closed here, before the span ends, however this generator ends: the
                # handler inside records how the call ended on a span still open.
                async with contextlib.aclosing(behavior(request, ctx)) as responses:
                    async for response in responses:
                        yield response
            finally:
                span.end()
                if task is asyncio.current_task():
                    otel_context.detach(token)

        return streamed
