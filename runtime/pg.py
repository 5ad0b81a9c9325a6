"""What the fleet's PostgreSQL stores share: a pooled connection that says UNAVAILABLE
(retryable, with a retry delay) when the database cannot answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from runtime.errors import Unavailable

Conn = psycopg.AsyncConnection[tuple[Any, ...]]


@asynccontextmanager
async def pooled(pool: AsyncConnectionPool[Any], *, store: str) -> AsyncIterator[Conn]:
    """A connection of ``pool``; a database that cannot answer is UNAVAILABLE
    (``STORE_UNAVAILABLE``), naming only ``store`` ("the ledger store")."""
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise Unavailable(
            f"{store} is unavailable", reason="STORE_UNAVAILABLE", retry_after_s=1.0
        ) from exc
