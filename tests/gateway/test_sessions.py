from waybill.common.v1 import conversation_pb2

from gateway.sessions import InMemorySessionStore, SessionRecord, trim


async def test_put_get_roundtrip_scoped_by_tenant_and_customer() -> None:
    store = InMemorySessionStore(ttl_s=60)
    state = conversation_pb2.ConversationState(focus_awb="WB1111111111")
    await store.put(SessionRecord("acme-retail", "acme-0001", "session-1", state))
    got = await store.get("acme-retail", "acme-0001", "session-1")
    assert got is not None
    assert got.state.focus_awb == "WB1111111111"
    assert await store.get("globex-home", "acme-0001", "session-1") is None
    assert await store.get("acme-retail", "acme-0002", "session-1") is None


async def test_the_least_recently_written_session_goes_when_full() -> None:
    store = InMemorySessionStore(ttl_s=60, max_sessions=2)
    for name in ("session-1", "session-2"):
        await store.put(
            SessionRecord("acme-retail", "acme-0001", name, conversation_pb2.ConversationState())
        )
    first = await store.get("acme-retail", "acme-0001", "session-1")
    assert first is not None
    await store.put(first)  # written again: now the most recent
    await store.put(
        SessionRecord("acme-retail", "acme-0001", "session-3", conversation_pb2.ConversationState())
    )
    assert await store.get("acme-retail", "acme-0001", "session-2") is None
    assert await store.get("acme-retail", "acme-0001", "session-1") is not None


def test_trim_keeps_whole_exchanges() -> None:
    state = conversation_pb2.ConversationState(
        turns=[conversation_pb2.Turn(text=str(i)) for i in range(7)]
    )
    trim(state, 2)
    assert [t.text for t in state.turns] == ["3", "4", "5", "6"]
