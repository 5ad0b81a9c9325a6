"""A deadline or a cancelled caller stops the work at the bottom of the real chain."""

from __future__ import annotations

import threading
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


FAULT_DELAY_S = 30.0
"""Orders' GetShipment sleeps this long first: far past any cancellation the tests make."""


@pytest.fixture(scope="module")
def slow_orders_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The mesh with a long fault delay on orders' GetShipment."""
    run_dir = tmp_path_factory.mktemp("slow-mesh")
    slow = {
        "WAYBILL_FAULT_DELAY_MS": str(int(FAULT_DELAY_S * 1000)),
        "WAYBILL_FAULT_METHODS": "GetShipment",
    }
    with Mesh(
        run_dir=run_dir,
        base_port=free_base_port(len(mesh.SERVICES)),
        services=["orders", "guardrails", "router", "tracking", "ledger", "gateway"],
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


# Deadlines of the attempts below: the first is the point; the others only
# allow for a machine so loaded that the turn expired before reaching orders.
_DEADLINES_S = (0.6, 2.0, 5.0)


def test_expired_deadline_cancels_the_orders_call(slow_orders_mesh: Mesh) -> None:
    for timeout in _DEADLINES_S:
        trace_id, parent = new_trace()
        with pytest.raises(grpc.RpcError) as raised:
            list(_converse(slow_orders_mesh, parent, timeout=timeout))
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        lines = _ended(slow_orders_mesh, trace_id)
        if lines:
            (line,) = lines
            # Stopped in its delay (it would log OK after FAULT_DELAY_S otherwise):
            # the deadline reached orders and ended the call there.
            assert line["code"] in {"DEADLINE_EXCEEDED", "CANCELLED"}
            return
    pytest.fail(f"no turn reached orders within {_DEADLINES_S[-1]} s")


def _ended(m: Mesh, trace_id: str) -> list[dict[str, object]]:
    """Orders' GetShipment lines of a turn whose gateway call has ended (none: never called)."""
    assert rpc_lines(m.log_path("gateway"), trace_id, method="/Converse", wait_s=30.0)
    return _shipment_lines(m, trace_id)


# Attempts at the cancellation below, each waiting longer after the router's answer.
_CANCEL_AFTER_S = (0.2, 0.5, 1.0, 2.0, 4.0)


def test_caller_cancellation_cancels_the_orders_call(slow_orders_mesh: Mesh) -> None:
    # The services log a call when it ends, never when it starts, so the moment
    # the worker's orders call is in flight cannot be seen from here. Instead:
    # hang up once the router has answered; if orders then never saw the call
    # (the hang-up came first), try again, later. Orders holds the call for
    # FAULT_DELAY_S, so a hang-up that reaches it can only find it in its delay.
    for after_s in _CANCEL_AFTER_S:
        trace_id, parent = new_trace()
        outcome = _cancel_after_classify(slow_orders_mesh, parent, trace_id, after_s)
        assert outcome == [grpc.StatusCode.CANCELLED]
        lines = _ended(slow_orders_mesh, trace_id)
        if lines:
            (line,) = lines
            assert line["code"] == "CANCELLED"
            return
    pytest.fail(f"orders never saw the call, even {_CANCEL_AFTER_S[-1]} s after the router")


def _cancel_after_classify(
    m: Mesh, traceparent: str, trace_id: str, after_s: float
) -> list[grpc.StatusCode]:
    """Start a turn, cancel it ``after_s`` after the router answered; how the call ended."""
    call = _converse(m, traceparent, timeout=FAULT_DELAY_S)
    outcome: list[grpc.StatusCode] = []

    def consume() -> None:
        try:
            for _ in call:
                pass
        except grpc.RpcError as exc:
            outcome.append(exc.code())

    consumed = threading.Thread(target=consume, daemon=True)
    consumed.start()
    assert rpc_lines(m.log_path("router"), trace_id, method="/Classify", wait_s=30.0), (
        "the router never answered"
    )
    # A delay chosen by the caller (see above), not a wait for something to happen.
    threading.Event().wait(after_s)
    call.cancel()
    consumed.join(timeout=30)
    return outcome
