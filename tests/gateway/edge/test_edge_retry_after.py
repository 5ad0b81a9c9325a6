"""A RetryInfo raised three hops down (edge -> gateway -> tracking -> orders) reaches the
HTTP caller as ``429`` with ``Retry-After``, through real processes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cli.launcher import Mesh
from tests.gateway.edge.conftest import error_info, error_of
from tests.gateway.edge.mesh_fixtures import edge_mesh, log_lines, new_traceparent

# Orders answers every GetShipment with RESOURCE_EXHAUSTED and a 7 s RetryInfo (a drill knob
# of the runtime's interceptor); hydration (ListActiveOrders) still works.
BUSY_ORDERS = {
    "WAYBILL_FAULT_STATUS": "RESOURCE_EXHAUSTED",
    "WAYBILL_FAULT_RETRY_AFTER_S": "7",
    "WAYBILL_FAULT_METHODS": "GetShipment",
}


@pytest.fixture(scope="module")
def busy_orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The tracking path of the mesh with a rate-limited orders, and the edge."""
    with edge_mesh(
        tmp_path_factory.mktemp("edge-busy"),
        services=["orders", "guardrails", "router", "tracking", "ledger", "gateway"],
        per_service_env={"orders": BUSY_ORDERS},
    ) as started:
        yield started


def test_retry_info_from_orders_arrives_as_retry_after(busy_orders: Mesh) -> None:
    assert busy_orders.edge_url is not None
    trace_id, parent = new_traceparent()
    response = httpx.post(
        busy_orders.edge_url + "v1/sessions/edge-busy-0001/turns",
        json={"userId": "acme-0001", "message": "where is my order?"},
        headers={"traceparent": parent},
        timeout=10,
    )
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "7"
    error = error_of(response)
    assert error["status"] == "RESOURCE_EXHAUSTED"
    details = error["details"]
    assert isinstance(details, list)
    retry = [d for d in details if str(d["@type"]).endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    assert error_info(error)["reason"] == "FAULT_INJECTED"
    # It really came from orders, three hops down, within this one trace.
    (shipment,) = log_lines(
        busy_orders.log_path("orders"), trace_id=trace_id, method="/GetShipment"
    )
    assert shipment["code"] == "RESOURCE_EXHAUSTED"
