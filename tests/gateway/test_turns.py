"""Applying a finished turn to the session: once, or again onto a newer state."""

from __future__ import annotations

from google.protobuf import timestamp_pb2
from waybill.common.v1 import conversation_pb2, intent_pb2

from gateway import turns

State = conversation_pb2.ConversationState
AT = timestamp_pb2.Timestamp(seconds=1_800_000_000)


def _exchange(text: str) -> tuple[conversation_pb2.Turn, conversation_pb2.Turn]:
    return turns.exchange(text, intent_pb2.INTENT_TRACKING_STATUS, f"re: {text}", AT)


def test_without_a_concurrent_write_the_result_and_exchange_are_stored() -> None:
    base = State(focus_awb="WB1111111111")
    result = State(focus_awb="WB2222222222", focus_order_id="ORD-20260001")
    new = turns.apply_turn(base=base, result=result, latest=base, turns=_exchange("where?"))
    assert new.focus_awb == "WB2222222222"
    assert new.focus_order_id == "ORD-20260001"
    assert [(t.role, t.text) for t in new.turns] == [
        (conversation_pb2.ROLE_CUSTOMER, "where?"),
        (conversation_pb2.ROLE_ASSISTANT, "re: where?"),
    ]
    assert new.turns[0].create_time == AT


def test_a_concurrent_turns_changes_survive_a_reapply() -> None:
    base = State(focus_awb="WB1111111111")
    base.turns.extend(_exchange("first"))
    # Another turn wrote meanwhile: it set a pending action and appended its exchange.
    latest = State()
    latest.CopyFrom(base)
    latest.pending_action.action_id = "act_0123456789abcdef"
    latest.offered_order_ids.append("ORD-20260009")
    latest.turns.extend(_exchange("refund please"))
    # This turn only moved the focus.
    result = State()
    result.CopyFrom(base)
    result.focus_awb = "WB3333333333"
    new = turns.apply_turn(base=base, result=result, latest=latest, turns=_exchange("and now?"))
    assert new.focus_awb == "WB3333333333"
    assert new.pending_action.action_id == "act_0123456789abcdef"
    assert list(new.offered_order_ids) == ["ORD-20260009"]
    assert [t.text for t in new.turns if t.role == conversation_pb2.ROLE_CUSTOMER] == [
        "first",
        "refund please",
        "and now?",
    ]


def test_clearing_a_field_is_a_change_too() -> None:
    base = State(pending_action=conversation_pb2.PendingAction(action_id="act_0123456789abcdef"))
    result = State()  # the confirmation consumed the pending action
    latest = State()
    latest.CopyFrom(base)
    latest.focus_awb = "WB4444444444"
    new = turns.apply_turn(base=base, result=result, latest=latest, turns=())
    assert not new.HasField("pending_action")
    assert new.focus_awb == "WB4444444444"


def test_previous_intent_is_the_last_customer_turn() -> None:
    state = State()
    assert turns.previous_intent(state) == intent_pb2.INTENT_UNSPECIFIED
    state.turns.extend(_exchange("where?"))
    assert turns.previous_intent(state) == intent_pb2.INTENT_TRACKING_STATUS
