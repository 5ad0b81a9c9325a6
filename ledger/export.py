"""The ledger's journal of charges as Parquet, read from the store the ledger uses: the
embedded journal (read beside the running ledger, never written) or PostgreSQL.

``waybill costs --from-ledger`` calls this, then reports from the file it wrote;
``waybill report weekly --from-ledger`` also reads each team's monthly budget (``budgets``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from ledger.charges import ChargeRow
from ledger.embedded_store import EmbeddedLedgerStore
from ledger.reports import export_parquet
from ledger.settings import LedgerSettings
from ledger.store import LedgerStore
from runtime.progress import Progress

ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


@asynccontextmanager
async def _store(settings: LedgerSettings) -> AsyncIterator[LedgerStore]:
    """The ledger's store, read beside the running ledger (the embedded journal as a
    snapshot, with the ledger's default limit), closed after."""
    if settings.postgres_url:
        from ledger.pg_store import PostgresLedgerStore  # psycopg only for the fleet

        store = await PostgresLedgerStore.open(
            settings.postgres_url,
            schema=settings.pg_schema,
            max_size=2,
            default_limit=settings.default_budget_micros,
            ttl_s=settings.reservation_ttl_s,
            currency_code=settings.prices.currency_code,
        )
        try:
            yield store
        finally:
            await store.close()
        return
    snapshot = EmbeddedLedgerStore.snapshot(
        settings.directory, currency_code=settings.prices.currency_code
    )
    # A team without a budget of its own has the ledger's default one.
    snapshot.default_limit = settings.default_budget_micros
    yield snapshot


async def charges(settings: LedgerSettings) -> list[ChargeRow]:
    """Every charge the ledger's store holds."""
    since, until = ALL_TIME
    async with _store(settings) as store:
        return await store.charges(since, until)


async def budgets(
    settings: LedgerSettings, teams: Iterable[tuple[str, str]], *, now: datetime
) -> dict[tuple[str, str], int]:
    """The monthly limit of each (tenant, team) in the month of ``now`` (the default limit
    where the team has none of its own)."""
    async with _store(settings) as store:
        return {
            (tenant, team): (await store.budget(tenant, team, now=now)).limit
            for tenant, team in teams
        }


async def export(settings: LedgerSettings, out: Path, *, progress: Progress | None = None) -> int:
    """Write every charge to ``out`` (Parquet); the number of rows."""
    return export_parquet(await charges(settings), out, progress=progress)
