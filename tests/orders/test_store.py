"""The orders store contract, on SQLite and on PostgreSQL: data set, scoped reads,
loading."""

from __future__ import annotations

from datetime import UTC, datetime

from waybill.common.v1 import customer_pb2

from orders import seed
from tests.orders.conftest import Opener

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)


def test_generation_is_deterministic_and_shaped() -> None:
    a = seed.generate(anchor=ANCHOR)
    b = seed.generate(anchor=ANCHOR)
    assert [o.SerializeToString() for o in a.orders] == [o.SerializeToString() for o in b.orders]
    assert {c.tenant_id for c in a.customers} == set(seed.TENANTS)
    assert len({s.awb for s in a.shipments}) == len(a.shipments)
    statuses = {s.status for s in a.shipments}
    assert customer_pb2.SHIPMENT_STATUS_DELIVERED in statuses
    assert customer_pb2.SHIPMENT_STATUS_LOST in statuses
    assert customer_pb2.SHIPMENT_STATUS_DELAYED in statuses
    for order in a.orders:
        total = sum(line.quantity * line.unit_price.minor_units for line in order.lines)
        assert total == order.total.minor_units
    assert a.version != seed.generate(anchor=datetime(2026, 3, 2, tzinfo=UTC)).version


async def test_reads_are_scoped_to_tenant_and_user(opener: Opener) -> None:
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=5)
    store = await opener()
    await store.load(data)
    order = data.orders[0]
    owner = order.user_id
    assert await store.shipment("acme-retail", owner, order.awb) is not None
    assert await store.shipment("globex-home", owner, order.awb) is None
    assert await store.shipment("acme-retail", "acme-0005", order.awb) is None
    assert await store.order("acme-retail", "acme-0005", order.order_id) is None
    assert await store.order("acme-retail", owner, order.order_id) == order
    globex = next(c for c in data.customers if c.tenant_id == "globex-home")
    assert await store.customer("acme-retail", globex.user_id) is None
    assert await store.customer("globex-home", globex.user_id) == globex
    page = await store.customers("acme-retail", limit=3, after="")
    assert [c.user_id for c in page] == ["acme-0001", "acme-0002", "acme-0003"]
    rest = await store.customers("acme-retail", limit=10, after="acme-0003")
    assert [c.user_id for c in rest] == ["acme-0004", "acme-0005"]


async def test_load_is_idempotent_and_survives_reopen(opener: Opener) -> None:
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=4)
    store = await opener()
    assert await store.dataset_version() is None
    assert await store.load(data) is True
    assert await store.load(data) is False
    await store.close()
    reopened = await opener()
    assert await reopened.dataset_version() == data.version
    assert await reopened.load(data) is False
    first = data.orders[0]
    assert await reopened.order("acme-retail", first.user_id, first.order_id) == first


async def test_active_orders_newest_first_and_capped(opener: Opener) -> None:
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=3)
    store = await opener()
    await store.load(data)
    pairs = await store.active_orders("acme-retail", "acme-0002", limit=10, now=ANCHOR)
    assert len(pairs) == 3
    times = [o.create_time.seconds for o, _ in pairs]
    assert times == sorted(times, reverse=True)
    assert all(o.awb == s.awb for o, s in pairs)
    assert len(await store.active_orders("acme-retail", "acme-0002", limit=2, now=ANCHOR)) == 2
