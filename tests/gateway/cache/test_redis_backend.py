"""The answer cache in the real Redis: shared by replicas, walled by tenant, expiring."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as redis

from gateway.cache.core import AnswerCache, Partition, UseCase
from gateway.cache.redis_backend import RedisBackend
from tests.gateway.cache.vectors import DIM, TableEmbedder, at_cosine, unit
from tests.support.redis_server import REDIS_URL, cleanup, connect, redis_client  # noqa: F401

QUESTION = "what is your return policy"
NEAR = "whats your return policy"
EMBED = TableEmbedder({QUESTION: unit(0), NEAR: at_cosine(0.99)})


def partition(tenant: str = "acme-retail") -> Partition:
    return Partition(tenant, "policy", "INTENT_POLICY_RETURN_WINDOW", "v1", ("region=US",))


def replica(client: redis.Redis, prefix: str, *, ttl_s: float = 60.0) -> AnswerCache:
    """One gateway replica's cache (its own local vector index) over the shared Redis."""
    return AnswerCache(
        RedisBackend(client, prefix=prefix, dim=DIM),
        {"policy": UseCase("policy", ttl_s=ttl_s)},
        embed=EMBED,
        model_id="test",
    )


async def remember(cache: AnswerCache, where: Partition, text: str, payload: bytes) -> None:
    lookup = await cache.lookup(where, text)
    assert not lookup.hit
    assert await cache.store(lookup, payload)


async def test_an_answer_kept_by_one_replica_is_found_by_another(
    redis_client: tuple[redis.Redis, str],  # noqa: F811
) -> None:
    client, prefix = redis_client
    first, second = replica(client, prefix), replica(client, prefix)
    await remember(first, partition(), QUESTION, b"answer")
    exact = await second.lookup(partition(), "What is your RETURN policy?")
    assert exact.found is not None
    assert exact.found.payload == b"answer"
    near = await second.lookup(partition(), NEAR)
    assert near.found is not None
    assert near.found.semantic
    assert near.found.payload == b"answer"
    # A later write is seen by the replica that already synced the partition.
    other = "how do refunds work"
    EMBED.table[other] = unit(3)
    await remember(first, partition(), other, b"refunds")
    EMBED.table["how do refunds work please"] = at_cosine(0.98, base=3, towards=4)
    late = await second.lookup(partition(), "how do refunds work please")
    assert late.found is not None
    assert late.found.payload == b"refunds"


async def test_the_same_question_from_two_tenants_never_shares_an_entry(
    redis_client: tuple[redis.Redis, str],  # noqa: F811
) -> None:
    client, prefix = redis_client
    cache = replica(client, prefix)
    await remember(cache, partition("acme-retail"), QUESTION, b"acme")
    assert not (await cache.lookup(partition("globex-home"), QUESTION)).hit
    assert not (await cache.lookup(partition("globex-home"), NEAR)).hit
    keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}*")]
    assert keys
    assert all(k.startswith(f"{prefix}cache:{{acme-retail}}:policy:") for k in keys)
    assert not any("return" in k for k in keys)  # no question text in keys


async def test_an_entry_is_gone_once_redis_expires_it(
    redis_client: tuple[redis.Redis, str],  # noqa: F811
) -> None:
    client, prefix = redis_client
    cache = replica(client, prefix, ttl_s=1.0)
    await remember(cache, partition(), QUESTION, b"answer")
    assert (await cache.lookup(partition(), NEAR)).hit  # the local index holds the vector
    keys = [k async for k in client.scan_iter(match=f"{prefix}*:e:*")]
    assert len(keys) == 1
    assert 0 < await client.pttl(keys[0]) <= 1000
    deadline = time.monotonic() + 10
    while await client.exists(keys[0]):
        assert time.monotonic() < deadline, "Redis did not expire the entry"
        await asyncio.sleep(0.05)
    assert not (await cache.lookup(partition(), QUESTION)).hit
    assert not (await cache.lookup(partition(), NEAR)).hit


async def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    client = redis.Redis.from_url(
        "redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    cache = replica(client, "waybill-test-unreachable:")
    lookup = await cache.lookup(partition(), QUESTION)
    assert not lookup.hit
    assert not await cache.store(lookup, b"answer")
    await client.aclose()


async def test_a_restarted_sequence_resets_the_local_index(
    redis_client: tuple[redis.Redis, str],  # noqa: F811
) -> None:
    client, prefix = redis_client
    writer, reader = replica(client, prefix), replica(client, prefix)
    await remember(writer, partition(), QUESTION, b"old")
    assert (await reader.lookup(partition(), NEAR)).hit
    # Redis lost everything (a restart without persistence), then one new answer came.
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    await client.delete(*keys)
    assert not (await reader.lookup(partition(), NEAR)).hit
    await remember(writer, partition(), QUESTION, b"new")
    found = await reader.lookup(partition(), NEAR)
    assert found.found is not None
    assert found.found.payload == b"new"
