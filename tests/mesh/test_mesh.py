"""The walking skeleton through real processes: gateway -> guardrails -> router
-> tracking worker -> orders, plus health, reflection and errors at every service."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc
from waybill.ledger.v1 import ledger_service_pb2 as ledger
from waybill.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.retrieval.v1 import retrieval_service_pb2 as retrieval
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as retrieval_grpc
from waybill.router.v1 import router_service_pb2 as router
from waybill.router.v1 import router_service_pb2_grpc as router_grpc
from waybill.worker.v1 import worker_service_pb2 as worker
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from cli import probe
from cli.launcher import Mesh
from runtime import mesh
from runtime.errors import violations_of
from tests.mesh.conftest import api_key, new_trace, rpc_lines

pytestmark = pytest.mark.mesh

CHAIN = ("gateway", "guardrails", "router", "tracking", "orders")


def _channel(m: Mesh, name: str) -> grpc.Channel:
    return grpc.insecure_channel(m.addresses[name])


def _turn(
    m: Mesh,
    user_id: str,
    message: str,
    *,
    session: str = "session-mesh-1",
    timeout: float = 5.0,
    traceparent: str = "",
    tenant: str = "acme-retail",
) -> list[gw.TurnEvent]:
    md = [("x-api-key", api_key(m, tenant))]
    if traceparent:
        md.append(("traceparent", traceparent))
    with _channel(m, "gateway") as ch:
        stub = gw_grpc.GatewayServiceStub(ch)
        request = gw.ConverseRequest(session_id=session, user_id=user_id, message=message)
        return [r.event for r in stub.Converse(request, metadata=md, timeout=timeout)]


def test_reflection_lists_every_service(running_mesh: Mesh) -> None:
    for spec in mesh.SERVICES:
        found = probe.list_services(running_mesh.addresses[spec.name], timeout_s=5)
        for name in spec.grpc_services:
            assert name in found, f"{spec.name} does not reflect {name}"
            assert found[name], f"{name} lists no methods"
        assert "grpc.health.v1.Health" in found


def test_health_answers_for_every_service(running_mesh: Mesh) -> None:
    for spec in mesh.SERVICES:
        statuses = probe.check_health(
            running_mesh.addresses[spec.name], ("", *spec.grpc_services), timeout_s=5
        )
        assert set(statuses.values()) == {"SERVING"}, (spec.name, statuses)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "health", "--run-dir", str(running_mesh.run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_turn_is_answered_from_seeded_data(running_mesh: Mesh) -> None:
    with _channel(running_mesh, "orders") as ch:
        active = orders_grpc.OrdersServiceStub(ch).ListActiveOrders(
            orders.ListActiveOrdersRequest(tenant_id="acme-retail", user_id="acme-0001"),
            timeout=5,
        )
    (only,) = active.orders
    events = _turn(running_mesh, "acme-0001", "where is my order?")
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds[0] == "tool_call"
    assert "delta" in kinds
    assert kinds[-1] == "final"
    answer = "".join(e.delta.text for e in events if e.WhichOneof("kind") == "delta")
    assert only.awb in answer
    assert events[-1].final.answer == answer
    assert events[-1].final.usage.output_tokens > 0


def test_one_trace_spans_the_chain(running_mesh: Mesh) -> None:
    trace_id, parent = new_trace()
    _turn(
        running_mesh,
        "acme-0001",
        "where is my order?",
        traceparent=parent,
        session="session-trace-1",
    )
    for name in CHAIN:
        lines = rpc_lines(running_mesh.log_path(name), trace_id)
        assert lines, f"{name} has no access-log line in trace {trace_id}"
        assert all(line["code"] == "OK" for line in lines)


# gRPC writes a timeout on the wire rounded up to three significant digits (in
# 10 ms steps between 1 and 10 s), so a server can see up to 10 ms more than its
# caller had left; the 5 ms margin each hop keeps back does not make up for it.
WIRE_ROUNDING_MS = 10.0
CALLER_TIMEOUT_S = 8.0
"""Long enough for a turn on a loaded machine, and below the 10 s a hop without a deadline gets."""


def test_the_callers_deadline_reaches_orders(running_mesh: Mesh) -> None:
    trace_id, parent = new_trace()
    _turn(
        running_mesh,
        "acme-0001",
        "where is my order?",
        traceparent=parent,
        timeout=CALLER_TIMEOUT_S,
        session="session-deadline-1",
    )
    (gateway,) = rpc_lines(running_mesh.log_path("gateway"), trace_id)
    shipment = rpc_lines(running_mesh.log_path("orders"), trace_id, method="/GetShipment")
    assert len(shipment) == 1
    # Propagated, each hop sees at most what its caller had left plus the wire's
    # rounding: gateway is one hop from the caller, orders three (gateway ->
    # tracking -> orders). Without propagation orders would see the 10 s default.
    budget_ms = CALLER_TIMEOUT_S * 1000
    assert 0 < gateway["deadline_ms"] <= budget_ms + WIRE_ROUNDING_MS
    assert 0 < shipment[0]["deadline_ms"] <= budget_ms + 3 * WIRE_ROUNDING_MS


def _empty_requests() -> dict[str, Callable[[grpc.Channel], Any]]:
    return {
        "gateway": lambda ch: list(
            gw_grpc.GatewayServiceStub(ch).Converse(gw.ConverseRequest(), timeout=5)
        ),
        "orders": lambda ch: orders_grpc.OrdersServiceStub(ch).GetShipment(
            orders.GetShipmentRequest(), timeout=5
        ),
        "ledger": lambda ch: ledger_grpc.LedgerServiceStub(ch).Reserve(
            ledger.ReserveRequest(), timeout=5
        ),
        "retrieval": lambda ch: retrieval_grpc.RetrievalServiceStub(ch).Search(
            retrieval.SearchRequest(), timeout=5
        ),
        "guardrails": lambda ch: guard_grpc.GuardrailsServiceStub(ch).CheckInput(
            guard.CheckInputRequest(), timeout=5
        ),
        "router": lambda ch: router_grpc.RouterServiceStub(ch).Classify(
            router.ClassifyRequest(), timeout=5
        ),
        "tracking": lambda ch: list(
            worker_grpc.WorkerServiceStub(ch).RunTurn(worker.RunTurnRequest(), timeout=5)
        ),
        "policy": lambda ch: list(
            worker_grpc.WorkerServiceStub(ch).RunTurn(worker.RunTurnRequest(), timeout=5)
        ),
        "negotiation": lambda ch: list(
            worker_grpc.WorkerServiceStub(ch).RunTurn(worker.RunTurnRequest(), timeout=5)
        ),
    }


_WORKER_RULES = {
    "input": "required",
    "intent": "enum.not_in",
    "session_id": "string.pattern",
    "tenant_id": "string.pattern",
    "user_id": "string.pattern",
}
EMPTY_REQUEST_RULES: dict[str, dict[str, str]] = {
    "gateway": {
        "message": "string.min_len",
        "session_id": "string.pattern",
        "user_id": "string.pattern",
    },
    "orders": {"awb": "string.pattern", "tenant_id": "string.pattern", "user_id": "string.pattern"},
    "ledger": {
        "estimate": "required",
        "feature_id": "string.pattern",
        "request_id": "string.pattern",
        "team_id": "string.pattern",
        "tenant_id": "string.pattern",
    },
    "retrieval": {"query": "string.min_len", "tenant_id": "string.pattern"},
    "guardrails": {
        "session_id": "string.pattern",
        "tenant_id": "string.pattern",
        "text": "string.min_len",
    },
    "router": {"tenant_id": "string.pattern", "text": "string.min_len"},
    "tracking": _WORKER_RULES,
    "policy": _WORKER_RULES,
    "negotiation": _WORKER_RULES,
}
"""Field -> rule id that each service's empty request breaks (from the protos' rules)."""


@pytest.mark.parametrize("name", [s.name for s in mesh.SERVICES])
def test_invalid_requests_get_invalid_argument_naming_the_rule(
    running_mesh: Mesh, name: str
) -> None:
    call = _empty_requests()[name]
    with _channel(running_mesh, name) as ch, pytest.raises(grpc.RpcError) as raised:
        call(ch)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    broken = {str(v.field): str(v.reason) for v in violations_of(error)}
    assert broken == EMPTY_REQUEST_RULES[name]
    # The message names the first broken rule; the details carry them all.
    assert any(f"[{rule}]" in error.details() for rule in broken.values())


def test_unknown_customer_awb_and_tenant_are_not_found(running_mesh: Mesh) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        _turn(running_mesh, "acme-9999", "where is my order?", session="session-nf-1")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    events = _turn(running_mesh, "acme-0001", "where is WB 0000 000 001?", session="session-nf-2")
    assert "couldn't find" in events[-1].final.answer
    with _channel(running_mesh, "orders") as ch, pytest.raises(grpc.RpcError) as raised:
        orders_grpc.OrdersServiceStub(ch).GetCustomer(
            orders.GetCustomerRequest(tenant_id="nobody-corp", user_id="acme-0001"), timeout=5
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_credentials_are_unauthenticated(running_mesh: Mesh) -> None:
    with _channel(running_mesh, "gateway") as ch, pytest.raises(grpc.RpcError) as raised:
        list(
            gw_grpc.GatewayServiceStub(ch).Converse(
                gw.ConverseRequest(session_id="session-auth-1", user_id="acme-0001", message="hi"),
                metadata=[("x-api-key", "wb_not_a_key")],
                timeout=5,
            )
        )
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_tenant_cannot_read_another_tenants_customer(running_mesh: Mesh) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        _turn(
            running_mesh,
            "acme-0001",
            "where is my order?",
            tenant="globex-home",
            session="session-iso-1",
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_ledger_answers_with_the_teams_budget(running_mesh: Mesh) -> None:
    with _channel(running_mesh, "ledger") as ch:
        budget = (
            ledger_grpc.LedgerServiceStub(ch)
            .GetBudget(
                ledger.GetBudgetRequest(tenant_id="acme-retail", team_id="support"), timeout=5
            )
            .budget
        )
    assert budget.limit.currency_code == "USD"
    assert budget.limit.micro_units > 0
    assert budget.state in {ledger.BUDGET_STATE_OK, ledger.BUDGET_STATE_SOFT_LIMIT}


def test_sigterm_reports_not_serving_before_stopping(running_mesh: Mesh) -> None:
    """Health goes NOT_SERVING first, then the process drains and exits 0."""
    from cli.launcher import Mesh as Launcher
    from cli.ports import free_base_port

    with Launcher(
        run_dir=running_mesh.run_dir / "solo",
        services=["router"],
        base_port=free_base_port(len(mesh.SERVICES)),
    ) as solo:
        with grpc.insecure_channel(solo.addresses["router"]) as ch:
            watch = health_pb2_grpc_stub(ch).Watch(
                health_pb2.HealthCheckRequest(service="waybill.router.v1.RouterService"),
                timeout=20,
            )
            statuses = [next(watch).status]
            solo.kill("router", sig=15)
            try:
                for update in watch:
                    statuses.append(update.status)
            except grpc.RpcError:
                pass  # the stream ends when the server stops
        assert solo.wait_exited("router", timeout_s=30) == 0
    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses[1:]


def health_pb2_grpc_stub(ch: grpc.Channel) -> Any:
    from grpc_health.v1 import health_pb2_grpc

    return health_pb2_grpc.HealthStub(ch)
