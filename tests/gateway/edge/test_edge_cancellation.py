"""A client that hangs up, or whose timeout passes, stops the turn at the bottom of the mesh.

Orders' GetShipment is slowed by 3 s (fault injection); its access-log line
shows whether the call ran to the end or was cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from cli.launcher import Mesh
from tests.gateway.edge.conftest import error_of, sse_events
from tests.gateway.edge.mesh_fixtures import edge_mesh, log_lines, new_traceparent, open_turn

pytestmark = pytest.mark.mesh


@pytest.fixture(scope="module")
def slow_orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The tracking path of the mesh, orders' GetShipment 3 s slow, and the edge."""
    slow = {"WAYBILL_FAULT_DELAY_MS": "3000", "WAYBILL_FAULT_METHODS": "GetShipment"}
    with edge_mesh(
        tmp_path_factory.mktemp("edge-slow"),
        services=["orders", "guardrails", "router", "tracking", "gateway"],
        per_service_env={"orders": slow},
    ) as started:
        yield started


def _shipment_lines(m: Mesh, trace_id: str) -> list[dict[str, object]]:
    return log_lines(m.log_path("orders"), trace_id=trace_id, method="/GetShipment", wait_s=5.0)


def test_client_disconnect_cancels_the_orders_call(slow_orders: Mesh) -> None:
    assert slow_orders.edge_address is not None
    trace_id, parent = new_traceparent()
    sock = open_turn(
        slow_orders.edge_address,
        "/v1/sessions/edge-hangup-01/turns",
        {"userId": "acme-0001", "message": "where is my order?"},
        {"traceparent": parent},
    )
    try:
        # Once the router has answered, the worker's orders call is in flight: hang up.
        deadline = time.monotonic() + 10
        while not log_lines(
            slow_orders.log_path("router"), trace_id=trace_id, method="/Classify", wait_s=0
        ):
            assert time.monotonic() < deadline, "the turn never reached the router"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        sock.close()
    (line,) = _shipment_lines(slow_orders, trace_id)
    assert line["code"] == "CANCELLED"
    assert float(str(line["duration_ms"])) < 2500, "the orders call ran to its end"
    (gateway,) = log_lines(slow_orders.log_path("gateway"), trace_id=trace_id, method="/Converse")
    assert gateway["code"] == "CANCELLED"
    (http,) = log_lines(slow_orders.log_path("edge"), trace_id=trace_id, msg="http")
    assert http["status"] == 499


def test_request_timeout_reaches_the_orders_call(slow_orders: Mesh) -> None:
    assert slow_orders.edge_url is not None
    trace_id, parent = new_traceparent()
    started = time.monotonic()
    response = httpx.post(
        slow_orders.edge_url + "v1/sessions/edge-timeout-1/turns",
        json={"userId": "acme-0001", "message": "where is my order?"},
        headers={"traceparent": parent, "x-request-timeout": "0.6"},
        timeout=10,
    )
    if response.status_code == 200:
        # The gateway had started the turn: its customer-facing error event, then ours.
        events = sse_events(response.text)
        assert [name for name, _ in events][-2:] == ["turn_error", "error"]
        assert (
            events[-2][1]["code"] == "STATUS_CODE_DEADLINE_EXCEEDED"
        )  # the contract enum, by name
        error = events[-1][1]["error"]
        assert isinstance(error, dict)
        assert (error["code"], error["status"]) == (504, "DEADLINE_EXCEEDED")
    else:
        assert response.status_code == 504
        assert error_of(response)["status"] == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 2.5, "the turn hung past its deadline"
    (line,) = _shipment_lines(slow_orders, trace_id)
    assert line["code"] in {"DEADLINE_EXCEEDED", "CANCELLED"}
    assert float(str(line["duration_ms"])) < 1000
