"""The decision rules on synthetic scores: out of scope, threshold, previous intent."""

from __future__ import annotations

import numpy as np
import pytest

from router.calibration import Calibration
from router.clarify import GENERAL, WHICH_ORDER, question_for
from router.decision import Decision, PriorOptions, Reason, decide
from router.intents import FOLLOW_UP, I

CALIBRATION = Calibration(w_top=4.0, w_gap=10.0, bias=-3.0, threshold=0.6)
CLASSES = (
    FOLLOW_UP,
    I.INTENT_TRACKING_STATUS,
    I.INTENT_TRACKING_ETA,
    I.INTENT_NEGOTIATION_REFUND_REQUEST,
    I.INTENT_OTHER,
)


def _decide(
    scores: list[float], *, previous: int = I.INTENT_UNSPECIFIED, words: int = 3
) -> Decision:
    return decide(
        np.array(scores, dtype=np.float32),
        CLASSES,
        previous=previous,
        words=words,
        calibration=CALIBRATION,
        prior=PriorOptions(),
    )


def test_a_clear_served_intent_is_dispatched() -> None:
    d = _decide([0.1, 0.9, 0.5, 0.3, 0.2])
    assert d.intent == I.INTENT_TRACKING_STATUS
    assert d.worker == I.WORKER_TRACKING
    assert not d.low_confidence
    assert d.reason == Reason.NONE
    assert d.confidence == pytest.approx(CALIBRATION.confidence(0.9, 0.4), rel=1e-6)
    assert [i for i, _ in d.alternatives] == [
        I.INTENT_TRACKING_ETA,
        I.INTENT_NEGOTIATION_REFUND_REQUEST,
        I.INTENT_OTHER,
    ]
    assert all(c < d.confidence for _, c in d.alternatives)


def test_nearest_to_out_of_scope_is_low_confidence_without_a_worker() -> None:
    d = _decide([0.1, 0.3, 0.2, 0.2, 0.9])
    assert d.intent == I.INTENT_OTHER
    assert d.low_confidence
    assert d.reason == Reason.OUT_OF_SCOPE
    assert d.worker == I.WORKER_UNSPECIFIED


def test_a_close_call_is_below_the_threshold_and_keeps_its_best_guess() -> None:
    d = _decide([0.1, 0.55, 0.54, 0.2, 0.3])
    assert d.low_confidence
    assert d.reason == Reason.BELOW_THRESHOLD
    assert d.intent == I.INTENT_TRACKING_STATUS
    assert d.worker == I.WORKER_UNSPECIFIED


def test_a_follow_up_takes_the_previous_intent() -> None:
    d = _decide([0.9, 0.2, 0.2, 0.2, 0.3], previous=I.INTENT_NEGOTIATION_REFUND_REQUEST)
    assert d.intent == I.INTENT_NEGOTIATION_REFUND_REQUEST
    assert d.used_previous
    assert not d.low_confidence


def test_a_follow_up_without_a_previous_intent_needs_context() -> None:
    d = _decide([0.9, 0.2, 0.2, 0.2, 0.3])
    assert d.low_confidence
    assert d.reason == Reason.NEEDS_CONTEXT
    assert d.intent == I.INTENT_OTHER
    assert FOLLOW_UP not in [i for i, _ in d.alternatives]


def test_the_prior_tips_short_close_calls_but_not_long_messages() -> None:
    close = [0.1, 0.70, 0.72, 0.1, 0.2]
    assert _decide(close).intent == I.INTENT_TRACKING_ETA
    short = _decide(close, previous=I.INTENT_TRACKING_STATUS, words=3)
    assert short.intent == I.INTENT_TRACKING_STATUS
    assert short.used_previous
    long = _decide(close, previous=I.INTENT_TRACKING_STATUS, words=15)
    assert long.intent == I.INTENT_TRACKING_ETA
    assert not long.used_previous


def test_clear_evidence_beats_the_previous_intent() -> None:
    d = _decide([0.2, 0.3, 0.2, 0.9, 0.2], previous=I.INTENT_TRACKING_STATUS)
    assert d.intent == I.INTENT_NEGOTIATION_REFUND_REQUEST
    assert not d.used_previous


def test_out_of_scope_previous_gives_no_prior() -> None:
    d = _decide([0.9, 0.2, 0.2, 0.2, 0.3], previous=I.INTENT_OTHER)
    assert d.reason == Reason.NEEDS_CONTEXT


def test_prior_weight_falls_with_length() -> None:
    prior = PriorOptions(bonus=0.1, short_words=4, long_words=10)
    assert prior.weight(2) == 1.0
    assert prior.weight(7) == pytest.approx(0.5)
    assert prior.weight(10) == 0.0


def test_clarifying_questions() -> None:
    assert question_for(needs_context=True, candidates=(I.INTENT_OTHER,)) == WHICH_ORDER
    assert question_for(needs_context=False, candidates=(I.INTENT_OTHER,)) == GENERAL
    between = question_for(
        needs_context=False,
        candidates=(I.INTENT_TRACKING_ETA, I.INTENT_NEGOTIATION_DELIVERY_DISPUTE),
    )
    assert "when your shipment will arrive" in between
    assert "did not receive" in between
    served_then_other = question_for(
        needs_context=False, candidates=(I.INTENT_TRACKING_ETA, I.INTENT_OTHER)
    )
    assert served_then_other == GENERAL


def _decide_with(
    calibration: Calibration,
    scores: list[float],
    classes: tuple[int, ...],
    previous: int = I.INTENT_UNSPECIFIED,
) -> Decision:
    return decide(
        np.array(scores, dtype=np.float32),
        classes,
        previous=previous,
        words=4,
        calibration=calibration,
        prior=PriorOptions(),
    )


def test_the_similarity_floor_holds_unless_the_conversation_carries_the_intent() -> None:
    floored = Calibration(w_top=0.0, w_gap=0.0, bias=5.0, threshold=0.6, min_top=0.5)
    far = [0.1, 0.45, 0.2, 0.1, 0.1]
    alone = _decide_with(floored, far, CLASSES)
    assert alone.low_confidence
    assert alone.reason == Reason.BELOW_THRESHOLD
    # "what about the kettle?" after a tracking turn: far from every exemplar, but
    # the previous intent speaks for it.
    in_context = _decide_with(floored, far, CLASSES, previous=I.INTENT_TRACKING_STATUS)
    assert not in_context.low_confidence
    assert in_context.worker == I.WORKER_TRACKING


@pytest.mark.parametrize(
    ("rival", "margin", "dispatched"),
    [
        (I.INTENT_POLICY_REFUND, 0.02, False),  # a refund-policy question, nearly as close
        (I.INTENT_OTHER, 0.02, False),  # nearly out of scope
        (I.INTENT_POLICY_REFUND, 0.05, True),  # clearly a request
        (I.INTENT_TRACKING_STATUS, 0.02, True),  # tracking moves no money: no extra margin
    ],
)
def test_negotiation_needs_a_margin_over_policy_and_out_of_scope(
    rival: int, margin: float, dispatched: bool
) -> None:
    sure = Calibration(w_top=0.0, w_gap=0.0, bias=5.0, threshold=0.6, negotiation_margin=0.03)
    classes = (I.INTENT_NEGOTIATION_REFUND_REQUEST, rival)
    d = _decide_with(sure, [0.8, 0.8 - margin], classes)
    assert d.intent == I.INTENT_NEGOTIATION_REFUND_REQUEST
    assert d.low_confidence is not dispatched
    if not dispatched:
        assert d.reason == Reason.BELOW_THRESHOLD
