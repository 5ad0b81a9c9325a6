"""Outgoing calls: one client interceptor gives every call a deadline, the trace
context, the request id and the tenant; channels retry idempotent RPCs on
UNAVAILABLE through the service config.

The stock OpenTelemetry aio client interceptor swallows cancellation; this one
awaits the call itself, so cancelling the caller cancels the downstream call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from runtime import context
from runtime.deadlines import DeadlinePolicy, outgoing_timeout


def _metadata(details: Any, timeout_target: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = list(details.metadata or ())
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    items.extend(carrier.items())
    if rid := context.request_id.get():
        items.append((context.REQUEST_ID_HEADER, rid))
    if tenant := context.tenant_id.get():
        items.append((context.TENANT_HEADER, tenant))
    return items


class _MeshCalls:
    """Deadline, trace, request id and tenant on every outgoing call."""

    def __init__(self, *, target: str, policy: DeadlinePolicy, tracer: trace.Tracer) -> None:
        self._target = target
        self._policy = policy
        self._tracer = tracer

    def _prepare(self, details: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        timeout = outgoing_timeout(self._policy, budget_s=details.timeout, target=method)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=timeout,
            metadata=grpc.aio.Metadata(*_metadata(details, method)),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


class UnaryUnaryInterceptor(_MeshCalls, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """The mesh steps for unary calls; awaits the call so cancellation propagates."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        with self._tracer.start_as_current_span(method, kind=SpanKind.CLIENT) as span:
            call = await continuation(self._prepare(details), request)
            try:
                return await call
            except grpc.aio.AioRpcError as exc:
                span.set_status(StatusCode.ERROR, exc.code().name)
                raise


class UnaryStreamInterceptor(_MeshCalls, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """The mesh steps for server-streaming calls.

    A separate class on purpose: grpc.aio files an interceptor implementing
    both interfaces under unary-unary only, silently skipping it for streams.
    """

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        span = self._tracer.start_span(method, kind=SpanKind.CLIENT)
        with trace.use_span(span, end_on_exit=False):
            prepared = self._prepare(details)
        call = await continuation(prepared, request)
        call.add_done_callback(lambda _call: span.end())
        return call


def service_config(retry: Iterable[tuple[str, str | None]]) -> str:
    """A service config retrying UNAVAILABLE (3 attempts) for the given idempotent methods.

    ``retry`` holds ``(service, method)`` pairs; a ``None`` method means every
    method of the service.
    """
    names = [
        {"service": svc} if method is None else {"service": svc, "method": method}
        for svc, method in retry
    ]
    config: dict[str, Any] = {
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        "methodConfig": [],
    }
    if names:
        config["methodConfig"].append(
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "0.3s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        )
    return json.dumps(config)


def channel(
    target: str,
    *,
    policy: DeadlinePolicy,
    retry: Sequence[tuple[str, str | None]] = (),
) -> grpc.aio.Channel:
    """An insecure loopback/cluster channel with the mesh interceptor."""
    tracer = trace.get_tracer("waybill.client")
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(retry)),
            ("grpc.keepalive_time_ms", 30_000),
            # A restarted peer is reachable again within ~100 ms, not after
            # the default exponential reconnect backoff of up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.min_reconnect_backoff_ms", 50),
            ("grpc.max_reconnect_backoff_ms", 100),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ],
        interceptors=[
            UnaryUnaryInterceptor(target=target, policy=policy, tracer=tracer),
            UnaryStreamInterceptor(target=target, policy=policy, tracer=tracer),
        ],
    )
