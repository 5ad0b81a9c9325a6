import time

import pytest
from waybill.common.v1 import conversation_pb2

from gateway.sessions import InMemorySessionStore, SessionRecord


async def test_put_get_roundtrip_scoped_by_tenant() -> None:
    store = InMemorySessionStore(ttl_s=60)
    state = conversation_pb2.ConversationState(focus_awb="WB1111111111")
    await store.put(SessionRecord("acme-retail", "acme-0001", "session-1", state))
    got = await store.get("acme-retail", "session-1")
    assert got is not None
    assert got.state.focus_awb == "WB1111111111"
    assert got.user_id == "acme-0001"
    assert await store.get("globex-home", "session-1") is None


async def test_ttl_expires_and_slides(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    store = InMemorySessionStore(ttl_s=10)
    record = SessionRecord(
        "acme-retail", "acme-0001", "session-1", conversation_pb2.ConversationState()
    )
    await store.put(record)
    now[0] += 8
    again = await store.get("acme-retail", "session-1")
    assert again is not None
    await store.put(again)  # a new turn slides the TTL
    now[0] += 8
    assert await store.get("acme-retail", "session-1") is not None
    now[0] += 11
    assert await store.get("acme-retail", "session-1") is None


async def test_capacity_evicts_least_recently_used() -> None:
    store = InMemorySessionStore(ttl_s=60, max_sessions=2)
    for sid in ("s-aaaaaaa1", "s-aaaaaaa2"):
        await store.put(SessionRecord("t", "u", sid, conversation_pb2.ConversationState()))
    first = await store.get("t", "s-aaaaaaa1")
    assert first is not None
    await store.put(first)
    await store.put(SessionRecord("t", "u", "s-aaaaaaa3", conversation_pb2.ConversationState()))
    assert await store.get("t", "s-aaaaaaa2") is None
    assert await store.get("t", "s-aaaaaaa1") is not None
