from datetime import UTC, datetime
from pathlib import Path

from waybill.common.v1 import customer_pb2

from orders import seed
from orders.store import OrderStore

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


def test_reads_are_scoped_to_tenant_and_user(tmp_path: Path) -> None:
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=5)
    store = OrderStore(tmp_path / "o.sqlite3")
    store.load(data)
    order = data.orders[0]
    owner = order.user_id
    assert store.shipment("acme-retail", owner, order.awb) is not None
    assert store.shipment("globex-home", owner, order.awb) is None
    assert store.shipment("acme-retail", "acme-0005", order.awb) is None
    assert store.order("acme-retail", "acme-0005", order.order_id) is None
    globex = next(c for c in data.customers if c.tenant_id == "globex-home")
    assert store.customer("acme-retail", globex.user_id) is None


def test_load_is_idempotent_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=4)
    store = OrderStore(path)
    assert store.load(data) is True
    assert store.load(data) is False
    store.close()
    reopened = OrderStore(path)
    assert reopened.dataset_version() == data.version
    first = data.orders[0]
    assert reopened.order("acme-retail", first.user_id, first.order_id) == first


def test_active_orders_newest_first_and_capped(tmp_path: Path) -> None:
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=3)
    store = OrderStore(":memory:")
    store.load(data)
    pairs = store.active_orders("acme-retail", "acme-0002", limit=10, now=ANCHOR)
    assert len(pairs) == 3
    times = [o.create_time.seconds for o, _ in pairs]
    assert times == sorted(times, reverse=True)
    assert len(store.active_orders("acme-retail", "acme-0002", limit=2, now=ANCHOR)) == 2
