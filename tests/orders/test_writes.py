"""Writes to the system of record happen exactly once, on SQLite and on PostgreSQL:
refunds, notifications and tickets through OrdersService on a real server, refunds
raced from two stores (replicas) and from two processes on one database."""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import UTC, datetime

import grpc
from waybill.common.v1 import customer_pb2, money_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as pb

from orders import seed
from orders.store import OrderStore, Written
from runtime.errors import FailedPrecondition
from tests.orders.conftest import ANCHOR, Env, Opener, open_backend, refused


async def test_a_key_makes_one_refund_however_often_it_is_sent(env: Env) -> None:
    order = env.order()
    first = await env.stub.CreateRefund(env.refund(order, 500, "action-0001-aaaaaaaa"))
    assert not first.replayed
    assert first.refund.refund_id.startswith("REF-")
    assert first.refund.status == orders_pb2.REFUND_STATUS_APPROVED
    # A retry, a double click, a replay after a lost reply: the same refund comes back.
    again = await asyncio.gather(
        *(env.stub.CreateRefund(env.refund(order, 500, "action-0001-aaaaaaaa")) for _ in range(8))
    )
    assert {r.refund.refund_id for r in again} == {first.refund.refund_id}
    assert all(r.replayed for r in again)
    assert await env.refunded(order) == 500
    assert (
        len(await env.store.refunds(env.tenant[order.user_id], order.user_id, order.order_id)) == 1
    )


async def test_two_genuine_same_day_refunds_of_one_amount_both_happen(env: Env) -> None:
    order = env.order()
    a = await env.stub.CreateRefund(env.refund(order, 300, "action-0002-aaaaaaaa"))
    b = await env.stub.CreateRefund(env.refund(order, 300, "action-0003-aaaaaaaa"))
    assert a.refund.refund_id != b.refund.refund_id
    assert await env.refunded(order) == 600


