"""The tracking worker's decisions: which read-only tools a turn calls, in what
order, what the answer says, and what the conversation remembers.

Pure (no I/O): the servicer asks :func:`next_step` what to do, performs the
read it names, and asks again with everything read so far, until the step is
an answer. A refusal of orders is a read like any other when the plan has an
answer for it (:func:`answers`: an unknown AWB, a lost parcel's missing ETA,
a delivery without a photo); any other failure ends the turn with its status.

At most two reads per turn: one for the intent, and a status read when a
photo cannot be shown, so the answer can say why.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from waybill.common.v1 import conversation_pb2, customer_pb2, intent_pb2
from waybill.orders.v1 import orders_pb2

from llm_pool.generation import AnswerPlan
from orders.core import NO_ARRIVAL
from runtime.pii import redact_for_prompt
from workers.tracking import facts
from workers.tracking.resolve import Target

MAX_TOOL_TURNS = 2
"""Reads one turn may make."""

STATUS = "tracking.status"
ETA = "tracking.eta"
PHOTO = "tracking.photo"
NO_PHOTO = "tracking.no_photo"
NO_ETA = "tracking.no_eta"
WHICH_ORDER = "tracking.which_order"
NOT_FOUND = "tracking.not_found"
NO_ORDERS = "tracking.no_orders"


SCREENED_FOR_INJECTION = ("title", "last_event", "last_location")
"""Free-text facts others wrote (a merchant, a carrier) that a model must not read unscreened
(``workers.tool_screen``); the photo reference is one the order system made."""

FREE_TEXT = frozenset({*SCREENED_FOR_INJECTION, "photo_ref"})
"""Facts the order system stores as free text (screened for PII here); every other fact
is a word this worker builds (a date, a status, an identifier, a fixed phrase)."""


@functools.lru_cache(maxsize=4096)
def _screened(text: str) -> str:
    """``text`` with PII replaced; titles and carrier texts recur from turn to turn (a
    digit such as "and 2 more" costs a full scan, ~25 us)."""
    return redact_for_prompt(text)


def _plan(template: str, values: dict[str, Any] | None = None) -> AnswerPlan:
    """An answer plan with its free-text facts screened, so the composer's answer needs no
    second PII scan (``AnswerPlan.screened``)."""
    screened = dict(values or {})
    for key in FREE_TEXT & screened.keys():
        screened[key] = _screened(screened[key])
    if "orders" in screened:  # the choices of a which-order question: titles and AWBs
        screened["orders"] = [_screened(o) for o in screened["orders"]]
    return AnswerPlan(template, screened, screened=True)


_NEUTRAL = {"title": "order", "last_event": "a carrier update", "last_location": "the carrier"}


def injectable(answer: AnswerPlan) -> list[str]:
    """The texts of ``answer`` to screen before a model reads its facts."""
    texts = [str(answer.facts[k]) for k in SCREENED_FOR_INJECTION if answer.facts.get(k)]
    return texts + [str(o) for o in answer.facts.get("orders", ())]


def withheld(answer: AnswerPlan, flagged: set[str]) -> AnswerPlan:
    """``answer`` with each flagged text replaced by neutral words (a which-order choice
    keeps its AWB, so the customer can still pick it)."""
    if not flagged:
        return answer
    facts = dict(answer.facts)
    for key in SCREENED_FOR_INJECTION:
        if facts.get(key) in flagged:
            facts[key] = _NEUTRAL[key]
    if "orders" in facts:
        facts["orders"] = [
            f"an order{o[o.rfind(' (') :]}" if o in flagged else o for o in facts["orders"]
        ]
    return AnswerPlan(answer.template, facts, screened=answer.screened)


class Tool(enum.Enum):
    """The reads the tracking worker may make; values are the tool names."""

    STATUS = "get_order_status"
    ETA = "get_eta"
    PHOTO = "get_delivery_photo"


@dataclass(frozen=True, slots=True)
class Refused:
    """A read orders refused for a reason the plan has an answer for."""

    code: grpc.StatusCode
    """The status orders answered with."""
    reason: str
    """Its ErrorInfo reason."""


Read = orders_pb2.Shipment | orders_pb2.Eta | orders_pb2.DeliveryPhoto | Refused
"""What a read gave: the record, or a refusal the plan answers."""

_UNKNOWN_AWB = (grpc.StatusCode.NOT_FOUND, "SHIPMENT_NOT_FOUND")
_NO_ETA_WHY = {"SHIPMENT_LOST": "reported lost", "SHIPMENT_RETURNED": "returned"}
_ANSWERED: dict[Tool, frozenset[tuple[grpc.StatusCode, str]]] = {
    Tool.STATUS: frozenset({_UNKNOWN_AWB}),
    Tool.ETA: frozenset(
        {_UNKNOWN_AWB, *((grpc.StatusCode.FAILED_PRECONDITION, r) for r in NO_ARRIVAL.values())}
    ),
    Tool.PHOTO: frozenset(
        {
            _UNKNOWN_AWB,
            (grpc.StatusCode.FAILED_PRECONDITION, "NOT_DELIVERED"),
            (grpc.StatusCode.FAILED_PRECONDITION, "NO_DELIVERY_PHOTO"),
        }
    ),
}
_FIRST: dict[int, Tool] = {
    intent_pb2.INTENT_TRACKING_ETA: Tool.ETA,
    intent_pb2.INTENT_TRACKING_DELIVERY_PHOTO: Tool.PHOTO,
}


@dataclass(frozen=True, slots=True)
class Turn:
    """What the plan decides from."""

    intent: int
    """The routed intent (status, ETA or delivery photo)."""
    target: Target
    """The shipment the message is about (or the choices to offer)."""
    title: str
    """How the customer knows the order ("Laptop stand"), or "shipment"."""


def turn_of(intent: int, target: Target, active: Sequence[customer_pb2.OrderBrief]) -> Turn:
    """The turn, with the title of the target among the customer's active orders."""
    title = next((o.title for o in active if o.awb == target.awb), "shipment")
    return Turn(intent=intent, target=target, title=title)


