"""What only the PostgreSQL store has: migrations, a pool, a database that can be away."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import sql

from orders.pg_store import MIGRATIONS, PostgresOrderStore
from orders.server import open_store
from orders.settings import OrdersSettings
from runtime.errors import Unavailable
from tests.support.postgres_server import PG_DSN, pg_schema  # noqa: F401

pytestmark = pytest.mark.postgres


async def test_replicas_starting_together_migrate_once(pg_schema: str) -> None:  # noqa: F811
    stores = await asyncio.gather(
        *(PostgresOrderStore.open(PG_DSN, schema=pg_schema, min_size=1) for _ in range(3))
    )
    try:
        assert [await s.migrate() for s in stores] == [[], [], []]  # all applied already
        async with await psycopg.AsyncConnection.connect(PG_DSN) as conn:
            cur = await conn.execute(
                sql.SQL("SELECT version FROM {} ORDER BY version").format(
                    sql.Identifier(pg_schema, "schema_migrations")
                )
            )
            assert [r[0] for r in await cur.fetchall()] == [v for v, _, _ in MIGRATIONS]
    finally:
        for store in stores:
            await store.close()


async def test_the_server_opens_postgres_when_given_a_dsn(
    pg_schema: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WAYBILL_ORDERS_PG_DSN", PG_DSN)
    monkeypatch.setenv("WAYBILL_ORDERS_PG_SCHEMA", pg_schema)
    store = await open_store(OrdersSettings.from_env())
    try:
        assert isinstance(store, PostgresOrderStore)
        assert await store.dataset_version() is None
    finally:
        await store.close()


async def test_a_database_nobody_answers_is_unavailable_not_a_crash() -> None:
    # Nothing listens on port 9 of loopback.
    with pytest.raises(Unavailable) as raised:
        await PostgresOrderStore.open(
            "postgresql://postgres@127.0.0.1:9/test",
            schema="orders_nowhere",
            min_size=1,
            wait_s=1.0,
        )
    assert raised.value.reason == "STORE_UNAVAILABLE"
    assert "127.0.0.1" not in raised.value.message
