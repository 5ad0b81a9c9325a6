"""The real PostgreSQL the tests use: a fresh schema per test, dropped after.

PostgreSQL tests run whenever one answers at ``WAYBILL_TEST_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``), in CI or not. Only an
unreachable server changes that: outside CI the test skips with a message
saying so; in CI (``CI`` set to true/1/yes) a missing PostgreSQL is a
failure, never a silent skip. A server that answers but refuses us (auth, no
such database) is always a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

from tests.support.redis_server import in_ci

PG_DSN = os.environ.get("WAYBILL_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _unreachable(exc: BaseException) -> NoReturn:
    if in_ci():
        pytest.fail(f"no PostgreSQL at {PG_DSN} ({exc}): CI must run the PostgreSQL tests")
    pytest.skip(
        f"no PostgreSQL answers at {PG_DSN} ({type(exc).__name__}); start one or set "
        "WAYBILL_TEST_PG_DSN to run the PostgreSQL tests"
    )


def _refused(exc: psycopg.OperationalError) -> bool:
    """Whether the server answered and said no (as opposed to nobody answering)."""
    text = str(exc).lower()
    return any(
        word in text for word in ("authentication", "password", "does not exist", "permission")
    )


async def _connect() -> psycopg.AsyncConnection[tuple[object, ...]]:
    try:
        return await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if _refused(exc):
            raise
        _unreachable(exc)


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A schema name no other test uses; the schema is dropped after the test."""
    async with fresh_schema() as schema:
        yield schema


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A schema name no other test uses, dropped on exit (skips or fails as the module
    says when no PostgreSQL answers)."""
    admin = await _connect()
    schema = f"waybill_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        await admin.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        await admin.close()