async def test_a_refund_never_exceeds_the_refundable_balance(env: Env) -> None:
    order = env.order()
    total = order.total.minor_units
    await env.stub.CreateRefund(env.refund(order, total - 100, "action-0004-aaaaaaaa"))
    reason, metadata, _ = await refused(
        env.stub.CreateRefund(env.refund(order, 101, "action-0005-aaaaaaaa")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert (reason, metadata) == ("REFUND_EXCEEDS_BALANCE", {"refundable_minor_units": "100"})
    await env.stub.CreateRefund(env.refund(order, 100, "action-0006-aaaaaaaa"))
    assert await env.refunded(order) == total  # the refused one wrote nothing


async def test_concurrent_refunds_stop_at_the_balance(env: Env) -> None:
    order = env.order(1)
    total = order.total.minor_units
    share = total // 4 + 1  # only three fit
    results = await asyncio.gather(
        *(
            env.stub.CreateRefund(env.refund(order, share, f"action-race-{i:04d}-aaaa"))
            for i in range(10)
        ),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, pb.CreateRefundResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(made) == 3
    assert len(refused) == 7
    assert {e.code() for e in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert await env.refunded(order) == 3 * share


async def test_a_key_used_again_for_another_request_isrefused(env: Env) -> None:
    order = env.order()
    await env.stub.CreateRefund(env.refund(order, 200, "action-0007-aaaaaaaa"))
    reason, _, _ = await refused(
        env.stub.CreateRefund(env.refund(order, 250, "action-0007-aaaaaaaa")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert reason == "IDEMPOTENCY_KEY_REUSED"
    assert await env.refunded(order) == 200


async def test_another_customers_order_answers_exactly_like_a_missing_one(env: Env) -> None:
    order = env.order()
    tenant = env.tenant[order.user_id]
    other = next(
        c.user_id
        for c in env.data.customers
        if c.tenant_id == tenant and c.user_id != order.user_id
    )
    theirs = await refused(
        env.stub.CreateRefund(env.refund(order, 100, "action-0008-aaaaaaaa", user_id=other)),
        grpc.StatusCode.NOT_FOUND,
    )
    missing = await refused(
        env.stub.CreateRefund(
            env.refund(order, 100, "action-0009-aaaaaaaa", order_id="ORD-99999999")
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert theirs == missing
    assert theirs[0] == "ORDER_NOT_FOUND"
    assert await env.refunded(order) == 0


async def test_a_refund_in_another_currency_isrefused(env: Env) -> None:
    order = env.order()
    other = "EUR" if order.total.currency_code != "EUR" else "USD"
    reason, _, _ = await refused(
        env.stub.CreateRefund(
            env.refund(
                order,
                100,
                "action-0010-aaaaaaaa",
                amount=money_pb2.Money(currency_code=other, minor_units=100),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason == "CURRENCY_MISMATCH"


async def test_notifications_and_tickets_are_written_once_per_key(env: Env) -> None:
    order = env.order()
    scope = {"tenant_id": env.tenant[order.user_id], "user_id": order.user_id}
    note = pb.SendNotificationRequest(
        **scope,
        channel=orders_pb2.NOTIFICATION_CHANNEL_EMAIL,
        template=orders_pb2.NOTIFICATION_TEMPLATE_REFUND_APPROVED,
        params={"refund_id": "REF-1", "amount": "5.00"},
        idempotency_key="action-0011-notify-a",
    )
    sent = [await env.stub.SendNotification(note) for _ in range(3)]
    assert [s.replayed for s in sent] == [False, True, True]
    assert len({s.notification_id for s in sent}) == 1
    assert len(await env.store.notifications(scope["tenant_id"], order.user_id)) == 1

    ticket = pb.CreateEscalationTicketRequest(
        **scope,
        session_id="sess-0001-abcd",
        order_id=order.order_id,
        reason=orders_pb2.ESCALATION_REASON_FRAUD_RISK,
        summary="The customer disputes a delivery; fraud score above the automatic limit.",
        idempotency_key="action-0012-ticket-a",
    )
    opened = [await env.stub.CreateEscalationTicket(ticket) for _ in range(2)]
    assert [o.replayed for o in opened] == [False, True]
    assert opened[0].ticket == opened[1].ticket
    customer = next(c for c in env.data.customers if c.user_id == order.user_id)
    tier = customer_pb2.CustomerTier.Name(customer.tier).removeprefix("CUSTOMER_TIER_").lower()
    assert opened[0].ticket.queue == f"refunds-{tier}"
    assert opened[0].ticket.priority == (
        1 if customer.tier >= customer_pb2.CUSTOMER_TIER_GOLD else 2
    )

    # Someone else's order on a ticket answers like a missing one.
    foreign = next(o for o in env.data.orders if o.user_id != order.user_id)
    reason, _, _ = await refused(
        env.stub.CreateEscalationTicket(
            pb.CreateEscalationTicketRequest(
                **scope,
                session_id="sess-0001-abcd",
                order_id=foreign.order_id,
                reason=orders_pb2.ESCALATION_REASON_CUSTOMER_REQUEST,
                summary="Asked for a person.",
                idempotency_key="action-0013-ticket-b",
            )
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason == "ORDER_NOT_FOUND"


async def _refund(
    store: OrderStore, order: orders_pb2.Order, tenant: str, minor: int, key: str
) -> Written[orders_pb2.Refund]:
    return await store.create_refund(
        tenant,
        order.user_id,
        order.order_id,
        money_pb2.Money(currency_code=order.total.currency_code, minor_units=minor),
        orders_pb2.REFUND_REASON_DAMAGED_ITEM,
        key=key,
        digest=f"digest-{minor}",
        now=ANCHOR,
    )


async def test_reloading_the_data_set_keeps_what_was_written(opener: Opener) -> None:
    store = await opener()
    today = seed.generate(anchor=ANCHOR, customers_per_tenant=4)
    await store.load(today)
    order = today.orders[0]
    tenant = next(c.tenant_id for c in today.customers if c.user_id == order.user_id)
    made = await _refund(store, order, tenant, 700, "action-0014-aaaaaaaa")
    tomorrow = seed.generate(anchor=datetime(2026, 3, 2, tzinfo=UTC), customers_per_tenant=4)
    assert await store.load(tomorrow) is True
    assert await store.refunds(tenant, order.user_id, order.order_id) == [made.value]
    again = await _refund(store, order, tenant, 700, "action-0014-aaaaaaaa")
    assert again == Written(made.value, replayed=True)  # the key outlived the reload


async def test_two_replicas_confirming_one_action_make_one_refund(opener: Opener) -> None:
    first, second = await opener(), await opener()
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=4)
    await first.load(data)
    order = data.orders[0]
    tenant = next(c.tenant_id for c in data.customers if c.user_id == order.user_id)
    results = await asyncio.gather(
        *(_refund(s, order, tenant, 900, "action-0015-aaaaaaaa") for s in (first, second) * 3)
    )
    assert len({r.value.refund_id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 5
    assert len(await second.refunds(tenant, order.user_id, order.order_id)) == 1


def _race(
    backend: str,
    location: str,
    order: bytes,
    tenant: str,
    share: int,
    tag: str,
    start: object,
) -> int:
    """One process's share of the race: refunds with its own keys until refused."""
    return asyncio.run(_race_async(backend, location, order, tenant, share, tag, start))


async def _race_async(
    backend: str, location: str, raw: bytes, tenant: str, share: int, tag: str, start: object
) -> int:
    order = orders_pb2.Order.FromString(raw)
    store = await open_backend(backend, location)
    start.wait()  # type: ignore[attr-defined]
    made = 0
    try:
        for i in range(20):
            try:
                await _refund(store, order, tenant, share, f"action-{tag}-{i:04d}-aaaa")
                made += 1
            except FailedPrecondition:
                pass
    finally:
        await store.close()
    return made


async def test_two_processes_racing_on_one_order_stop_at_its_balance(
    backend: tuple[str, str], opener: Opener
) -> None:
    store = await opener()
    data = seed.generate(anchor=ANCHOR, customers_per_tenant=4)
    await store.load(data)
    order = data.orders[0]
    tenant = next(c.tenant_id for c in data.customers if c.user_id == order.user_id)
    share = order.total.minor_units // 7 + 1  # six fit, not seven
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            args = (*backend, order.SerializeToString(), tenant, share)
            made = await asyncio.to_thread(
                pool.starmap, _race, [(*args, "pa", start), (*args, "pb", start)]
            )
    assert sum(made) == 6
    stored = await store.order(tenant, order.user_id, order.order_id)
    assert stored is not None
    assert stored.refunded.minor_units == 6 * share
