"""Figures of an evaluation: accuracy per class, macro-F1, confusion matrix,
out-of-scope detection, and the threshold curve. Pure: scored rows in."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from router.datasets import GoldKind, Row
from router.intents import OUT_OF_SCOPE, WORKER_OF, I, intent_name, worker_name

CURVE_STEPS = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True, slots=True)
class Scored:
    """A row and what the classifier made of it."""

    row: Row
    intent: int
    """The best-guess intent."""
    served: bool
    """The best guess is an intent a worker serves (not out of scope, not a bare follow-up)."""
    confidence: float

    def low(self, threshold: float) -> bool:
        """Whether the row lands in the low-confidence bucket at ``threshold``."""
        return not self.served or self.confidence < threshold

    def predicted(self, threshold: float) -> str:
        """The predicted label at the row's scoring level."""
        if self.low(threshold):
            return OUT_OF_SCOPE
        if self.row.gold.kind == GoldKind.WORKER:
            return worker_name(WORKER_OF[self.intent])
        return intent_name(self.intent)


@dataclass(frozen=True, slots=True)
class ClassFigures:
    """Figures of one gold label."""

    label: str
    rows: int
    correct: int
    accuracy: float
    """Share of its rows predicted exactly (recall)."""
    precision: float | None
    f1: float


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Figures at one threshold."""

    threshold: float
    in_scope_accuracy: float | None
    in_scope_false_rejection: float | None
    oos_recall: float | None
    oos_precision: float | None


@dataclass(slots=True)
class Report:
    """Everything an evaluation reports."""

    threshold: float
    rows: int
    in_scope_rows: int
    oos_rows: int
    in_scope_accuracy: float | None
    """Correct and dispatched, over all in-scope rows (a rejected row counts as wrong)."""
    accepted_accuracy: float | None
    """Correct, over the in-scope rows that were dispatched."""
    in_scope_false_rejection: float | None
    """In-scope rows sent to the low-confidence bucket."""
    oos_precision: float | None
    """Low-confidence rows that are out of scope."""
    oos_recall: float | None
    """Out-of-scope rows sent to the low-confidence bucket."""
    oos_to_negotiation: float | None
    """Out-of-scope rows dispatched to the negotiation worker (must stay near 0)."""
    macro_f1: float | None
    """Mean F1 over the gold labels present (out_of_scope included when present)."""
    classes: list[ClassFigures] = field(default_factory=list)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    curve: list[CurvePoint] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _point(scored: Sequence[Scored], threshold: float) -> CurvePoint:
    inside = [s for s in scored if s.row.gold.in_scope]
    outside = [s for s in scored if not s.row.gold.in_scope]
    low = [s for s in scored if s.low(threshold)]
    return CurvePoint(
        threshold=threshold,
        in_scope_accuracy=_ratio(
            sum(s.predicted(threshold) == s.row.gold.key for s in inside), len(inside)
        ),
        in_scope_false_rejection=_ratio(sum(s.low(threshold) for s in inside), len(inside)),
        oos_recall=_ratio(sum(s.low(threshold) for s in outside), len(outside)),
        oos_precision=_ratio(sum(not s.row.gold.in_scope for s in low), len(low)),
    )


def curve(scored: Sequence[Scored], thresholds: Sequence[float] = CURVE_STEPS) -> list[CurvePoint]:
    """Threshold vs in-scope accuracy, false rejection, OOS recall and precision."""
    return [_point(scored, t) for t in thresholds]


def evaluate(scored: Sequence[Scored], threshold: float) -> Report:
    """The report at ``threshold``."""
    inside = [s for s in scored if s.row.gold.in_scope]
    outside = [s for s in scored if not s.row.gold.in_scope]
    accepted = [s for s in inside if not s.low(threshold)]
    point = _point(scored, threshold)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    predicted_count: Counter[str] = Counter()
    for s in scored:
        label = s.predicted(threshold)
        confusion[s.row.gold.key][label] += 1
        predicted_count[label] += 1
    classes = []
    for label in sorted(confusion, key=lambda k: (k == OUT_OF_SCOPE, k)):
        rows = sum(confusion[label].values())
        correct = confusion[label][label]
        precision = _ratio(correct, predicted_count[label])
        recall = correct / rows
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
        classes.append(ClassFigures(label, rows, correct, recall, precision, f1))
    negotiation = sum(
        not s.low(threshold) and WORKER_OF[s.intent] == I.WORKER_NEGOTIATION for s in outside
    )
    return Report(
        threshold=threshold,
        rows=len(scored),
        in_scope_rows=len(inside),
        oos_rows=len(outside),
        in_scope_accuracy=point.in_scope_accuracy,
        accepted_accuracy=_ratio(
            sum(s.predicted(threshold) == s.row.gold.key for s in accepted), len(accepted)
        ),
        in_scope_false_rejection=point.in_scope_false_rejection,
        oos_precision=point.oos_precision,
        oos_recall=point.oos_recall,
        oos_to_negotiation=_ratio(negotiation, len(outside)),
        macro_f1=sum(c.f1 for c in classes) / len(classes) if classes else None,
        classes=classes,
        confusion={k: dict(v) for k, v in confusion.items()},
        curve=curve(scored),
    )
