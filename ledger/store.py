"""What every ledger store is: the contract the servicer calls, what it answers, and the
errors both stores (embedded journal, PostgreSQL) raise the same way.

Every operation is idempotent and acknowledged only once it is durable:

- Reserve by (tenant, request_id): a retry returns the same reservation; the same id
  with different arguments is INVALID_ARGUMENT (``IDEMPOTENCY_KEY_REUSED``). A refused
  Reserve holds nothing, so its retry is decided again.
- Commit by reservation: a retry returns the first charge; committing a released
  reservation is FAILED_PRECONDITION (``RESERVATION_RELEASED``), an expired one
  FAILED_PRECONDITION (``RESERVATION_EXPIRED``): its hold was given back to the budget and
  may have been reserved by others since, so charging it now could pass the hard limit.
  The TTL is far above any turn's deadline: a late commit means a stuck caller, counted.
- Release of a reservation no longer held answers False.
- Another tenant's reservation is NOT_FOUND, worded as one that does not exist.

A reservation not committed within its TTL expires: the sweeper releases it, and a
Commit or Release that finds it past its expiry treats it as expired at once, so the
outcome never depends on when the sweeper last ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ledger.charges import ChargeRow
from ledger.core import PricedUsage, ReserveInput, State, seconds_to_reset, state_of, used_ratio
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted

NO_RESERVATION = "no reservation with this id in this tenant"
"""One message for "not yours" and "does not exist": existence never leaks."""


@dataclass(frozen=True, slots=True)
class BudgetView:
    """A team's budget in one month, as it stands."""

    tenant_id: str
    team_id: str
    month: str
    """``YYYY-MM`` (UTC)."""
    limit: int
    spent: int
    reserved: int

    @property
    def state(self) -> State:
        """OK, SOFT_LIMIT or HARD_LIMIT (by spent)."""
        return state_of(self.limit, self.spent)

    @property
    def ratio(self) -> float:
        """Spent over limit."""
        return used_ratio(self.limit, self.spent)


@dataclass(frozen=True, slots=True)
class Reserved:
    """A held reservation (new, or the one a retry asked for)."""

    reservation_id: str
    expire_time: datetime
    budget: BudgetView
    replayed: bool


@dataclass(frozen=True, slots=True)
class Committed:
    """A committed reservation (now, or the first commit a retry asked for)."""

    charged: int
    overrun: int
    """Priced above the reservation and not charged (0 on a replay)."""
    budget: BudgetView
    replayed: bool
    crossed: State | None = None
    """The level this commit raised the budget to for the first time this month."""


class LedgerStore(Protocol):
    """Budgets, reservations and the journal of charges."""

    async def close(self) -> None:
        """Flush and release what the store holds."""

    async def reserve(self, ask: ReserveInput, *, now: datetime) -> Reserved:
        """Hold ``ask.estimate`` iff it fits the team's budget this month (see the module
        docstring for retries); ResourceExhausted (``BUDGET_EXHAUSTED``) otherwise."""

    async def commit(
        self, tenant_id: str, reservation_id: str, priced: PricedUsage, *, now: datetime
    ) -> Committed:
        """Charge ``min(priced, reserved)``, give the rest of the hold back, and write
        the charge's rows to the journal."""

    async def release(self, tenant_id: str, reservation_id: str, *, now: datetime) -> bool:
        """Give a held reservation back without charge; False if it was no longer held."""

    async def budget(self, tenant_id: str, team_id: str, *, now: datetime) -> BudgetView:
        """The team's budget this month (the default limit when none was set)."""

    async def set_budget(
        self, tenant_id: str, team_id: str, limit: int, *, now: datetime
    ) -> BudgetView:
        """Set the team's standing monthly limit; its budget this month afterwards."""

    async def expire(self, *, now: datetime) -> int:
        """Release every held reservation past its expiry; how many."""

    async def charges(
        self, since: datetime, until: datetime, tenant_id: str | None = None
    ) -> list[ChargeRow]:
        """The journal's rows committed in ``[since, until)``, oldest first."""


# -- errors both stores raise ---------------------------------------------------------------


def key_reused() -> InvalidArgument:
    """The error of a request id sent again with different arguments."""
    return InvalidArgument(
        "this request_id was used for a different reservation", reason="IDEMPOTENCY_KEY_REUSED"
    )


def not_found() -> NotFound:
    """The error of a reservation that is not the tenant's (or does not exist)."""
    return NotFound(NO_RESERVATION, reason="RESERVATION_NOT_FOUND")


def expired() -> FailedPrecondition:
    """The error of a commit after the reservation's expiry."""
    return FailedPrecondition(
        "the reservation expired before it was committed; reserve again",
        reason="RESERVATION_EXPIRED",
    )


def released() -> FailedPrecondition:
    """The error of a commit of a released reservation."""
    return FailedPrecondition("the reservation was released", reason="RESERVATION_RELEASED")


def exhausted(budget: BudgetView, estimate: int, *, now: datetime) -> ResourceExhausted:
    """BUDGET_EXHAUSTED, retryable when the month resets."""
    details: Mapping[str, str] = {
        "team_id": budget.team_id,
        "month": budget.month,
        "limit_micro_units": str(budget.limit),
        "spent_micro_units": str(budget.spent),
        "reserved_micro_units": str(budget.reserved),
        "estimate_micro_units": str(estimate),
    }
    return ResourceExhausted(
        "the team's monthly budget cannot hold this turn's worst-case cost",
        reason="BUDGET_EXHAUSTED",
        metadata=details,
        retry_after_s=seconds_to_reset(now),
    )
