"""The orders store contract runs against both stores: SQLite (embedded) and
PostgreSQL (the fleet; a fresh schema per test, and it must run on CI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from waybill.common.v1 import money_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as pb
from waybill.orders.v1 import orders_service_pb2_grpc as pb_grpc

from orders import seed
from orders.service import OrdersServicer
from orders.sqlite_store import SqliteOrderStore
from orders.store import OrderStore
from runtime.errors import error_info_of
from runtime.server import Registration
from tests.conftest import StartServer
from tests.support.postgres_server import PG_DSN, fresh_schema

Opener = Callable[[], Awaitable[OrderStore]]
"""Opens another store on the same database (another replica, or a restart)."""


async def open_backend(backend: str, location: str) -> OrderStore:
    """A store of ``backend`` on ``location`` (a SQLite file, or a PostgreSQL schema)."""
    if backend == "sqlite":
        return SqliteOrderStore(location)
    from orders.pg_store import PostgresOrderStore

    return await PostgresOrderStore.open(PG_DSN, schema=location, min_size=1, max_size=4)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(backend, location) of an empty database for one test."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "orders.sqlite3")
        return
    async with fresh_schema() as schema:
        yield "postgres", schema


@pytest.fixture
async def opener(backend: tuple[str, str]) -> AsyncIterator[Opener]:
    """Opens stores on the test's database; all are closed after the test."""
    opened: list[OrderStore] = []

    async def open_store() -> OrderStore:
        store = await open_backend(*backend)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)


class Env:
    """A real OrdersService on a seeded store of the test's backend."""

    def __init__(self, stub: pb_grpc.OrdersServiceStub, store: OrderStore, data: seed.Dataset):
        self.stub, self.store, self.data = stub, store, data
        self.tenant = {c.user_id: c.tenant_id for c in data.customers}

    def order(self, index: int = 0) -> orders_pb2.Order:
        return self.data.orders[index]

    def refund(
        self, order: orders_pb2.Order, minor: int, key: str, **over: object
    ) -> pb.CreateRefundRequest:
        fields: dict[str, object] = {
            "tenant_id": self.tenant[order.user_id],
            "user_id": order.user_id,
            "order_id": order.order_id,
            "amount": money_pb2.Money(currency_code=order.total.currency_code, minor_units=minor),
            "reason": orders_pb2.REFUND_REASON_DAMAGED_ITEM,
            "idempotency_key": key,
        }
        fields.update(over)
        return pb.CreateRefundRequest(**fields)  # type: ignore[arg-type]

    async def refunded(self, order: orders_pb2.Order) -> int:
        response = await self.stub.GetOrder(
            pb.GetOrderRequest(
                tenant_id=self.tenant[order.user_id],
                user_id=order.user_id,
                order_id=order.order_id,
            )
        )
        return int(response.order.refunded.minor_units)


@pytest.fixture
async def env(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], opener: Opener
) -> Env:
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=6)
    store = await opener()
    await store.load(data)
    address = await serve(
        "orders",
        [
            Registration(
                "waybill.orders.v1.OrdersService",
                pb_grpc.add_OrdersServiceServicer_to_server,
                OrdersServicer(store),
            )
        ],
    )
    return Env(pb_grpc.OrdersServiceStub(channels(address)), store, data)


async def refused(call: object, code: grpc.StatusCode) -> tuple[str, dict[str, str], str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    assert raised.value.code() == code
    info = error_info_of(raised.value)
    assert info is not None
    return info.reason, dict(info.metadata), raised.value.details() or ""
