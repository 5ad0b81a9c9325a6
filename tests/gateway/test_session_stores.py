"""One contract, two stores: the in-process store and Redis behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis
from waybill.common.v1 import conversation_pb2

from gateway.redis_sessions import RedisSessionStore
from gateway.sessions import InMemorySessionStore, SessionRecord, SessionStore
from tests.support.redis_server import cleanup, connect, redis_client  # noqa: F401

StoreFactory = Callable[..., SessionStore]


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Builds stores of one implementation with the given ttl/turns."""
    if request.param == "memory":
        yield InMemorySessionStore
        return
    client, prefix = await connect()
    yield lambda **options: RedisSessionStore(client, prefix=prefix, **options)
    await cleanup(client, prefix)


def _record(session_id: str = "session-aaaa1", *, tenant: str = "acme-retail") -> SessionRecord:
    state = conversation_pb2.ConversationState(focus_awb="WB1111111111")
    return SessionRecord(tenant, "acme-0001", session_id, state)


def _turns(n: int) -> list[conversation_pb2.Turn]:
    turns = []
    for i in range(n):
        role = conversation_pb2.ROLE_CUSTOMER if i % 2 == 0 else conversation_pb2.ROLE_ASSISTANT
        turns.append(conversation_pb2.Turn(role=role, text=f"message {i}"))
    return turns


async def test_roundtrip_keeps_owner_and_state(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60)
    await store.put(_record())
    got = await store.get("acme-retail", "session-aaaa1")
    assert got is not None
    assert got.user_id == "acme-0001"
    assert got.state.focus_awb == "WB1111111111"
    assert got.expires_at > 0
    assert await store.get("acme-retail", "session-other") is None


async def test_another_tenant_never_sees_the_session(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60)
    await store.put(_record())
    assert await store.get("globex-home", "session-aaaa1") is None
    await store.put(_record(tenant="globex-home"))
    mine = await store.get("acme-retail", "session-aaaa1")
    theirs = await store.get("globex-home", "session-aaaa1")
    assert mine is not None
    assert theirs is not None
    assert mine.tenant_id != theirs.tenant_id


async def test_history_is_trimmed_to_the_last_n_exchanges(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60, turns=3)
    record = _record()
    record.state.turns.extend(_turns(10))
    await store.put(record)
    got = await store.get("acme-retail", "session-aaaa1")
    assert got is not None
    assert [t.text for t in got.state.turns] == [f"message {i}" for i in range(4, 10)]


async def test_ttl_expires_and_every_write_slides_it(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=1.0)
    await store.put(_record())
    await asyncio.sleep(0.6)
    again = await store.get("acme-retail", "session-aaaa1")
    assert again is not None
    await store.put(again)  # a new turn: the TTL starts over
    await asyncio.sleep(0.6)
    assert await store.get("acme-retail", "session-aaaa1") is not None
    await asyncio.sleep(1.1)
    assert await store.get("acme-retail", "session-aaaa1") is None


async def test_redis_keys_carry_the_tenant(redis_client: tuple[redis.Redis, str]) -> None:  # noqa: F811
    client, prefix = redis_client
    await RedisSessionStore(client, prefix=prefix, ttl_s=60).put(_record())
    keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}*")]
    assert keys == [f"{prefix}session:{{acme-retail}}:session-aaaa1"]
    ttl = await client.pttl(keys[0])
    assert 0 < ttl <= 60_000
