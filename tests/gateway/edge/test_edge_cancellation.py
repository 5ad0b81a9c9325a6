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
from tests.gateway.edge.conftest import error_of
from tests.gateway.edge.mesh_fixtures import edge_mesh, log_lines, new_traceparent, open_turn

pytestmark = pytest.mark.mesh


@pytest.fixture(scope="module")
def slow_orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The tracking path of the mesh, orders' GetShipment 3 s slow, and the edge."""
    slow = {"WAYBILL_FAULT_DELAY_MS": "3000", "WAYBILL_FAULT_METHODS": "GetShipment"}
    with edge_mesh(
        tmp_path_factory.mktemp("edge-slow"),
        services=["orders", "guardrails", "router", "tracking", "ledger", "gateway"],
        per_service_env={"orders": slow},
    ) as started:
        yield started


def _shipment_lines(m: Mesh, trace_id: str) -> list[dict[str, object]]:
    return log_lines(m.log_path("orders"), trace_id=trace_id, method="/GetShipment", wait_s=5.0)


# Attempts at the hang-up below, each waiting longer after the router's answer: services log
# a call when it ends, never when it starts, so the moment the worker's orders call is in
# flight cannot be observed; a hang-up that came too early leaves orders without a line.
_HANG_UP_AFTER_S = (0.2, 0.5, 1.0, 2.0)


def test_client_disconnect_cancels_the_orders_call(slow_orders: Mesh) -> None:
    assert slow_orders.edge_address is not None
    for attempt, after_s in enumerate(_HANG_UP_AFTER_S):
        trace_id, parent = new_traceparent()
        sock = open_turn(
            slow_orders.edge_address,
            f"/v1/sessions/edge-hangup-{attempt:02d}/turns",
            {"userId": "acme-0001", "message": "where is my order?"},
            {"traceparent": parent},
        )
        try:
            assert log_lines(
                slow_orders.log_path("router"), trace_id=trace_id, method="/Classify", wait_s=10
            ), "the turn never reached the router"
            time.sleep(after_s)  # a chance for the worker's orders call to start
        finally:
            sock.close()
        (gateway,) = log_lines(
            slow_orders.log_path("gateway"), trace_id=trace_id, method="/Converse", wait_s=10
        )
        assert gateway["code"] == "CANCELLED"
        (http,) = log_lines(slow_orders.log_path("edge"), trace_id=trace_id, msg="http")
        assert http["status"] == 499
        lines = _shipment_lines(slow_orders, trace_id)
        if lines:
            (line,) = lines
            # Cancelled in its 3 s delay: a call that ran to its end would log OK.
            assert line["code"] == "CANCELLED"
            return
    pytest.fail(f"orders never saw the call, even {_HANG_UP_AFTER_S[-1]} s after the router")


def test_request_timeout_reaches_the_orders_call(slow_orders: Mesh) -> None:
    assert slow_orders.edge_url is not None
    trace_id, parent = new_traceparent()
    response = httpx.post(
        slow_orders.edge_url + "v1/sessions/edge-timeout-1/turns",
        json={"userId": "acme-0001", "message": "where is my order?"},
        headers={"traceparent": parent, "x-request-timeout": "0.6"},
        timeout=10,
    )
    # Nothing was said before the deadline passed: an HTTP error, not a stream.
    assert response.status_code == 504
    assert error_of(response)["status"] == "DEADLINE_EXCEEDED"
    (line,) = _shipment_lines(slow_orders, trace_id)
    # Ended in its 3 s delay by the deadline (or the cancellation it caused): not OK.
    assert line["code"] in {"DEADLINE_EXCEEDED", "CANCELLED"}
