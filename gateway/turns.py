"""What a finished turn does to the session state. Pure: the gateway applies it
once, and again onto the latest state when a concurrent turn wrote first.

A turn read the state at ``base`` and its worker answered ``result``. Applying it
to ``latest`` (``base`` itself unless another turn wrote in between) appends the
turn's exchange to the latest history and takes, field by field, what this turn
changed relative to ``base``; what it left alone keeps the latest value, so the
other turn's update is never lost.
"""

from __future__ import annotations

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from waybill.common.v1 import conversation_pb2, intent_pb2

State = conversation_pb2.ConversationState
_SCALARS = (str, bytes, int, float, bool)
_FIELDS = tuple(f.name for f in State.DESCRIPTOR.fields if f.name != "turns")


def exchange(
    customer_text: str,
    intent: intent_pb2.Intent,
    answer: str,
    at: timestamp_pb2.Timestamp,
) -> tuple[conversation_pb2.Turn, conversation_pb2.Turn]:
    """The customer's message and the answer, stamped with one time."""
    asked = conversation_pb2.Turn(
        role=conversation_pb2.ROLE_CUSTOMER, text=customer_text, intent=intent, create_time=at
    )
    answered = conversation_pb2.Turn(
        role=conversation_pb2.ROLE_ASSISTANT, text=answer, create_time=at
    )
    return asked, answered


def _value(state: State, name: str) -> object:
    value = getattr(state, name)
    if isinstance(value, Message):
        return value.SerializeToString(deterministic=True) if state.HasField(name) else None
    if isinstance(value, _SCALARS):
        return value
    return list(value)


def _copy_field(target: State, source: State, name: str) -> None:
    value = getattr(source, name)
    if isinstance(value, Message):
        if source.HasField(name):
            getattr(target, name).CopyFrom(value)
        else:
            target.ClearField(name)
    elif isinstance(value, _SCALARS):
        setattr(target, name, value)
    else:
        container = getattr(target, name)
        del container[:]
        container.extend(value)


def apply_turn(
    *,
    base: State,
    result: State,
    latest: State,
    turns: tuple[conversation_pb2.Turn, ...],
) -> State:
    """``latest`` with this turn's changes (relative to ``base``) and its exchange appended."""
    new = State()
    new.CopyFrom(latest)
    for name in _FIELDS:
        if _value(result, name) != _value(base, name):
            _copy_field(new, result, name)
    new.turns.extend(turns)
    return new


def previous_intent(state: State) -> intent_pb2.Intent:
    """The intent of the customer's last message, for follow-ups."""
    for turn in reversed(state.turns):
        if turn.role == conversation_pb2.ROLE_CUSTOMER:
            return turn.intent
    return intent_pb2.INTENT_UNSPECIFIED
