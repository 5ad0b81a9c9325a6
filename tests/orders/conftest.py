"""The orders store contract runs against both stores: SQLite (embedded) and
PostgreSQL (the fleet; a fresh schema per test, and it must run on CI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from orders.sqlite_store import SqliteOrderStore
from orders.store import OrderStore
from tests.support.postgres_server import PG_DSN, fresh_schema

Opener = Callable[[], Awaitable[OrderStore]]
"""Opens another store on the same database (another replica, or a restart)."""


async def open_backend(backend: str, location: str) -> OrderStore:
    """A store of ``backend`` on ``location`` (a SQLite file, or a PostgreSQL schema)."""
    if backend == "sqlite":
        return SqliteOrderStore(location)
    from orders.pg_store import PostgresOrderStore

    return await PostgresOrderStore.open(PG_DSN, schema=location, min_size=1, max_size=4)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(backend, location) of an empty database for one test."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "orders.sqlite3")
        return
    async with fresh_schema() as schema:
        yield "postgres", schema


@pytest.fixture
async def opener(backend: tuple[str, str]) -> AsyncIterator[Opener]:
    """Opens stores on the test's database; all are closed after the test."""
    opened: list[OrderStore] = []

    async def open_store() -> OrderStore:
        store = await open_backend(*backend)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()
