"""KEYWORD PLACEHOLDER classifier.

A stand-in until the embedding classifier serves: it matches phrases and
reports ``METHOD_KEYWORD_PLACEHOLDER`` so nobody mistakes it for the real one.
It exists so the walking skeleton can route end to end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from waybill.common.v1 import intent_pb2

I = intent_pb2  # noqa: E741 - short alias for the enum module
VERSION = "keyword-placeholder-v1"
PLACEHOLDER_CONFIDENCE = 0.6
CLARIFY = (
    "I can help you track a shipment, explain our return and refund policies, or sort out "
    "a refund or delivery problem. What would you like to do?"
)

# Checked in order: the first rule that matches wins.
_RULES: tuple[tuple[intent_pb2.Intent, tuple[str, ...]], ...] = (
    (I.INTENT_HUMAN_HANDOFF, (r"\b(human|agent|representative|real person|speak to someone)\b",)),
    (
        I.INTENT_NEGOTIATION_DELIVERY_DISPUTE,
        (r"never (arrived|came|received)", r"not received", r"didn.?t (get|receive)"),
    ),
    (I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM, (r"\b(damaged|broken|wrong item|defective)\b",)),
    (I.INTENT_NEGOTIATION_CANCELLATION, (r"\bcancel",)),
    (
        I.INTENT_NEGOTIATION_REFUND_REQUEST,
        (r"\b(i want|give me|need|request).{0,20}refund", r"\brefund (me|my)\b", r"money back"),
    ),
    (
        I.INTENT_POLICY_RETURN_WINDOW,
        (r"return (window|period|policy)", r"how long .*return", r"\breturn\b"),
    ),
    (I.INTENT_POLICY_REFUND, (r"refund",)),
    (I.INTENT_POLICY_EXCHANGE, (r"\bexchange\b",)),
    (I.INTENT_POLICY_SHIPPING, (r"shipping (cost|option|polic|fee)", r"do you ship")),
    (I.INTENT_TRACKING_DELIVERY_PHOTO, (r"\b(photo|picture|proof of delivery)\b",)),
    (I.INTENT_TRACKING_ETA, (r"\b(when|eta|arrive|arrival|how long|delivery date)\b",)),
    (
        I.INTENT_TRACKING_STATUS,
        (r"\b(where|track|status|package|parcel|order|shipment)\b", r"(?i)\bwb[\s.\-]*\d"),
    ),
)
_COMPILED = tuple((intent, tuple(re.compile(p, re.I) for p in pats)) for intent, pats in _RULES)

WORKER_OF: dict[intent_pb2.Intent, intent_pb2.Worker] = {
    I.INTENT_TRACKING_STATUS: I.WORKER_TRACKING,
    I.INTENT_TRACKING_ETA: I.WORKER_TRACKING,
    I.INTENT_TRACKING_DELIVERY_PHOTO: I.WORKER_TRACKING,
    I.INTENT_POLICY_RETURN_WINDOW: I.WORKER_POLICY,
    I.INTENT_POLICY_REFUND: I.WORKER_POLICY,
    I.INTENT_POLICY_EXCHANGE: I.WORKER_POLICY,
    I.INTENT_POLICY_SHIPPING: I.WORKER_POLICY,
    I.INTENT_NEGOTIATION_REFUND_REQUEST: I.WORKER_NEGOTIATION,
    I.INTENT_NEGOTIATION_DELIVERY_DISPUTE: I.WORKER_NEGOTIATION,
    I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM: I.WORKER_NEGOTIATION,
    I.INTENT_NEGOTIATION_CANCELLATION: I.WORKER_NEGOTIATION,
    I.INTENT_HUMAN_HANDOFF: I.WORKER_HUMAN,
    I.INTENT_OTHER: I.WORKER_UNSPECIFIED,
}

# Short follow-ups ("and the other one?") keep the previous tracking intent.
_FOLLOW_UP = re.compile(
    r"^\W*(and|what about|how about)\b"
    r"|\b(other one|that one|this one|the (first|second|third|last)( one)?)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Decision:
    """A placeholder classification."""

    intent: intent_pb2.Intent
    confidence: float
    worker: intent_pb2.Worker
    low_confidence: bool


def classify(text: str, previous_intent: intent_pb2.Intent = I.INTENT_UNSPECIFIED) -> Decision:
    """First matching rule, or the previous intent for a short follow-up, or low confidence."""
    for intent, patterns in _COMPILED:
        if any(p.search(text) for p in patterns):
            return Decision(intent, PLACEHOLDER_CONFIDENCE, WORKER_OF[intent], False)
    if (
        previous_intent in WORKER_OF
        and previous_intent != I.INTENT_OTHER
        and _FOLLOW_UP.search(text)
    ):
        return Decision(previous_intent, PLACEHOLDER_CONFIDENCE, WORKER_OF[previous_intent], False)
    return Decision(I.INTENT_OTHER, 0.0, I.WORKER_UNSPECIFIED, True)
