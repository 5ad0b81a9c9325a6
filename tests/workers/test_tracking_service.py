"""The tracking servicer on a real aio server with the runtime interceptor, in
front of real orders (a seeded store) or a stand-in orders that refuses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2
from waybill.common.v1 import customer_pb2, events_pb2, intent_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import worker_service_pb2 as worker
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from llm_pool.composer import Composer
from llm_pool.pool import LLMPool
from orders import seed
from orders.service import OrdersServicer
from orders.sqlite_store import SqliteOrderStore
from runtime.client import channel
from runtime.deadlines import DeadlinePolicy
from runtime.errors import (
    DomainError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    details_of,
    error_info_of,
)
from runtime.server import Registration
from tests.conftest import StartServer
from workers.tracking.clients import OrdersClient
from workers.tracking.service import TrackingServicer
from workers.tracking.templates import TEMPLATES

S = customer_pb2.ShipmentStatus
TENANT = "acme-retail"
AWB = "WB1234567890"


class Refusing(orders_grpc.OrdersServiceServicer):
    """A stand-in orders whose shipment reads all fail with ``error``."""

    def __init__(self, error: DomainError) -> None:
        self.error = error
        self.calls = 0

    async def _refuse(self) -> None:
        self.calls += 1
        raise self.error

    async def GetShipment(
        self, request: orders.GetShipmentRequest, context: grpc.aio.ServicerContext
    ) -> orders.GetShipmentResponse:
        await self._refuse()
        raise AssertionError("unreachable")

    async def GetEta(
        self, request: orders.GetEtaRequest, context: grpc.aio.ServicerContext
    ) -> orders.GetEtaResponse:
        await self._refuse()
        raise AssertionError("unreachable")


@dataclass
class Turn:
    """What a caller of the worker saw: the events, and the status the stream ended with."""

    events: list[worker.RunTurnResponse]
    error: grpc.aio.AioRpcError | None

    @property
    def kinds(self) -> list[str | None]:
        return [e.WhichOneof("event") for e in self.events]


Chain = Callable[..., Awaitable[worker_grpc.WorkerServiceStub]]


@pytest.fixture
def chain(serve: StartServer, channels: Callable[[str], grpc.aio.Channel]) -> Chain:
    """Start ``orders_servicer`` and a tracking worker calling it; the worker's stub."""

    async def _start(
        orders_servicer: orders_grpc.OrdersServiceServicer, *, pool: LLMPool | None = None
    ) -> worker_grpc.WorkerServiceStub:
        orders_addr = await serve(
            "orders",
            [
                Registration(
                    "waybill.orders.v1.OrdersService",
                    orders_grpc.add_OrdersServiceServicer_to_server,
                    orders_servicer,
                )
            ],
        )
        downstream = channel(orders_addr, policy=DeadlinePolicy())
        client = OrdersClient(orders_grpc.OrdersServiceStub(downstream))
        tracking = TrackingServicer(client, pool or LLMPool([Composer(TEMPLATES)]))
        address = await serve(
            "tracking",
            [
                Registration(
                    "waybill.worker.v1.WorkerService",
                    worker_grpc.add_WorkerServiceServicer_to_server,
                    tracking,
                )
            ],
        )
        return worker_grpc.WorkerServiceStub(channels(address))

    return _start


async def _run(
    stub: worker_grpc.WorkerServiceStub,
    message: str,
    *,
    user_id: str = "acme-0001",
    intent: int = intent_pb2.INTENT_TRACKING_STATUS,
) -> Turn:
    request = worker.RunTurnRequest(
        tenant_id=TENANT,
        user_id=user_id,
        session_id="session-0001",
        message=message,
        intent=intent,  # type: ignore[arg-type]
        context=customer_pb2.HydratedContext(),
    )
    events: list[worker.RunTurnResponse] = []
    try:
        async for event in stub.RunTurn(request, timeout=10):
            events.append(event)
    except grpc.aio.AioRpcError as exc:
        return Turn(events, exc)
    return Turn(events, None)


