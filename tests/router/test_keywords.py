import pytest
from waybill.common.v1 import intent_pb2 as I

from router import keywords


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("where is my order?", I.INTENT_TRACKING_STATUS),
        ("when will my parcel arrive", I.INTENT_TRACKING_ETA),
        ("can I see the delivery photo", I.INTENT_TRACKING_DELIVERY_PHOTO),
        ("what is your return window", I.INTENT_POLICY_RETURN_WINDOW),
        ("it never arrived", I.INTENT_NEGOTIATION_DELIVERY_DISPUTE),
        ("I want a refund", I.INTENT_NEGOTIATION_REFUND_REQUEST),
        ("let me speak to a human", I.INTENT_HUMAN_HANDOFF),
    ],
)
def test_rules(text: str, intent: int) -> None:
    decision = keywords.classify(text)
    assert decision.intent == intent
    assert decision.worker == keywords.WORKER_OF[decision.intent]


def test_unmatched_is_low_confidence() -> None:
    decision = keywords.classify("hello there")
    assert decision.low_confidence
    assert decision.intent == I.INTENT_OTHER


def test_follow_up_keeps_previous_intent_only_for_references() -> None:
    assert (
        keywords.classify("and the other one?", I.INTENT_TRACKING_ETA).intent
        == I.INTENT_TRACKING_ETA
    )
    assert keywords.classify("hello", I.INTENT_TRACKING_ETA).low_confidence
