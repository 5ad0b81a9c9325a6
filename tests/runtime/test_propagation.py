"""Deadlines, cancellation and the principal cross a real hop: client -> tracking
worker -> orders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from waybill.common.v1 import customer_pb2, intent_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import worker_service_pb2 as worker
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from llm_pool.composer import Composer
from llm_pool.pool import LLMPool
from orders import seed
from orders.service import OrdersServicer
from orders.sqlite_store import SqliteOrderStore
from runtime import context
from runtime.client import channel
from runtime.deadlines import DeadlinePolicy, time_remaining
from runtime.principal import Principal
from runtime.server import Registration
from tests.conftest import StartServer
from workers.tracking.service import TrackingServicer
from workers.tracking.templates import TEMPLATES


class RecordingOrders(OrdersServicer):
    """Orders that records what GetShipment saw, and can be slow."""

    def __init__(self, store: SqliteOrderStore) -> None:
        super().__init__(store)
        self.remaining: list[float | None] = []
        self.principals: list[Principal | None] = []
        self.cancelled = asyncio.Event()
        self.arrived = asyncio.Event()
        self.delay = 0.0

    async def GetShipment(
        self, request: orders.GetShipmentRequest, context_: grpc.aio.ServicerContext
    ) -> orders.GetShipmentResponse:
        self.remaining.append(time_remaining())
        self.principals.append(context.principal.get())
        self.arrived.set()
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return await super().GetShipment(request, context_)


@pytest.fixture
async def chain(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> tuple[worker_grpc.WorkerServiceStub, RecordingOrders, seed.Dataset]:
    data = seed.generate(customers_per_tenant=3)
    store = SqliteOrderStore(":memory:")
    await store.load(data)
    recording = RecordingOrders(store)
    orders_addr = await serve(
        "orders",
        [
            Registration(
                "waybill.orders.v1.OrdersService",
                orders_grpc.add_OrdersServiceServicer_to_server,
                recording,
            )
        ],
    )
    downstream = channel(orders_addr, policy=DeadlinePolicy(margin_s=0.02, min_s=0.005))
    tracking = TrackingServicer(
        orders_grpc.OrdersServiceStub(downstream), LLMPool([Composer(TEMPLATES)])
    )
    tracking_addr = await serve(
        "tracking",
        [
            Registration(
                "waybill.worker.v1.WorkerService",
                worker_grpc.add_WorkerServiceServicer_to_server,
                tracking,
            )
        ],
    )
    return worker_grpc.WorkerServiceStub(channels(tracking_addr)), recording, data


def _turn(data: seed.Dataset) -> worker.RunTurnRequest:
    order = data.orders[0]
    return worker.RunTurnRequest(
        tenant_id="acme-retail",
        user_id=order.user_id,
        session_id="session-0001",
        message=f"where is {order.awb}?",
        intent=intent_pb2.INTENT_TRACKING_STATUS,
        context=customer_pb2.HydratedContext(),
    )


async def test_remaining_deadline_reaches_orders(
    chain: tuple[worker_grpc.WorkerServiceStub, RecordingOrders, seed.Dataset],
) -> None:
    stub, recording, data = chain
    events = [e async for e in stub.RunTurn(_turn(data), timeout=0.8)]
    assert events[-1].WhichOneof("event") == "result"
    (seen,) = recording.remaining
    assert seen is not None
    # The worker passed on what was left minus its 20 ms margin, never more.
    assert 0.5 < seen < 0.78


async def test_the_principal_reaches_the_hop_below_the_worker(
    chain: tuple[worker_grpc.WorkerServiceStub, RecordingOrders, seed.Dataset],
) -> None:
    stub, recording, data = chain
    order = data.orders[0]
    sent = Principal(
        "acme-retail",
        "support",
        "customer",
        principal_id=f"user:{order.user_id}",
        user_id=order.user_id,
    )
    # What the gateway sends once it has authenticated the caller.
    metadata = [(context.TENANT_HEADER, sent.tenant_id), *context.principal_metadata(sent)]
    events = [e async for e in stub.RunTurn(_turn(data), metadata=metadata, timeout=5)]
    assert events[-1].WhichOneof("event") == "result"
    assert recording.principals == [sent]
    # Without one (a call that did not come through the gateway) there is none.
    [e async for e in stub.RunTurn(_turn(data), timeout=5)]
    assert recording.principals[-1] is None


async def test_expired_deadline_cancels_the_downstream_call(
    chain: tuple[worker_grpc.WorkerServiceStub, RecordingOrders, seed.Dataset],
) -> None:
    stub, recording, data = chain
    recording.delay = 5.0
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in stub.RunTurn(_turn(data), timeout=0.3):
            pass
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(recording.cancelled.wait(), timeout=2)


async def test_caller_cancellation_cancels_the_downstream_call(
    chain: tuple[worker_grpc.WorkerServiceStub, RecordingOrders, seed.Dataset],
) -> None:
    stub, recording, data = chain
    recording.delay = 5.0

    async def consume() -> None:
        async for _ in stub.RunTurn(_turn(data), timeout=10):
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(recording.arrived.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(recording.cancelled.wait(), timeout=2)
    assert context.deadline.get() is None