def _retry_delay_s(error: grpc.aio.AioRpcError) -> float | None:
    status = details_of(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            return float(retry.retry_delay.ToNanoseconds() / 1e9)
    return None


async def test_a_rate_limit_of_orders_reaches_the_caller_with_its_retry_delay(
    chain: Chain,
) -> None:
    orders_ = Refusing(
        ResourceExhausted("too many lookups; slow down", reason="RATE_LIMITED", retry_after_s=7)
    )
    stub = await chain(orders_)
    turn = await _run(stub, f"where is {AWB}?")
    assert turn.kinds == ["tool_call", "error"]
    assert turn.events[0].tool_call.outcome == events_pb2.STATUS_CODE_RESOURCE_EXHAUSTED
    event = turn.events[-1].error
    assert event.code == events_pb2.STATUS_CODE_RESOURCE_EXHAUSTED
    assert event.reason == "RATE_LIMITED"
    assert event.retryable
    assert turn.error is not None
    assert turn.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _retry_delay_s(turn.error) == pytest.approx(7.0)
    info = error_info_of(turn.error)
    assert info is not None
    assert (info.reason, info.domain) == ("RATE_LIMITED", "orders.waybill")
    # One attempt: RESOURCE_EXHAUSTED is not retried by the channel.
    assert orders_.calls == 1


async def test_a_not_found_the_plan_has_no_answer_for_keeps_its_reason(chain: Chain) -> None:
    stub = await chain(Refusing(NotFound("no such customer", reason="CUSTOMER_NOT_FOUND")))
    turn = await _run(stub, f"when will {AWB} arrive?", intent=intent_pb2.INTENT_TRACKING_ETA)
    assert turn.kinds == ["tool_call", "error"]
    assert turn.events[-1].error.code == events_pb2.STATUS_CODE_NOT_FOUND
    assert not turn.events[-1].error.retryable
    assert turn.error is not None
    assert turn.error.code() == grpc.StatusCode.NOT_FOUND
    info = error_info_of(turn.error)
    assert info is not None
    assert info.reason == "CUSTOMER_NOT_FOUND"


async def test_an_unknown_awb_is_an_answer_not_an_error(chain: Chain) -> None:
    stub = await chain(Refusing(NotFound("no shipment", reason="SHIPMENT_NOT_FOUND")))
    turn = await _run(stub, f"where is {AWB}?")
    assert turn.error is None
    assert turn.kinds[-1] == "result"
    assert "couldn't find a shipment" in turn.events[-1].result.answer
    assert turn.events[0].tool_call.outcome == events_pb2.STATUS_CODE_NOT_FOUND


async def test_orders_down_is_unavailable_and_retryable(chain: Chain) -> None:
    stub = await chain(Refusing(Unavailable("database is down", reason="STORE_DOWN")))
    turn = await _run(stub, f"where is {AWB}?")
    assert turn.events[-1].error.code == events_pb2.STATUS_CODE_UNAVAILABLE
    assert turn.events[-1].error.retryable
    assert turn.error is not None
    assert turn.error.code() == grpc.StatusCode.UNAVAILABLE
    assert "database" not in (turn.error.details() or "")  # a dependency failed, not which


async def test_orders_rejecting_our_request_is_our_bug_and_says_nothing_internal(
    chain: Chain,
) -> None:
    stub = await chain(Refusing(InvalidArgument("bad awb field in GetShipment", reason="X")))
    turn = await _run(stub, f"where is {AWB}?")
    assert turn.events[-1].error.code == events_pb2.STATUS_CODE_INTERNAL
    assert turn.error is not None
    assert turn.error.code() == grpc.StatusCode.INTERNAL
    assert "GetShipment" not in (turn.error.details() or "")
    info = error_info_of(turn.error)
    assert info is not None
    assert info.reason == "DEPENDENCY_REJECTED_REQUEST"


@pytest.fixture
def data() -> seed.Dataset:
    return seed.generate(customers_per_tenant=10)


async def _real_orders(data: seed.Dataset) -> OrdersServicer:
    store = SqliteOrderStore(":memory:")
    await store.load(data)
    return OrdersServicer(store)


def _shipment_where(
    data: seed.Dataset, match: Callable[[orders_pb2.Shipment], bool]
) -> tuple[str, orders_pb2.Shipment]:
    owner = {o.awb: o.user_id for o in data.orders}
    tenant = {c.user_id: c.tenant_id for c in data.customers}
    for shipment in data.shipments:
        user = owner[shipment.awb]
        if tenant[user] == TENANT and match(shipment):
            return user, shipment
    raise AssertionError("the seed has no such shipment")


async def test_a_status_turn_against_real_orders(chain: Chain, data: seed.Dataset) -> None:
    stub = await chain(await _real_orders(data))
    user, shipment = _shipment_where(data, lambda s: s.status == S.SHIPMENT_STATUS_IN_TRANSIT)
    turn = await _run(stub, f"where is {shipment.awb}?", user_id=user)
    assert turn.error is None
    assert turn.kinds[0] == "tool_call"
    assert turn.events[0].tool_call.outcome == events_pb2.STATUS_CODE_OK
    result = turn.events[-1].result
    assert "is in transit" in result.answer
    assert result.state.focus_awb == shipment.awb
    assert result.usage.tool_calls == 1


async def test_an_eta_for_a_lost_parcel_says_so(chain: Chain, data: seed.Dataset) -> None:
    stub = await chain(await _real_orders(data))
    user, shipment = _shipment_where(
        data, lambda s: s.status in (S.SHIPMENT_STATUS_LOST, S.SHIPMENT_STATUS_RETURNED)
    )
    turn = await _run(
        stub,
        f"when does {shipment.awb} arrive?",
        user_id=user,
        intent=intent_pb2.INTENT_TRACKING_ETA,
    )
    assert turn.error is None
    assert turn.events[0].tool_call.outcome == events_pb2.STATUS_CODE_FAILED_PRECONDITION
    assert "I can't give an arrival date" in turn.events[-1].result.answer


async def test_no_photo_before_delivery_takes_two_reads(chain: Chain, data: seed.Dataset) -> None:
    stub = await chain(await _real_orders(data))
    user, shipment = _shipment_where(data, lambda s: s.status == S.SHIPMENT_STATUS_IN_TRANSIT)
    turn = await _run(
        stub,
        f"photo of {shipment.awb}?",
        user_id=user,
        intent=intent_pb2.INTENT_TRACKING_DELIVERY_PHOTO,
    )
    assert turn.error is None
    calls = [e.tool_call for e in turn.events if e.WhichOneof("event") == "tool_call"]
    assert [c.name for c in calls] == ["get_delivery_photo", "get_order_status"]
    assert "There is no delivery photo yet" in turn.events[-1].result.answer


async def test_a_failed_generation_ends_with_an_error_event_and_status(
    chain: Chain, data: seed.Dataset
) -> None:
    stub = await chain(await _real_orders(data), pool=LLMPool([Composer({})]))
    user, shipment = _shipment_where(data, lambda s: s.status == S.SHIPMENT_STATUS_IN_TRANSIT)
    turn = await _run(stub, f"where is {shipment.awb}?", user_id=user)
    assert turn.kinds == ["tool_call", "error"]
    event = turn.events[-1].error
    assert event.code == events_pb2.STATUS_CODE_FAILED_PRECONDITION
    assert event.reason == "UNKNOWN_TEMPLATE"
    assert turn.error is not None
    assert turn.error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "template" not in (turn.error.details() or "")
