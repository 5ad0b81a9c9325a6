"""The embedded ledger store: state in memory, every change in an append-only journal.

An operation decides and changes the in-memory state in one step (no await in
between, so on one event loop the budget check and the hold are atomic) and appends the
change to the journal. A change that moves money (a commit, a release, an expiry, a
budget) is answered only once the journal has it on disk (group commit: see
``ledger.journal``), and a retry that finds its operation done waits for that too, so
such an answer is never given for a change a crash could still lose. A reservation is
answered as soon as it is applied and queued: a hold a crash loses frees its share of
the budget and its commit is refused, so the turn goes uncharged but the spend never
passes the limit (docs/ledger.md). At start the journal is replayed through the same
``_apply`` the live operations use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.charges import ChargeRow
from ledger.core import (
    PricedGeneration,
    PricedUsage,
    ReserveInput,
    State,
    Status,
    admits,
    cap,
    month_of,
    new_reservation_id,
    state_of,
)
from ledger.journal import Journal, JournalError, read
from ledger.store import (
    BudgetView,
    Committed,
    Reserved,
    exhausted,
    expired,
    key_reused,
    not_found,
    released,
)
from runtime.errors import Unavailable

JOURNAL_FILE = "journal.jsonl"

Key = tuple[str, str]
"""(tenant, team)."""


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


@dataclass(slots=True)
class _Reservation:
    reservation_id: str
    request_id: str
    tenant_id: str
    team_id: str
    user_id: str
    feature_id: str
    estimate: int
    month: str
    expires_us: int
    digest: str
    status: Status = Status.HELD
    charged: int = 0


@dataclass(slots=True)
class _Month:
    spent: int = 0
    reserved: int = 0
    alerted: int = 0
    """The highest state logged this month (0: none)."""


class EmbeddedLedgerStore:
    """A :class:`ledger.store.LedgerStore` in memory with a group-committed journal."""

    def __init__(
        self,
        directory: Path,
        *,
        default_limit: int,
        ttl_s: float,
        currency_code: str = "USD",
        fsync: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.currency_code = currency_code
        self.default_limit = default_limit
        self.ttl = timedelta(seconds=ttl_s)
        self._journal = Journal(self.directory / JOURNAL_FILE, fsync=fsync)
        self._limits: dict[Key, int] = {}
        self._months: dict[tuple[str, str, str], _Month] = {}
        self._by_id: dict[str, _Reservation] = {}
        self._by_request: dict[Key, _Reservation] = {}
        self._held: dict[str, _Reservation] = {}
        self._rows: list[ChargeRow] = []

    @classmethod
    async def open(
        cls,
        directory: Path,
        *,
        default_limit: int,
        ttl_s: float,
        currency_code: str = "USD",
        fsync: bool = True,
    ) -> EmbeddedLedgerStore:
        """Replay the journal in ``directory`` (created if missing) and start writing."""
        store = cls(
            directory,
            default_limit=default_limit,
            ttl_s=ttl_s,
            currency_code=currency_code,
            fsync=fsync,
        )
        for record in read(store._journal.path):
            store._apply(record)
        store._journal.start()
        return store

    @classmethod
    def snapshot(cls, directory: Path, *, currency_code: str = "USD") -> EmbeddedLedgerStore:
        """The state the journal in ``directory`` holds now, read without writing (beside a
        running ledger): for exports and reports; never start or write it."""
        store = cls(directory, default_limit=0, ttl_s=1.0, currency_code=currency_code)
        for record in read(store._journal.path, repair=False):
            store._apply(record)
        return store

    @property
    def journal(self) -> Journal:
        """The journal (its batch count shows the group commit at work)."""
        return self._journal

    async def close(self) -> None:
        await self._journal.close()

    # -- the operations -----------------------------------------------------------------

    async def reserve(self, ask: ReserveInput, *, now: datetime) -> Reserved:
        found = self._by_request.get((ask.tenant_id, ask.request_id))
        if found is not None:
            if found.digest != ask.digest():
                raise key_reused()
            return self._reserved(found, replayed=True)
        month = month_of(now)
        budget = self._view(ask.tenant_id, ask.team_id, month)
        if not admits(
            limit=budget.limit, spent=budget.spent, reserved=budget.reserved, estimate=ask.estimate
        ):
            raise exhausted(budget, ask.estimate, now=now)
        reservation_id = new_reservation_id()
        record: dict[str, Any] = {
            "op": "reserve",
            "id": reservation_id,
            "rq": ask.request_id,
            "t": ask.tenant_id,
            "tm": ask.team_id,
            "u": ask.user_id,
            "f": ask.feature_id,
            "e": ask.estimate,
            "m": month,
            "x": _us(now + self.ttl),
            "d": ask.digest(),
        }
        # A hold is answered once applied and queued, not after a flush: it moves no
        # money. It starts no flush of its own either (it goes with the next one, mostly
        # its own turn's commit's). Lost to a crash before that flush, it frees its share
        # of the budget, and its commit is refused (NOT_FOUND) for the turn to go
        # uncharged: the spend still never passes the limit. A commit always waits for the
        # disk, and a flushed commit means its reservation (an earlier line) is on disk too.
        self._write(record, urgent=False)
        return self._reserved(self._by_id[reservation_id], replayed=False)

    async def commit(
        self, tenant_id: str, reservation_id: str, priced: PricedUsage, *, now: datetime
    ) -> Committed:
        found = self._mine(tenant_id, reservation_id)
        if found.status is Status.HELD and _us(now) >= found.expires_us:
            self._write({"op": "expire", "id": found.reservation_id})
        if found.status is Status.COMMITTED:
            await self._synced()
            view = self._view(found.tenant_id, found.team_id, found.month)
            return Committed(charged=found.charged, overrun=0, budget=view, replayed=True)
        if found.status is Status.RELEASED:
            raise released()
        if found.status is Status.EXPIRED:
            raise expired()
        capped = cap(priced, found.estimate)
        month = self._months[(found.tenant_id, found.team_id, found.month)]
        limit = self._limit(found.tenant_id, found.team_id)
        level = state_of(limit, month.spent + capped.charged)
        crossed = level if level > State.OK and level > month.alerted else None
        self._write(
            {
                "op": "commit",
                "id": found.reservation_id,
                "c": capped.charged,
                "o": capped.overrun,
                "at": _us(now),
                "pv": priced.price_version,
                "g": [
                    [g.model, g.input_tokens, g.output_tokens, g.cost] for g in capped.generations
                ],
                **({"a": int(crossed)} if crossed is not None else {}),
            }
        )
        await self._synced()
        view = self._view(found.tenant_id, found.team_id, found.month)
        return Committed(
            charged=capped.charged,
            overrun=capped.overrun,
            budget=view,
            replayed=False,
            crossed=crossed,
        )

    async def release(self, tenant_id: str, reservation_id: str, *, now: datetime) -> bool:
        found = self._mine(tenant_id, reservation_id)
        if found.status is not Status.HELD:
            await self._synced()
            return False
        if _us(now) >= found.expires_us:
            self._write({"op": "expire", "id": found.reservation_id})
            await self._synced()
            return False
        self._write({"op": "release", "id": found.reservation_id})
        await self._synced()
        return True

    async def budget(self, tenant_id: str, team_id: str, *, now: datetime) -> BudgetView:
        return self._view(tenant_id, team_id, month_of(now))

    async def set_budget(
        self, tenant_id: str, team_id: str, limit: int, *, now: datetime
    ) -> BudgetView:
        self._write({"op": "budget", "t": tenant_id, "tm": team_id, "l": limit})
        await self._synced()
        return self._view(tenant_id, team_id, month_of(now))

    async def expire(self, *, now: datetime) -> int:
        cutoff = _us(now)
        due = [r for r in self._held.values() if r.expires_us <= cutoff]
        for reservation in due:
            self._write({"op": "expire", "id": reservation.reservation_id})
        if due:
            await self._synced()
        return len(due)

    async def charges(
        self, since: datetime, until: datetime, tenant_id: str | None = None
    ) -> list[ChargeRow]:
        return [
            row
            for row in self._rows
            if since <= row.time < until and (tenant_id is None or row.tenant_id == tenant_id)
        ]

    # -- state -------------------------------------------------------------------------

    async def _synced(self) -> None:
        try:
            await self._journal.synced()
        except JournalError as exc:
            raise Unavailable(
                "the ledger cannot write its journal", reason="STORE_UNAVAILABLE"
            ) from exc

    def _mine(self, tenant_id: str, reservation_id: str) -> _Reservation:
        found = self._by_id.get(reservation_id)
        if found is None or found.tenant_id != tenant_id:
            raise not_found()
        return found

    def _limit(self, tenant_id: str, team_id: str) -> int:
        return self._limits.get((tenant_id, team_id), self.default_limit)

    def _month(self, tenant_id: str, team_id: str, month: str) -> _Month:
        key = (tenant_id, team_id, month)
        found = self._months.get(key)
        if found is None:
            found = self._months[key] = _Month()
        return found

    def _view(self, tenant_id: str, team_id: str, month: str) -> BudgetView:
        m = self._months.get((tenant_id, team_id, month)) or _Month()
        return BudgetView(
            tenant_id=tenant_id,
            team_id=team_id,
            month=month,
            limit=self._limit(tenant_id, team_id),
            spent=m.spent,
            reserved=m.reserved,
        )

    def _reserved(self, r: _Reservation, *, replayed: bool) -> Reserved:
        return Reserved(
            reservation_id=r.reservation_id,
            expire_time=_at(r.expires_us),
            budget=self._view(r.tenant_id, r.team_id, r.month),
            replayed=replayed,
        )

    def _write(self, record: dict[str, Any], *, urgent: bool = True) -> None:
        """Apply ``record`` to the state and append it to the journal (the caller then
        awaits :meth:`_synced` before answering, unless it is not ``urgent``)."""
        try:
            self._journal.append(record, urgent=urgent)
        except JournalError as exc:
            raise Unavailable(
                "the ledger cannot write its journal", reason="STORE_UNAVAILABLE"
            ) from exc
        self._apply(record)

    def _apply(self, record: dict[str, Any]) -> None:
        """Change the state as ``record`` says (live and on replay alike)."""
        op = record["op"]
        if op == "budget":
            self._limits[(record["t"], record["tm"])] = record["l"]
            return
        if op == "reserve":
            r = _Reservation(
                reservation_id=record["id"],
                request_id=record["rq"],
                tenant_id=record["t"],
                team_id=record["tm"],
                user_id=record["u"],
                feature_id=record["f"],
                estimate=record["e"],
                month=record["m"],
                expires_us=record["x"],
                digest=record["d"],
            )
            self._by_id[r.reservation_id] = r
            self._by_request[(r.tenant_id, r.request_id)] = r
            self._held[r.reservation_id] = r
            self._month(r.tenant_id, r.team_id, r.month).reserved += r.estimate
            return
        r = self._by_id[record["id"]]
        if r.status is not Status.HELD:  # never written so; a replayed journal is trusted
            return
        del self._held[r.reservation_id]
        month = self._month(r.tenant_id, r.team_id, r.month)
        month.reserved -= r.estimate
        if op == "commit":
            r.status = Status.COMMITTED
            r.charged = record["c"]
            month.spent += r.charged
            month.alerted = max(month.alerted, record.get("a", 0))
            self._rows.extend(self._rows_of(r, record))
        elif op == "release":
            r.status = Status.RELEASED
        elif op == "expire":
            r.status = Status.EXPIRED
        else:
            raise JournalError(f"unknown journal record {op!r}")

    def _rows_of(self, r: _Reservation, record: dict[str, Any]) -> list[ChargeRow]:
        at = _at(record["at"])
        generations = [PricedGeneration(*g) for g in record["g"]]
        return [
            ChargeRow(
                time=at,
                request_id=r.request_id,
                reservation_id=r.reservation_id,
                tenant_id=r.tenant_id,
                team_id=r.team_id,
                user_id=r.user_id,
                feature_id=r.feature_id,
                model=g.model,
                first=i == 0,
                input_tokens=g.input_tokens,
                output_tokens=g.output_tokens,
                cost_micro_units=g.cost,
                currency_code=self.currency_code,
                price_version=record["pv"],
            )
            for i, g in enumerate(generations)
        ]
