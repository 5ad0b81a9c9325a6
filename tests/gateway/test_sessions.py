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
