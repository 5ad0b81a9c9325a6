"""The store contract, against both stores: holds within the budget, idempotent
operations, tenants apart, expiry, the journal's rows, exactness under concurrency, and
what a restart keeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ledger.charges import NO_MODEL
from ledger.core import State, next_month_start, price
from ledger.store import LedgerStore
from llm_pool import pricing
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from tests.ledger.conftest import LIMIT, NOW, TTL_S, Opener, ask, priced

DAY = timedelta(days=1)


async def test_reserve_commit_release_move_the_budget(store: LedgerStore) -> None:
    held = await store.reserve(ask("turn-0001", estimate=5000), now=NOW)
    assert held.reservation_id.startswith("rsv_")
    assert held.expire_time == NOW + timedelta(seconds=TTL_S)
    assert (held.budget.limit, held.budget.spent, held.budget.reserved) == (LIMIT, 0, 5000)
    other = await store.reserve(ask("turn-0002", estimate=3000), now=NOW)
    done = await store.commit("acme-retail", held.reservation_id, priced(1200), now=NOW)
    assert (done.charged, done.overrun, done.replayed) == (1200, 0, False)
    assert (done.budget.spent, done.budget.reserved) == (1200, 3000)
    assert await store.release("acme-retail", other.reservation_id, now=NOW) is True
    budget = await store.budget("acme-retail", "support", now=NOW)
    assert (budget.spent, budget.reserved, budget.state) == (1200, 0, State.OK)


async def test_a_charge_never_passes_its_reservation(store: LedgerStore) -> None:
    held = await store.reserve(ask(estimate=1000), now=NOW)
    done = await store.commit("acme-retail", held.reservation_id, priced(900, 400), now=NOW)
    assert (done.charged, done.overrun) == (1000, 300)
    rows = await store.charges(NOW - DAY, NOW + DAY)
    assert [r.cost_micro_units for r in rows] == [900, 100]  # the rows add up to the charge
    assert [r.first for r in rows] == [True, False]


async def test_retries_are_idempotent(store: LedgerStore) -> None:
    first = await store.reserve(ask("turn-0001", estimate=2000), now=NOW)
    again = await store.reserve(ask("turn-0001", estimate=2000), now=NOW)
    assert (again.reservation_id, again.replayed) == (first.reservation_id, True)
    assert again.budget.reserved == 2000  # held once
    with pytest.raises(InvalidArgument) as reused:
        await store.reserve(ask("turn-0001", estimate=2500), now=NOW)
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    done = await store.commit("acme-retail", first.reservation_id, priced(700), now=NOW)
    retry = await store.commit("acme-retail", first.reservation_id, priced(999), now=NOW)
    assert (retry.charged, retry.replayed) == (done.charged, True)
    assert retry.budget.spent == 700
    assert await store.release("acme-retail", first.reservation_id, now=NOW) is False
    assert len(await store.charges(NOW - DAY, NOW + DAY)) == 1
    # A reservation released is never charged afterwards.
    gone = await store.reserve(ask("turn-0002"), now=NOW)
    assert await store.release("acme-retail", gone.reservation_id, now=NOW) is True
    assert await store.release("acme-retail", gone.reservation_id, now=NOW) is False
    with pytest.raises(FailedPrecondition) as refused:
        await store.commit("acme-retail", gone.reservation_id, priced(1), now=NOW)
    assert refused.value.reason == "RESERVATION_RELEASED"


async def test_another_tenants_reservation_is_not_found(store: LedgerStore) -> None:
    held = await store.reserve(ask(), now=NOW)
    for call in (
        store.commit("globex-home", held.reservation_id, priced(1), now=NOW),
        store.release("globex-home", held.reservation_id, now=NOW),
        store.commit("acme-retail", "rsv_0000000000000000", priced(1), now=NOW),
    ):
        with pytest.raises(NotFound) as missing:
            await call
        assert missing.value.reason == "RESERVATION_NOT_FOUND"
    # The same request id in another tenant is another reservation.
    theirs = await store.reserve(ask(tenant_id="globex-home"), now=NOW)
    assert theirs.reservation_id != held.reservation_id


async def test_over_the_budget_is_refused_until_the_month_resets(store: LedgerStore) -> None:
    await store.set_budget("acme-retail", "support", 10_000, now=NOW)
    await store.reserve(ask("turn-0001", estimate=6000), now=NOW)
    with pytest.raises(ResourceExhausted) as refused:
        await store.reserve(ask("turn-0002", estimate=4001), now=NOW)
    assert refused.value.reason == "BUDGET_EXHAUSTED"
    assert refused.value.retry_after_s == (next_month_start(NOW) - NOW).total_seconds()
    assert refused.value.metadata["reserved_micro_units"] == "6000"
    fits = await store.reserve(ask("turn-0002", estimate=4000), now=NOW)  # exactly the limit
    assert fits.budget.reserved == 10_000
    # Another team, and next month, have their own budgets.
    await store.reserve(ask("turn-0003", estimate=4000, team="billing"), now=NOW)
    await store.reserve(ask("turn-0004", estimate=10_000), now=NOW + 31 * DAY)


async def test_a_zero_budget_admits_only_free_turns(store: LedgerStore) -> None:
    await store.set_budget("acme-retail", "support", 0, now=NOW)
    free = await store.reserve(ask("turn-0001", estimate=0), now=NOW)
    assert free.budget.state is State.HARD_LIMIT
    with pytest.raises(ResourceExhausted):
        await store.reserve(ask("turn-0002", estimate=1), now=NOW)


async def test_states_follow_money_spent(store: LedgerStore) -> None:
    await store.set_budget("acme-retail", "support", 10_000, now=NOW)
    held = await store.reserve(ask("turn-0001", estimate=9000), now=NOW)
    assert held.budget.state is State.OK  # a hold is not spend
    soft = await store.commit("acme-retail", held.reservation_id, priced(8000), now=NOW)
    assert (soft.budget.state, soft.crossed) == (State.SOFT_LIMIT, State.SOFT_LIMIT)
    more = await store.reserve(ask("turn-0002", estimate=500), now=NOW)
    again = await store.commit("acme-retail", more.reservation_id, priced(500), now=NOW)
    assert (again.budget.state, again.crossed) == (State.SOFT_LIMIT, None)  # once a month
    last = await store.reserve(ask("turn-0003", estimate=1500), now=NOW)
    hard = await store.commit("acme-retail", last.reservation_id, priced(1500), now=NOW)
    assert (hard.budget.spent, hard.crossed) == (10_000, State.HARD_LIMIT)


async def test_uncommitted_reservations_expire(store: LedgerStore) -> None:
    stale = await store.reserve(ask("turn-0001", estimate=4000), now=NOW)
    late = await store.reserve(ask("turn-0002", estimate=1000), now=NOW)
    fresh = await store.reserve(ask("turn-0003", estimate=2000), now=NOW + timedelta(seconds=200))
    after = NOW + timedelta(seconds=TTL_S + 1)
    assert await store.expire(now=after) == 2
    assert await store.expire(now=after) == 0
    budget = await store.budget("acme-retail", "support", now=after)
    assert budget.reserved == 2000
    for reservation_id in (stale.reservation_id, late.reservation_id):
        with pytest.raises(FailedPrecondition) as refused:
            await store.commit("acme-retail", reservation_id, priced(10), now=after)
        assert refused.value.reason == "RESERVATION_EXPIRED"
    assert await store.release("acme-retail", stale.reservation_id, now=after) is False
    # Past its expiry, a commit finds it expired even before the sweeper ran.
    much_later = NOW + timedelta(seconds=TTL_S + 300)
    with pytest.raises(FailedPrecondition):
        await store.commit("acme-retail", fresh.reservation_id, priced(10), now=much_later)
    assert (await store.budget("acme-retail", "support", now=much_later)).reserved == 0
    assert (await store.budget("acme-retail", "support", now=much_later)).spent == 0


async def test_the_journal_rows_of_a_turn(store: LedgerStore) -> None:
    held = await store.reserve(ask("turn-0001", estimate=5000), now=NOW)
    await store.commit("acme-retail", held.reservation_id, priced(100, 200), now=NOW)
    bare = await store.reserve(ask("turn-0002", tenant_id="globex-home", user_id=""), now=NOW)
    none = price([], table=pricing.load(), totals=(0, 0))
    await store.commit("globex-home", bare.reservation_id, none, now=NOW + timedelta(seconds=1))
    rows = await store.charges(NOW - DAY, NOW + DAY)
    assert [(r.tenant_id, r.model, r.first, r.cost_micro_units) for r in rows] == [
        ("acme-retail", "openai/gpt-4o-mini", True, 100),
        ("acme-retail", "openai/gpt-4o-mini", False, 200),
        ("globex-home", NO_MODEL, True, 0),
    ]
    first = rows[0]
    assert (first.request_id, first.reservation_id, first.team_id, first.user_id) == (
        "turn-0001",
        held.reservation_id,
        "support",
        "acme-0001",
    )
    assert (first.feature_id, first.currency_code, first.price_version) == (
        "order-support",
        "USD",
        "test",
    )
    assert first.time == NOW
    assert first.time.tzinfo is not None
    assert [r.tenant_id for r in await store.charges(NOW - DAY, NOW + DAY, "globex-home")] == [
        "globex-home"
    ]
    assert await store.charges(NOW + timedelta(seconds=1), NOW + DAY, "acme-retail") == []


async def test_200_concurrent_reserves_hold_exactly_what_fits(store: LedgerStore) -> None:
    await store.set_budget("acme-retail", "support", 50 * 1000, now=NOW)

    async def turn(i: int) -> int:
        try:
            held = await store.reserve(ask(f"turn-{i:04d}", estimate=1000), now=NOW)
        except ResourceExhausted:
            return 0
        done = await store.commit("acme-retail", held.reservation_id, priced(5000), now=NOW)
        return done.charged

    charged = await asyncio.gather(*(turn(i) for i in range(200)))
    assert sum(1 for c in charged if c) == 50
    budget = await store.budget("acme-retail", "support", now=NOW)
    assert (budget.spent, budget.reserved) == (50 * 1000, 0)
    assert budget.spent <= budget.limit


async def test_a_restart_keeps_everything(opener: Opener) -> None:
    store = await opener()
    await store.set_budget("acme-retail", "support", 20_000, now=NOW)
    committed = await store.reserve(ask("turn-0001", estimate=3000), now=NOW)
    await store.commit("acme-retail", committed.reservation_id, priced(2500), now=NOW)
    held = await store.reserve(ask("turn-0002", estimate=4000), now=NOW)
    freed = await store.reserve(ask("turn-0003", estimate=1000), now=NOW)
    await store.release("acme-retail", freed.reservation_id, now=NOW)
    await store.close()
    reopened = await opener()
    budget = await reopened.budget("acme-retail", "support", now=NOW)
    assert (budget.limit, budget.spent, budget.reserved) == (20_000, 2500, 4000)
    again = await reopened.reserve(ask("turn-0002", estimate=4000), now=NOW)
    assert (again.reservation_id, again.replayed) == (held.reservation_id, True)
    retry = await reopened.commit("acme-retail", committed.reservation_id, priced(9), now=NOW)
    assert (retry.charged, retry.replayed) == (2500, True)
    assert len(await reopened.charges(NOW - DAY, NOW + DAY)) == 1
