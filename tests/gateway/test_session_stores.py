"""One contract, two stores: the in-process store and Redis behave the same."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis
from waybill.common.v1 import conversation_pb2

from gateway.redis_sessions import RedisSessionStore
from gateway.sessions import InMemorySessionStore, SessionConflict, SessionRecord, SessionStore
from tests.gateway.clock import FakeClock
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


def _record(
    session_id: str = "session-aaaa1", *, tenant: str = "acme-retail", user: str = "acme-0001"
) -> SessionRecord:
    state = conversation_pb2.ConversationState(focus_awb="WB1111111111")
    return SessionRecord(tenant, user, session_id, state)


def _turns(n: int) -> list[conversation_pb2.Turn]:
    turns = []
    for i in range(n):
        role = conversation_pb2.ROLE_CUSTOMER if i % 2 == 0 else conversation_pb2.ROLE_ASSISTANT
        turns.append(conversation_pb2.Turn(role=role, text=f"message {i}"))
    return turns


async def test_roundtrip_keeps_owner_state_and_version(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60)
    record = _record()
    await store.put(record)
    assert record.version == 1
    got = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    assert got is not None
    assert got.user_id == "acme-0001"
    assert got.state.focus_awb == "WB1111111111"
    assert got.expires_at > time.time()
    assert got.version == 1
    assert await store.get("acme-retail", "acme-0001", "session-other") is None


async def test_another_tenant_or_customer_never_sees_the_session(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60)
    await store.put(_record())
    assert await store.get("globex-home", "acme-0001", "session-aaaa1") is None
    assert await store.get("acme-retail", "acme-0002", "session-aaaa1") is None
    # The same id for someone else is a separate session, not a conflict.
    theirs = _record(user="acme-0002")
    theirs.state.focus_awb = "WB2222222222"
    await store.put(theirs)
    await store.put(_record(tenant="globex-home"))
    mine = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    other = await store.get("acme-retail", "acme-0002", "session-aaaa1")
    assert mine is not None
    assert other is not None
    assert (mine.state.focus_awb, other.state.focus_awb) == ("WB1111111111", "WB2222222222")


async def test_history_is_trimmed_to_the_last_n_exchanges(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60, turns=3)
    record = _record()
    record.state.turns.extend(_turns(10))
    await store.put(record)
    got = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    assert got is not None
    assert [t.text for t in got.state.turns] == [f"message {i}" for i in range(4, 10)]


async def test_a_write_from_a_stale_version_conflicts(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60)
    await store.put(_record())
    first = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    second = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    assert first is not None
    assert second is not None
    first.state.focus_awb = "WB3333333333"
    await store.put(first)
    second.state.focus_awb = "WB4444444444"
    with pytest.raises(SessionConflict):
        await store.put(second)
    got = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    assert got is not None
    assert (got.state.focus_awb, got.version) == ("WB3333333333", 2)


async def test_two_creators_of_one_new_session_conflict(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60)
    await store.put(_record())
    with pytest.raises(SessionConflict):
        await store.put(_record())  # also read as "absent" (version 0)


async def test_many_concurrent_writers_lose_no_update(make_store: StoreFactory) -> None:
    store = make_store(ttl_s=60, turns=50)
    writers = 24
    conflicts = 0

    async def append(i: int) -> None:
        nonlocal conflicts
        while True:
            record = await store.get("acme-retail", "acme-0001", "session-busy1")
            if record is None:
                record = SessionRecord(
                    "acme-retail",
                    "acme-0001",
                    "session-busy1",
                    conversation_pb2.ConversationState(),
                )
            record.state.turns.append(
                conversation_pb2.Turn(role=conversation_pb2.ROLE_CUSTOMER, text=f"turn {i}")
            )
            await asyncio.sleep(0)  # let the other writers read the same version
            try:
                await store.put(record)
            except SessionConflict:
                conflicts += 1
                continue
            return

    await asyncio.gather(*(append(i) for i in range(writers)))
    got = await store.get("acme-retail", "acme-0001", "session-busy1")
    assert got is not None
    assert sorted(t.text for t in got.state.turns) == sorted(f"turn {i}" for i in range(writers))
    assert got.version == writers
    assert conflicts > 0  # the writers did overlap


async def test_memory_ttl_expires_and_every_write_slides_it() -> None:
    clock = FakeClock()
    store = InMemorySessionStore(ttl_s=10.0, clock=clock)
    await store.put(_record())
    clock.advance(6)
    again = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    assert again is not None
    await store.put(again)  # a new turn: the TTL starts over
    clock.advance(6)
    still = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    assert still is not None
    assert still.expires_at == clock.now + 4
    clock.advance(4)
    assert await store.get("acme-retail", "acme-0001", "session-aaaa1") is None
    # An expired session is absent: a writer from its old version conflicts.
    with pytest.raises(SessionConflict):
        await store.put(still)


async def test_redis_ttl_expires_and_every_write_slides_it(
    redis_client: tuple[redis.Redis, str],  # noqa: F811
) -> None:
    client, prefix = redis_client
    store = RedisSessionStore(client, prefix=prefix, ttl_s=1.5)
    record = _record()
    await store.put(record)
    key = store.key("acme-retail", "acme-0001", "session-aaaa1")
    give_up = time.monotonic() + 10
    while await client.pttl(key) > 1000:  # wait until a good part of the TTL has gone
        assert time.monotonic() < give_up
        await asyncio.sleep(0.02)
    again = await store.get("acme-retail", "acme-0001", "session-aaaa1")
    if again is None:
        pytest.fail("the session expired before the TTL ran out")
    await store.put(again)
    assert await client.pttl(key) > 1000  # slid back to the full TTL
    while await store.get("acme-retail", "acme-0001", "session-aaaa1") is not None:
        assert time.monotonic() < give_up, "the session never expired"
        await asyncio.sleep(0.05)


async def test_redis_keys_carry_the_tenant_and_customer(
    redis_client: tuple[redis.Redis, str],  # noqa: F811
) -> None:
    client, prefix = redis_client
    await RedisSessionStore(client, prefix=prefix, ttl_s=60).put(_record())
    keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}*")]
    assert keys == [f"{prefix}session:{{acme-retail}}:acme-0001:session-aaaa1"]
    ttl = await client.pttl(keys[0])
    assert 0 < ttl <= 60_000
