"""The ledger's decisions, pure: budget states, admission, pricing a turn's usage and
capping it to its reservation, the month a budget counts in.

Budgets are per (tenant, team) and UTC calendar month: a standing monthly ``limit``,
and per month what was ``spent`` (committed) and what open reservations hold
(``reserved``). All money is integer micro units of the price table's currency.

- Admission: a reservation of ``estimate`` is held iff
  ``spent + reserved + estimate <= limit``; otherwise BUDGET_EXHAUSTED until the month
  resets. A limit of 0 admits only zero-cost turns: there is no "unlimited" budget, so
  the hard block can never be switched off by accident (set a large limit instead).
- State: by money *spent* (committed), not by what is held: SOFT_LIMIT from 80% of the
  limit, HARD_LIMIT at 100%. Holds are worst-case estimates that are mostly given back,
  so counting them would raise alerts for turns that never cost that much; spent only
  grows within a month, so each level is crossed (and logged) at most once a month.
- Commit: the usage is priced with the price table and the charge is
  ``min(priced, reserved)``: the reservation is the worst case the turn was allowed, so
  spend never passes the budget; what was priced above it is an overrun, counted.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.charges import NO_MODEL
from llm_pool.pricing import PriceTable

SOFT_RATIO_PERCENT = 80
"""The soft limit, in percent of the monthly limit."""
RESERVATION_PREFIX = "rsv_"


class State(enum.IntEnum):
    """Where a budget stands (the values of ``waybill.ledger.v1.BudgetState``)."""

    OK = 1
    SOFT_LIMIT = 2
    HARD_LIMIT = 3


class Status(enum.StrEnum):
    """Where a reservation stands."""

    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


def state_of(limit: int, spent: int) -> State:
    """The budget state by money spent (see the module docstring)."""
    if spent >= limit:
        return State.HARD_LIMIT
    if spent * 100 >= limit * SOFT_RATIO_PERCENT:
        return State.SOFT_LIMIT
    return State.OK


def used_ratio(limit: int, spent: int) -> float:
    """Spent over limit (1.0 for a zero limit): the gauge alerts are drawn from."""
    return spent / limit if limit else 1.0


def admits(*, limit: int, spent: int, reserved: int, estimate: int) -> bool:
    """Whether a reservation of ``estimate`` fits the budget."""
    return spent + reserved + estimate <= limit


def month_of(now: datetime) -> str:
    """The budget month of ``now``: ``YYYY-MM`` in UTC."""
    return now.astimezone(UTC).strftime("%Y-%m")


def next_month_start(now: datetime) -> datetime:
    """00:00 UTC of the first day of the month after ``now``'s."""
    at = now.astimezone(UTC)
    if at.month == 12:
        return datetime(at.year + 1, 1, 1, tzinfo=UTC)
    return datetime(at.year, at.month + 1, 1, tzinfo=UTC)


def seconds_to_reset(now: datetime) -> float:
    """Seconds until the budget month of ``now`` resets (the RetryInfo delay)."""
    return max(1.0, (next_month_start(now) - now).total_seconds())


def new_reservation_id() -> str:
    """``rsv_`` and 24 random hex digits."""
    return RESERVATION_PREFIX + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class ReserveInput:
    """What a Reserve asks for."""

    request_id: str
    tenant_id: str
    team_id: str
    user_id: str
    feature_id: str
    estimate: int
    """Worst-case cost in micro units."""

    def digest(self) -> str:
        """What identifies the request apart from its id: a retry must match it."""
        raw = "\x1f".join(
            (self.tenant_id, self.team_id, self.user_id, self.feature_id, str(self.estimate))
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PricedGeneration:
    """One generation as priced (``backend/model``, tokens, micro units)."""

    model: str
    input_tokens: int
    output_tokens: int
    cost: int


@dataclass(frozen=True, slots=True)
class PricedUsage:
    """A turn's usage priced with the price table."""

    generations: tuple[PricedGeneration, ...]
    """At least one: a turn with no generation has one ``NO_MODEL`` row."""
    price_version: str
    unpriced: int = 0
    """Generations the table has no price for (charged 0, counted)."""

    @property
    def total(self) -> int:
        """The priced cost of the turn."""
        return sum(g.cost for g in self.generations)


@dataclass(frozen=True, slots=True)
class Capped:
    """A priced turn charged within its reservation."""

    charged: int
    """``min(priced, reserved)``."""
    overrun: int
    """What was priced above the reservation (not charged)."""
    generations: tuple[PricedGeneration, ...]
    """The rows with costs that sum to ``charged`` (capped in order)."""


def cap(priced: PricedUsage, reserved: int) -> Capped:
    """Charge at most the reservation; the rows' costs are cut in order so they sum to
    the charge (the journal's rows always add up to what the budget was charged)."""
    left = reserved
    rows: list[PricedGeneration] = []
    for g in priced.generations:
        cost = min(g.cost, left)
        left -= cost
        rows.append(
            g
            if cost == g.cost
            else PricedGeneration(g.model, g.input_tokens, g.output_tokens, cost)
        )
    charged = reserved - left
    return Capped(charged=charged, overrun=priced.total - charged, generations=tuple(rows))


@dataclass(frozen=True, slots=True)
class UsedGeneration:
    """One generation as reported in ``Usage`` (what :func:`price` needs)."""

    backend: str
    model: str
    input_tokens: int
    output_tokens: int


def price(
    generations: Sequence[UsedGeneration],
    *,
    table: PriceTable,
    totals: tuple[int, int] = (0, 0),
) -> PricedUsage:
    """Price each generation with ``table``; an unpriced one costs 0 (and is counted by
    the table); no generation: one ``NO_MODEL`` row with the usage's token totals."""
    rows: list[PricedGeneration] = []
    unpriced = 0
    for g in generations:
        charge = table.charge(
            g.backend, g.model, input_tokens=g.input_tokens, output_tokens=g.output_tokens
        )
        if charge is None:
            unpriced += 1
        rows.append(
            PricedGeneration(
                model=f"{g.backend}/{g.model}",
                input_tokens=g.input_tokens,
                output_tokens=g.output_tokens,
                cost=0 if charge is None else charge.micro_units,
            )
        )
    if not rows:
        rows.append(PricedGeneration(NO_MODEL, totals[0], totals[1], 0))
    return PricedUsage(generations=tuple(rows), price_version=table.version, unpriced=unpriced)
