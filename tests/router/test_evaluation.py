"""Evaluation figures on hand-made scored rows."""

from __future__ import annotations

import pytest

from router.datasets import Row, parse_gold
from router.evaluation import Scored, curve, evaluate
from router.intents import I


def _row(label: str, i: int) -> Row:
    return Row(id=str(i), text=f"t{i}", gold=parse_gold(label), source_label=label)


def _scored() -> list[Scored]:
    eta, refund = I.INTENT_TRACKING_ETA, I.INTENT_NEGOTIATION_REFUND_REQUEST
    return [
        Scored(_row("INTENT_TRACKING_ETA", 0), eta, True, 0.9),  # right
        Scored(_row("INTENT_TRACKING_ETA", 1), I.INTENT_TRACKING_STATUS, True, 0.9),  # wrong intent
        Scored(_row("tracking", 2), I.INTENT_TRACKING_STATUS, True, 0.9),  # right worker
        Scored(_row("INTENT_NEGOTIATION_REFUND_REQUEST", 3), refund, True, 0.5),  # rejected
        Scored(_row("out_of_scope", 4), I.INTENT_OTHER, False, 0.9),  # caught
        Scored(_row("out_of_scope", 5), refund, True, 0.8),  # leaked to negotiation
    ]


def test_headline_figures() -> None:
    report = evaluate(_scored(), threshold=0.6)
    assert report.rows == 6
    assert report.in_scope_rows == 4
    assert report.in_scope_accuracy == pytest.approx(2 / 4)
    assert report.accepted_accuracy == pytest.approx(2 / 3)
    assert report.in_scope_false_rejection == pytest.approx(1 / 4)
    assert report.oos_recall == pytest.approx(1 / 2)
    assert report.oos_precision == pytest.approx(1 / 2)
    assert report.oos_to_negotiation == pytest.approx(1 / 2)


def test_per_label_figures_and_confusion() -> None:
    report = evaluate(_scored(), threshold=0.6)
    by_label = {c.label: c for c in report.classes}
    assert by_label["INTENT_TRACKING_ETA"].accuracy == pytest.approx(0.5)
    assert by_label["tracking"].accuracy == 1.0
    assert by_label["INTENT_NEGOTIATION_REFUND_REQUEST"].f1 == 0.0
    assert report.confusion["out_of_scope"] == {
        "out_of_scope": 1,
        "INTENT_NEGOTIATION_REFUND_REQUEST": 1,
    }
    assert report.macro_f1 == pytest.approx(sum(c.f1 for c in report.classes) / 4)


def test_the_curve_trades_recall_for_rejections() -> None:
    points = curve(_scored(), thresholds=(0.1, 0.85, 0.95))
    recalls = [p.oos_recall for p in points]
    rejections = [p.in_scope_false_rejection for p in points]
    assert recalls == [0.5, 1.0, 1.0]
    assert rejections == [0.0, 0.25, 1.0]


def test_no_out_of_scope_rows_gives_none_not_zero() -> None:
    report = evaluate(_scored()[:3], threshold=0.6)
    assert report.oos_recall is None
    assert report.oos_to_negotiation is None
