"""One turn's trace, exported over OTLP/gRPC by every process and received by a real OTLP
receiver (a gRPC server on the official OTLP protos): one trace from the REST edge through
the gateway, the guardrails, the router and the worker down to orders, each hop's span a
child of its caller's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from cli.ports import free_base_port
from runtime import mesh
from tests.gateway.edge.conftest import sse_events
from tests.gateway.edge.mesh_fixtures import edge_mesh, new_traceparent

pytestmark = pytest.mark.mesh


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _values(attributes: Any) -> dict[str, str]:
    """OTLP key-values as text (what a test compares)."""
    return {a.key: a.value.string_value for a in attributes}


@dataclass
class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span it is sent."""

    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope in resource_spans.scope_spans:
                with self.lock:
                    self.spans.extend(
                        Span(
                            service,
                            s.name,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            _values(s.attributes),
                            [(e.name, _values(e.attributes)) for e in s.events],
                        )
                        for s in scope.spans
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    def of(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, Receiver]]:
    servicer = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    address = f"127.0.0.1:{free_base_port(1)}"
    server.add_insecure_port(address)
    server.start()
    yield address, servicer
    server.stop(None)


HOPS = [
    ("waybill-edge", "waybill-gateway"),
    ("waybill-gateway", "waybill-guardrails"),
    ("waybill-gateway", "waybill-router"),
    ("waybill-gateway", "waybill-tracking"),
    ("waybill-tracking", "waybill-orders"),
]
"""(caller, callee) pairs a tracking turn crosses."""


def test_one_turn_is_one_trace_across_every_hop(
    receiver: tuple[str, Receiver], tmp_path: Path
) -> None:
    address, spans = receiver
    otlp = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{address}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    every = [*(s.name for s in mesh.SERVICES), mesh.EDGE.name]
    with edge_mesh(tmp_path, per_service_env=dict.fromkeys(every, otlp)) as platform:
        assert platform.edge_url is not None
        trace_id, parent = new_traceparent()
        with httpx.Client(base_url=platform.edge_url, timeout=30) as http:
            response = http.post(
                "/v1/sessions/trace-0001/turns",
                json={"userId": "acme-0001", "message": "where is my order?"},
                headers={"traceparent": parent},
            )
        assert response.status_code == 200
        assert sse_events(response.text)[-1][0] == "final"
        deadline = time.monotonic() + 15
        found = spans.of(trace_id)
        while time.monotonic() < deadline and not _connected(found):
            time.sleep(0.1)
            found = spans.of(trace_id)
    by_id = {s.span_id: s for s in found}
    services = {s.service for s in found}
    assert {caller for caller, _ in HOPS} | {callee for _, callee in HOPS} <= services, services
    for caller, callee in HOPS:
        parents = {
            by_id[s.parent_id].service
            for s in found
            if s.service == callee and s.parent_id in by_id
        }
        assert caller in parents, f"no {callee} span is a child of a {caller} span"
    # Names follow the semantic conventions: HTTP method and route, gRPC service/method.
    names = {(s.service, s.name) for s in found}
    assert ("waybill-edge", "POST /v1/sessions/{session_id}/turns") in names
    assert ("waybill-gateway", "waybill.gateway.v1.GatewayService/Converse") in names
    assert ("waybill-orders", "waybill.orders.v1.OrdersService/GetShipment") in names
    # Our attributes: what the turn was and who answered it; the worker's tool calls and
    # generations as events of its span (names, codes and backends, never text).
    (converse,) = [
        s for s in found if s.service == "waybill-gateway" and s.name.endswith("/Converse")
    ]
    assert converse.attributes["waybill.gateway.worker"] == "WORKER_TRACKING"
    assert converse.attributes["waybill.router.intent"].startswith("INTENT_TRACKING")
    assert converse.attributes["waybill.budget.state"] == "BUDGET_STATE_OK"
    assert converse.attributes["waybill.tenant"] == "acme-retail"
    (worker,) = [
        s for s in found if s.service == "waybill-tracking" and s.name.endswith("/RunTurn")
    ]
    assert (
        "tool",
        {"waybill.worker.tool": "get_order_status", "waybill.worker.tool.status": "OK"},
    ) in worker.events
    assert ("generation", {"waybill.llm.backend": "composer"}) in worker.events
    # Every span but the edge's first hangs off one this trace holds (or the caller's).
    orphans = [s for s in found if s.parent_id not in by_id and s.service != "waybill-edge"]
    assert orphans == []


def _connected(found: list[Span]) -> bool:
    by_id = {s.span_id: s for s in found}
    return all(
        any(s.service == callee and by_id.get(s.parent_id, s).service == caller for s in found)
        for caller, callee in HOPS
    )
