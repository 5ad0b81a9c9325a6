"""Which shipment a tracking turn is about, from the message, the session and
the hydrated active orders. Pure functions: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from waybill.common.v1 import conversation_pb2, customer_pb2

from runtime.identifiers import find_awbs, find_order_ids

_WORD = re.compile(r"[a-z0-9]+")
_OTHER = re.compile(r"\b(other|another)\b", re.IGNORECASE)
_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1}
_STOP = {"and", "more", "the", "set", "with", "for", "my"}


@dataclass(frozen=True, slots=True)
class Target:
    """The outcome of resolution: a shipment, a question, or nothing to go on."""

    awb: str = ""
    """The shipment to look up, when resolved."""
    order_id: str = ""
    """Its order, when known."""
    choices: tuple[customer_pb2.OrderBrief, ...] = ()
    """Orders to ask the customer to choose from, when ambiguous."""
    how: str = ""
    """How it was resolved (for tests and traces): typed, title, other, ordinal, focus, only."""


def _title_words(title: str) -> set[str]:
    return {w for w in _WORD.findall(title.lower()) if len(w) >= 3 and w not in _STOP}


def resolve(
    message: str,
    state: conversation_pb2.ConversationState,
    active: Sequence[customer_pb2.OrderBrief],
) -> Target:
    """Decide which shipment the message is about."""
    typed = find_awbs(message)
    if typed:
        awb = typed[0]
        order = next((o.order_id for o in active if o.awb == awb), "")
        return Target(awb=awb, order_id=order, how="typed")
    for order_id in find_order_ids(message):
        for brief in active:
            if brief.order_id == order_id:
                return Target(awb=brief.awb, order_id=order_id, how="typed")
        return Target(order_id=order_id, how="typed")
    by_id = {o.order_id: o for o in active}
    lowered = message.lower()
    words = set(_WORD.findall(lowered))
    # A product named in the message ("what about the laptop stand?").
    scored = sorted(
        ((len(_title_words(o.title) & words), o) for o in active),
        key=lambda pair: -pair[0],
    )
    if scored and scored[0][0] > 0 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        best = scored[0][1]
        return Target(awb=best.awb, order_id=best.order_id, how="title")
    offered = [by_id[i] for i in state.offered_order_ids if i in by_id]
    # "the second one", "the last one" refer to the list we offered.
    for word, index in _ORDINALS.items():
        if re.search(rf"\b{word}\b", lowered) and offered and -len(offered) <= index < len(offered):
            pick = offered[index]
            return Target(awb=pick.awb, order_id=pick.order_id, how="ordinal")
    # "and the other one?" - the order that is not in focus.
    if _OTHER.search(lowered) and state.focus_awb:
        pool = offered or list(active)
        others = [o for o in pool if o.awb != state.focus_awb]
        if len(others) == 1:
            return Target(awb=others[0].awb, order_id=others[0].order_id, how="other")
        if others:
            return Target(choices=tuple(others), how="other")
    if state.focus_awb:
        return Target(awb=state.focus_awb, order_id=state.focus_order_id, how="focus")
    if len(active) == 1:
        return Target(awb=active[0].awb, order_id=active[0].order_id, how="only")
    if active:
        return Target(choices=tuple(active), how="ambiguous")
    return Target(how="none")