def answers(tool: Tool, code: grpc.StatusCode, reason: str) -> bool:
    """Whether a refusal of ``tool`` is a fact to answer with rather than an error."""
    return (code, reason) in _ANSWERED[tool]


def next_step(turn: Turn, done: Sequence[tuple[Tool, Read]]) -> Tool | AnswerPlan:
    """The next read to make, or the answer once enough is known."""
    target = turn.target
    if target.choices:
        return _plan(WHICH_ORDER, {"orders": [f"{o.title} ({o.awb})" for o in target.choices]})
    if not target.awb:
        if target.order_id:
            return _plan(NOT_FOUND, {"ref": f"for order {target.order_id}"})
        return _plan(NO_ORDERS)
    if not done:
        return _FIRST.get(turn.intent, Tool.STATUS)
    awb, title = target.awb, turn.title
    tool, read = done[-1]
    if isinstance(read, Refused) and (read.code, read.reason) == _UNKNOWN_AWB:
        return _plan(NOT_FOUND, {"ref": awb})
    if tool is Tool.ETA:
        if isinstance(read, Refused):
            return _plan(NO_ETA, {"awb": awb, "why": _NO_ETA_WHY[read.reason]})
        return _plan(ETA, facts.eta_facts(_as(read, orders_pb2.Eta), awb=awb, title=title))
    if tool is Tool.PHOTO:
        if isinstance(read, Refused):
            return Tool.STATUS  # to say why there is no photo
        photo = _as(read, orders_pb2.DeliveryPhoto)
        return _plan(PHOTO, facts.photo_facts(photo, awb=awb, title=title))
    shipment = _as(read, orders_pb2.Shipment)
    first_tool, first_read = done[0]
    if first_tool is Tool.PHOTO and isinstance(first_read, Refused):
        return _no_photo(first_read.reason, shipment, awb=awb, title=title)
    return _plan(STATUS, facts.status_facts(shipment, title))


def remember(
    state: conversation_pb2.ConversationState,
    target: Target,
    answer: AnswerPlan,
    *,
    tool_turns: int,
) -> conversation_pb2.ConversationState:
    """The conversation state after this turn (a new message; ``state`` is untouched).

    Choices offered are kept for "the second one"; a shipment that was found
    becomes the focus of follow-ups ("when will it arrive?").
    """
    new = conversation_pb2.ConversationState()
    new.CopyFrom(state)
    del new.offered_order_ids[:]
    if target.choices:
        new.offered_order_ids.extend(o.order_id for o in target.choices)
    elif target.awb and answer.template != NOT_FOUND:
        new.focus_awb = target.awb
        new.focus_order_id = target.order_id
        new.tracking.tool_turns = tool_turns
    return new


def _no_photo(reason: str, shipment: orders_pb2.Shipment, *, awb: str, title: str) -> AnswerPlan:
    if reason == "NOT_DELIVERED":
        text = facts.status_word(shipment).replace("_", " ")
        return _plan(
            NO_PHOTO, {"why": "not_delivered", "title": title, "awb": awb, "status_text": text}
        )
    return _plan(
        NO_PHOTO,
        {"why": "none", "title": title, "awb": awb, "when": facts.moment(shipment.delivered_time)},
    )


_R = TypeVar("_R", orders_pb2.Shipment, orders_pb2.Eta, orders_pb2.DeliveryPhoto)


def _as(read: Read, kind: type[_R]) -> _R:
    if not isinstance(read, kind):
        raise TypeError(f"expected a {kind.__name__} read, got {type(read).__name__}")
    return read
