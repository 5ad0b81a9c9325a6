"""The clarifying question a low-confidence turn gets instead of a worker."""

from __future__ import annotations

from router.intents import I

GENERAL = (
    "I can help you track a shipment, explain our return, refund, exchange and shipping"
    " policies, or sort out a refund, a cancellation, a damaged item or a missing delivery."
    " What would you like to do?"
)
WHICH_ORDER = (
    "Which order do you mean? You can give me its tracking number (it starts with WB) or"
    " tell me what was in it."
)
_WANTS: dict[int, str] = {
    I.INTENT_TRACKING_STATUS: "check where your shipment is",
    I.INTENT_TRACKING_ETA: "know when your shipment will arrive",
    I.INTENT_TRACKING_DELIVERY_PHOTO: "see the delivery photo",
    I.INTENT_POLICY_RETURN_WINDOW: "know how long you have to return an item",
    I.INTENT_POLICY_REFUND: "know how refunds work",
    I.INTENT_POLICY_EXCHANGE: "know whether you can exchange an item",
    I.INTENT_POLICY_SHIPPING: "know our shipping options and costs",
    I.INTENT_POLICY_CANCELLATION_FEE: "know what cancelling an order costs",
    I.INTENT_NEGOTIATION_REFUND_REQUEST: "ask for a refund",
    I.INTENT_NEGOTIATION_DELIVERY_DISPUTE: "report a delivery you did not receive",
    I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM: "report a damaged or wrong item",
    I.INTENT_NEGOTIATION_CANCELLATION: "cancel an order",
    I.INTENT_HUMAN_HANDOFF: "talk to a person",
}


def between(first: int, second: int) -> str:
    """Ask which of two served intents the customer means."""
    return f"Just to be sure: do you want to {_WANTS[first]}, or to {_WANTS[second]}?"


def question_for(*, needs_context: bool, candidates: tuple[int, ...]) -> str:
    """The question for a low-confidence turn.

    Two plausible served intents: ask between them. A referring follow-up with
    nothing to refer to: ask which order. Anything else: say what we can do.
    """
    if needs_context:
        return WHICH_ORDER
    served = [c for c in candidates if c in _WANTS]
    if len(candidates) >= 2 and len(served) >= 2 and served[:2] == list(candidates[:2]):
        return between(served[0], served[1])
    return GENERAL
