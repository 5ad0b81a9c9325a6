"""A deadline or a cancelled caller stops the work at the bottom of the real chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from tests.mesh.conftest import api_key, new_trace, rpc_lines

pytestmark = pytest.mark.mesh


@pytest.fixture(scope="module")
def slow_orders_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The mesh with a 3 s fault delay on orders' GetShipment."""
    run_dir = tmp_path_factory.mktemp("slow-mesh")
    slow = {"WAYBILL_FAULT_DELAY_MS": "3000", "WAYBILL_FAULT_METHODS": "GetShipment"}
    with Mesh(
        run_dir=run_dir,
        base_port=free_base_port(len(mesh.SERVICES)),
        services=["orders", "guardrails", "router", "tracking", "gateway"],
        per_service_env={"orders": slow},
    ) as started:
        yield started


def _shipment_lines(m: Mesh, trace_id: str) -> list[dict[str, object]]:
    return rpc_lines(m.log_path("orders"), trace_id, method="/GetShipment", wait_s=5.0)


def _converse(m: Mesh, traceparent: str, timeout: float) -> grpc.Future:
    channel = grpc.insecure_channel(m.addresses["gateway"])
    stub = gw_grpc.GatewayServiceStub(channel)
    return stub.Converse(
        gw.ConverseRequest(
            session_id=f"s-{traceparent[3:15]}", user_id="acme-0001", message="where is my order?"
        ),
        metadata=[("x-api-key", api_key(m)), ("traceparent", traceparent)],
        timeout=timeout,
    )


def test_expired_deadline_cancels_the_orders_call(slow_orders_mesh: Mesh) -> None:
    trace_id, parent = new_trace()
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        list(_converse(slow_orders_mesh, parent, timeout=0.6))
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5, "the turn hung past its deadline"
    (line,) = _shipment_lines(slow_orders_mesh, trace_id)
    # The handler saw the cancellation long before its 3 s delay was over.
    assert line["code"] in {"DEADLINE_EXCEEDED", "CANCELLED"}
    assert float(str(line["duration_ms"])) < 1000


def test_caller_cancellation_cancels_the_orders_call(slow_orders_mesh: Mesh) -> None:
    trace_id, parent = new_trace()
    call = _converse(slow_orders_mesh, parent, timeout=30)
    outcome: list[grpc.StatusCode] = []

    def consume() -> None:
        try:
            for _ in call:
                pass
        except grpc.RpcError as exc:
            outcome.append(exc.code())

    consumed = threading.Thread(target=consume, daemon=True)
    consumed.start()
    # Once the router has answered, the worker's orders call is in flight: hang up.
    deadline = time.monotonic() + 10
    while not _started(slow_orders_mesh, trace_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    call.cancel()
    consumed.join(timeout=5)
    assert outcome == [grpc.StatusCode.CANCELLED]
    (line,) = _shipment_lines(slow_orders_mesh, trace_id)
    assert line["code"] == "CANCELLED"
    assert float(str(line["duration_ms"])) < 2500


def _started(m: Mesh, trace_id: str) -> bool:
    return bool(rpc_lines(m.log_path("router"), trace_id, method="/Classify", wait_s=0))
