"""The ledger's pure decisions: states by money spent, admission, the month and its
reset, pricing with the price table, and capping a charge to its reservation."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ledger.charges import NO_MODEL
from ledger.core import (
    PricedGeneration,
    PricedUsage,
    ReserveInput,
    State,
    UsedGeneration,
    admits,
    cap,
    month_of,
    new_reservation_id,
    next_month_start,
    price,
    seconds_to_reset,
    state_of,
)
from llm_pool import pricing


def test_states_by_money_spent() -> None:
    assert state_of(1000, 0) is State.OK
    assert state_of(1000, 799) is State.OK
    assert state_of(1000, 800) is State.SOFT_LIMIT
    assert state_of(1000, 999) is State.SOFT_LIMIT
    assert state_of(1000, 1000) is State.HARD_LIMIT
    assert state_of(0, 0) is State.HARD_LIMIT  # a zero budget is spent


def test_admission_counts_what_is_held() -> None:
    assert admits(limit=1000, spent=500, reserved=300, estimate=200)
    assert not admits(limit=1000, spent=500, reserved=300, estimate=201)
    assert admits(limit=0, spent=0, reserved=0, estimate=0)
    assert not admits(limit=0, spent=0, reserved=0, estimate=1)


def test_the_month_and_its_reset_are_utc() -> None:
    late = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    assert month_of(late) == "2026-12"
    assert next_month_start(late) == datetime(2027, 1, 1, tzinfo=UTC)
    assert seconds_to_reset(late) == 30
    assert next_month_start(datetime(2026, 2, 10, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_reservation_ids_match_the_contract() -> None:
    ids = {new_reservation_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"rsv_[a-z0-9]{16,32}", i) for i in ids)


def test_a_retry_matches_only_the_same_arguments() -> None:
    ask = ReserveInput("turn-0001", "acme-retail", "support", "acme-0001", "order-support", 10)
    same = ReserveInput("turn-0001", "acme-retail", "support", "acme-0001", "order-support", 10)
    other = ReserveInput("turn-0001", "acme-retail", "support", "acme-0001", "order-support", 11)
    assert ask.digest() == same.digest() != other.digest()


def test_usage_is_priced_by_the_table_rounding_up() -> None:
    table = pricing.load()
    priced = price(
        [
            UsedGeneration("openai", "gpt-4o-mini", 1000, 100),
            UsedGeneration("triton", "llama-3.1-8b-instruct", 1, 1),
            UsedGeneration("composer", "composer-v1", 500, 50),
        ],
        table=table,
    )
    assert [g.cost for g in priced.generations] == [210, 1, 0]
    assert priced.generations[0].model == "openai/gpt-4o-mini"
    assert (priced.total, priced.price_version, priced.unpriced) == (211, table.version, 0)
    unknown = price([UsedGeneration("openai", "gpt-9", 1000, 1000)], table=table)
    assert (unknown.total, unknown.unpriced) == (0, 1)
    nothing = price([], table=table, totals=(12, 3))
    assert nothing.generations == (PricedGeneration(NO_MODEL, 12, 3, 0),)


def test_a_charge_is_capped_in_order() -> None:
    usage = PricedUsage(
        (PricedGeneration("a/x", 1, 1, 300), PricedGeneration("a/y", 1, 1, 500)), "v"
    )
    within = cap(usage, 1000)
    assert (within.charged, within.overrun) == (800, 0)
    assert within.generations == usage.generations
    over = cap(usage, 600)
    assert (over.charged, over.overrun) == (600, 200)
    assert [g.cost for g in over.generations] == [300, 300]
