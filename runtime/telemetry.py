"""Tracing setup and the attribute-name registry.

Span, metric and log attribute names are declared here before use. Exporters
follow the standard ``OTEL_*`` variables: ``OTEL_TRACES_EXPORTER=otlp`` sends spans over
OTLP/gRPC to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``OTEL_EXPORTER_OTLP_INSECURE``,
``OTEL_BSP_SCHEDULE_DELAY`` and the rest as the SDK reads them); ``console`` prints them;
unset exports nothing and records nothing (trace ids still flow through metadata and
logs).

Server spans are started by ``runtime.server_tracing`` (OpenTelemetry's gRPC aio
instrumentation for unary methods) and decorated with ours by ``runtime.interceptors``;
client spans by ``runtime.client``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping

import grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

log = logging.getLogger(__name__)

# Attribute registry: OpenTelemetry's RPC semantic conventions first, then ours.
ATTR_RPC_SYSTEM = "rpc.system"
ATTR_RPC_SERVICE = "rpc.service"
ATTR_RPC_METHOD = "rpc.method"
ATTR_RPC_STATUS = "rpc.grpc.status_code"
"""The status as its numeric gRPC code (0 OK, 14 UNAVAILABLE, ...)."""
ATTR_TENANT = "waybill.tenant"
ATTR_REQUEST_ID = "waybill.request_id"
ATTR_DEADLINE_MS = "waybill.deadline_remaining_ms"
ATTR_INTENT = "waybill.router.intent"
ATTR_CONFIDENCE = "waybill.router.confidence"
ATTR_WORKER = "waybill.gateway.worker"
ATTR_TOOL = "waybill.worker.tool"
ATTR_TOOL_STATUS = "waybill.worker.tool.status"
"""A tool call's status code name (on the worker span's ``tool`` event)."""
ATTR_BACKEND = "waybill.llm.backend"
"""The backend that wrote a generation (on the worker span's ``generation`` event)."""
ATTR_CACHE_HIT = "waybill.cache.hit"
"""Whether the turn's answer came from the answer cache (set when the cache was consulted)."""
ATTR_BUDGET_STATE = "waybill.budget.state"
"""The tenant's budget after the turn's charge, as the ledger names it
(``BUDGET_STATE_OK``, ``BUDGET_STATE_SOFT_LIMIT``, ...; on the gateway's turn span)."""


def configure(service: str) -> trace.Tracer:
    """Install a tracer provider for ``service`` and return its tracer."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "none").lower()
    # With nowhere to export spans, record none: trace and span ids still flow
    # through metadata and logs, and every hop saves the cost of recording.
    sampler = None
    if exporter == "none" and not os.environ.get("OTEL_TRACES_SAMPLER"):
        sampler = ALWAYS_OFF
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"waybill-{service}"}), sampler=sampler
    )
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        # Imported here: a process that exports nothing does not pay for loading it.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter != "none":
        log.warning(
            "unknown OTEL_TRACES_EXPORTER; spans are not exported", extra={"exporter": exporter}
        )
    trace.set_tracer_provider(provider)
    return trace.get_tracer(f"waybill.{service}")


@functools.cache
def rpc_span(method: str) -> tuple[str, Mapping[str, str]]:
    """A span's name and attributes for the gRPC ``method`` (``/pkg.Service/Method``), as the
    semantic conventions name them: ``pkg.Service/Method``; system, service, method."""
    service, _, short = method.lstrip("/").rpartition("/")
    return method.lstrip("/"), {
        ATTR_RPC_SYSTEM: "grpc",
        ATTR_RPC_SERVICE: service,
        ATTR_RPC_METHOD: short,
    }


def status_code(name: str) -> int:
    """A status name's numeric gRPC code (``UNAVAILABLE`` -> 14; a name gRPC does not know
    is UNKNOWN, 2)."""
    found = grpc.StatusCode.__members__.get(name, grpc.StatusCode.UNKNOWN)
    return int(found.value[0])


def inject(carrier: dict[str, str]) -> None:
    """Write the current trace context into ``carrier`` (W3C traceparent)."""
    propagate.inject(carrier)


extract = propagate.extract
