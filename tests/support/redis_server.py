"""The real Redis the tests use: a unique key prefix per test, cleaned up after.

Outside CI, tests skip with a clear message when no Redis answers; in CI
(``CI=true``) a missing Redis is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis as redis_sync
import redis.asyncio as redis

REDIS_URL = os.environ.get("WAYBILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _reachable(client: redis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except (redis.ConnectionError, OSError):
        return False


async def connect() -> tuple[redis.Redis, str]:
    """A client on the test Redis and a fresh key prefix (skips or fails when unreachable)."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
    if not await _reachable(client):
        await client.aclose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no Redis at {REDIS_URL}: CI must run the Redis tests")
        pytest.skip(f"no Redis at {REDIS_URL} (set WAYBILL_TEST_REDIS_URL); skipping")
    return client, f"waybill-test-{uuid.uuid4().hex[:12]}:"


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
    except (redis_sync.ConnectionError, OSError):
        client.close()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no Redis at {REDIS_URL}: CI must run the Redis tests")
        pytest.skip(f"no Redis at {REDIS_URL} (set WAYBILL_TEST_REDIS_URL); skipping")
    return client, f"waybill-test-{uuid.uuid4().hex[:12]}:"
