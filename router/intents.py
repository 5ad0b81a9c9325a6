"""The label space: intents, the worker of each, and the names data files use."""

from __future__ import annotations

from waybill.common.v1 import intent_pb2

I = intent_pb2  # noqa: E741 - short alias for the enum module

FOLLOW_UP = -1
"""Pseudo-label of referring follow-ups ("and the other one?"): they take the
previous turn's intent, and without one they need a clarifying question."""
FOLLOW_UP_NAME = "FOLLOW_UP"
OUT_OF_SCOPE = "out_of_scope"
"""Evaluation label: the message should land in the low-confidence bucket."""

WORKER_OF: dict[int, int] = {
    I.INTENT_TRACKING_STATUS: I.WORKER_TRACKING,
    I.INTENT_TRACKING_ETA: I.WORKER_TRACKING,
    I.INTENT_TRACKING_DELIVERY_PHOTO: I.WORKER_TRACKING,
    I.INTENT_POLICY_RETURN_WINDOW: I.WORKER_POLICY,
    I.INTENT_POLICY_REFUND: I.WORKER_POLICY,
    I.INTENT_POLICY_EXCHANGE: I.WORKER_POLICY,
    I.INTENT_POLICY_SHIPPING: I.WORKER_POLICY,
    I.INTENT_POLICY_CANCELLATION_FEE: I.WORKER_POLICY,
    I.INTENT_NEGOTIATION_REFUND_REQUEST: I.WORKER_NEGOTIATION,
    I.INTENT_NEGOTIATION_DELIVERY_DISPUTE: I.WORKER_NEGOTIATION,
    I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM: I.WORKER_NEGOTIATION,
    I.INTENT_NEGOTIATION_CANCELLATION: I.WORKER_NEGOTIATION,
    I.INTENT_HUMAN_HANDOFF: I.WORKER_HUMAN,
    I.INTENT_OTHER: I.WORKER_UNSPECIFIED,
}
"""Every classifiable intent and the worker that serves it (OTHER: none)."""

SERVED: frozenset[int] = frozenset(i for i, w in WORKER_OF.items() if w != I.WORKER_UNSPECIFIED)
"""Intents a worker (or a person) serves: the ones a turn may be dispatched to."""

WORKER_NAMES: dict[str, int] = {
    "tracking": I.WORKER_TRACKING,
    "policy": I.WORKER_POLICY,
    "negotiation": I.WORKER_NEGOTIATION,
    "human": I.WORKER_HUMAN,
}
"""Worker-level labels of evaluation data (scored by worker, not intent)."""

_NAME_OF_WORKER = {v: k for k, v in WORKER_NAMES.items()}


def intent_name(intent: int) -> str:
    """``INTENT_TRACKING_STATUS``; ``FOLLOW_UP`` for the pseudo-label."""
    if intent == FOLLOW_UP:
        return FOLLOW_UP_NAME
    return I.Intent.Name(intent)


def parse_intent(name: str) -> int:
    """The enum value of a classifiable intent name; ValueError names the valid ones."""
    try:
        value = int(I.Intent.Value(name))
    except ValueError:
        value = -2
    if value not in WORKER_OF:
        valid = ", ".join(intent_name(i) for i in WORKER_OF)
        raise ValueError(f"unknown intent {name!r} (valid: {valid})")
    return value


def worker_name(worker: int) -> str:
    """``tracking``, ``policy``, ``negotiation``, ``human``, or ``out_of_scope``."""
    return _NAME_OF_WORKER.get(worker, OUT_OF_SCOPE)


_CODES: dict[int, str] = {
    I.INTENT_TRACKING_STATUS: "trk_status",
    I.INTENT_TRACKING_ETA: "trk_eta",
    I.INTENT_TRACKING_DELIVERY_PHOTO: "trk_photo",
    I.INTENT_POLICY_RETURN_WINDOW: "pol_return",
    I.INTENT_POLICY_REFUND: "pol_refund",
    I.INTENT_POLICY_EXCHANGE: "pol_exchange",
    I.INTENT_POLICY_SHIPPING: "pol_shipping",
    I.INTENT_POLICY_CANCELLATION_FEE: "pol_cancel_fee",
    I.INTENT_NEGOTIATION_REFUND_REQUEST: "neg_refund",
    I.INTENT_NEGOTIATION_DELIVERY_DISPUTE: "neg_dispute",
    I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM: "neg_damaged",
    I.INTENT_NEGOTIATION_CANCELLATION: "neg_cancel",
    I.INTENT_HUMAN_HANDOFF: "human",
    I.INTENT_OTHER: "other",
}


def code(label: str) -> str:
    """A short code for an evaluation label (table columns): ``trk_eta``, ``policy``, ``oos``."""
    if label == OUT_OF_SCOPE:
        return "oos"
    if label in WORKER_NAMES:
        return label
    try:
        return _CODES[parse_intent(label)]
    except ValueError:
        return label


def short_name(intent: int) -> str:
    """``TRACKING_STATUS``: the enum name without its prefix, for tables."""
    return intent_name(intent).removeprefix("INTENT_")
