"""The ledger's journal of charges as Parquet, read from the store the ledger uses: the
embedded journal (read beside the running ledger, never written) or PostgreSQL.

``waybill costs --from-ledger`` calls this, then reports from the file it wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ledger.charges import ChargeRow
from ledger.embedded_store import EmbeddedLedgerStore
from ledger.reports import export_parquet
from ledger.settings import LedgerSettings

ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


async def charges(settings: LedgerSettings) -> list[ChargeRow]:
    """Every charge the ledger's store holds."""
    since, until = ALL_TIME
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
            return await store.charges(since, until)
        finally:
            await store.close()
    snapshot = EmbeddedLedgerStore.snapshot(
        settings.directory, currency_code=settings.prices.currency_code
    )
    return await snapshot.charges(since, until)


async def export(settings: LedgerSettings, out: Path) -> int:
    """Write every charge to ``out`` (Parquet); the number of rows."""
    return export_parquet(await charges(settings), out)
