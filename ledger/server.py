"""Wiring of the ledger process: settings, the store, the servicer, the expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from ledger.embedded_store import EmbeddedLedgerStore
from ledger.service import SERVICE, LedgerServicer
from ledger.settings import LedgerSettings
from ledger.store import LedgerStore
from runtime.server import Registration, serve

log = logging.getLogger("waybill.ledger")


async def open_store(settings: LedgerSettings) -> LedgerStore:
    """PostgreSQL with a URL (the fleet), else the embedded journal."""
    if settings.postgres_url:
        from ledger.pg_store import PostgresLedgerStore  # psycopg only for the fleet

        return await PostgresLedgerStore.open(
            settings.postgres_url,
            schema=settings.pg_schema,
            max_size=settings.pg_pool,
            default_limit=settings.default_budget_micros,
            ttl_s=settings.reservation_ttl_s,
            currency_code=settings.prices.currency_code,
        )
    return await EmbeddedLedgerStore.open(
        settings.directory,
        default_limit=settings.default_budget_micros,
        ttl_s=settings.reservation_ttl_s,
        currency_code=settings.prices.currency_code,
    )


async def sweep_forever(servicer: LedgerServicer, interval_s: float) -> None:
    """Release expired reservations every ``interval_s`` until cancelled; a failed sweep
    (the database away) is logged and tried again at the next tick."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await servicer.sweep()
        except Exception:
            log.warning("sweeping expired reservations failed", exc_info=True)


async def main() -> None:
    """Open the store (replaying the journal), serve, sweep expired reservations."""
    settings = LedgerSettings.from_env()
    store = await open_store(settings)
    servicer = LedgerServicer(store, settings.prices)
    sweeper = asyncio.get_running_loop().create_task(
        sweep_forever(servicer, settings.sweep_interval_s), name="ledger-sweeper"
    )

    async def on_stop() -> None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await store.close()

    async def ready() -> None:
        log.info(
            "ledger store open",
            extra={"store": "postgres" if settings.postgres_url else "embedded"},
        )

    add = pb_grpc.add_LedgerServiceServicer_to_server
    await serve(
        settings.service, [Registration(SERVICE, add, servicer)], ready=ready, on_stop=on_stop
    )
