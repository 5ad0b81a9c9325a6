"""The real Redis the tests use: a unique key prefix per test, cleaned up after.

Redis tests run whenever a Redis answers at ``WAYBILL_TEST_REDIS_URL`` (default
127.0.0.1:6379), in CI or not. Only an unreachable server changes that: outside
CI the test skips with a message saying so; in CI (``CI`` set to true/1/yes) a
missing Redis is a failure, never a silent skip. A Redis that answers but
refuses us (auth, wrong db) is always a failure: it is there, so it must work.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import NoReturn

import pytest
import redis as redis_sync
import redis.asyncio as redis

REDIS_URL = os.environ.get("WAYBILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# What "nobody answers" looks like; anything else from Redis is a real failure.
_UNREACHABLE = (redis_sync.ConnectionError, redis_sync.TimeoutError, OSError)


def in_ci() -> bool:
    """Whether the run is CI, where every Redis test must run."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _unreachable(exc: BaseException) -> NoReturn:
    if in_ci():
        pytest.fail(f"no Redis at {REDIS_URL} ({exc}): CI must run the Redis tests")
    pytest.skip(
        f"no Redis answers at {REDIS_URL} ({type(exc).__name__}); start one or set "
        "WAYBILL_TEST_REDIS_URL to run the Redis tests"
    )


def _prefix() -> str:
    return f"waybill-test-{uuid.uuid4().hex[:12]}:"


async def connect() -> tuple[redis.Redis, str]:
    """A client on the test Redis and a fresh key prefix (skips or fails when unreachable)."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        await client.ping()
    except _UNREACHABLE as exc:
        await client.aclose()
        _unreachable(exc)
    return client, _prefix()


async def cleanup(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` and close the client."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def redis_client() -> AsyncIterator[tuple[redis.Redis, str]]:
    """A client on the test Redis and a fresh key prefix; keys under it are deleted after."""
    client, prefix = await connect()
    yield client, prefix
    await cleanup(client, prefix)


def sync_prefix_or_skip() -> tuple[redis_sync.Redis, str]:
    """The synchronous twin of ``connect`` for module-scoped (non-async) fixtures."""
    client = redis_sync.Redis.from_url(REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        client.ping()
    except _UNREACHABLE as exc:
        client.close()
        _unreachable(exc)
    return client, _prefix()
