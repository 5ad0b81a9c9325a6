"""Scoring the guardrails on labelled data.

PII is scored per entity type at the token level (whitespace tokens), the way
presidio-research's evaluator does: a gold token counts as found when a predicted
span of the same type covers it. Identifiers listed by a row (AWBs, order ids, SKUs)
must survive redaction untouched: any that does not is counted.
Injection is scored as true- and false-positive rates over thresholds (a ROC curve),
at the configured block threshold, and as the over-defence rate: benign texts full of
trigger words that would be blocked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from guardrails.datasets import LabelledText, PiiText
from runtime.pii import Span

_TOKEN = re.compile(r"\S+")
ENTITY_ALIASES = {"ADDRESS": "STREET_ADDRESS"}
"""Presidio's data labels whole addresses ADDRESS; ours are street and postcode parts."""


@dataclass(frozen=True, slots=True)
class EntityScore:
    """Token-level counts of one entity type."""

    entity: str
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        """tp / (tp + fp), None when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """tp / (tp + fn), None when nothing was labelled."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)


@dataclass(frozen=True, slots=True)
class PiiReport:
    """PII scores of one data set."""

    name: str
    rows: int
    entities: tuple[EntityScore, ...]
    identifiers: int
    identifiers_redacted: tuple[str, ...]
    ms_per_row: float = 0.0


def _label(entity: str) -> str:
    return ENTITY_ALIASES.get(entity, entity)


def _tokens(
    text: str, spans: Iterable[tuple[str, int, int]], merge: dict[str, str]
) -> dict[tuple[int, int], str]:
    out: dict[tuple[int, int], str] = {}
    listed = list(spans)
    for match in _TOKEN.finditer(text):
        for entity, start, end in listed:
            if match.start() < end and start < match.end():
                out[match.span()] = merge.get(entity, entity)
    return out


def score_pii(
    name: str,
    rows: Sequence[PiiText],
    analyze: Callable[[str], list[Span]],
    redact: Callable[[str], str],
    *,
    merge: dict[str, str] | None = None,
) -> PiiReport:
    """Per-type token scores of ``analyze`` on ``rows``, and the identifiers ``redact``
    damaged. ``merge`` maps predicted types onto the data's (POSTCODE -> STREET_ADDRESS
    for data that labels whole addresses)."""
    import time

    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    damaged: list[str] = []
    identifiers = 0
    started = time.perf_counter()
    predicted_merge = merge or {}
    for row in rows:
        gold = _tokens(row.text, ((_label(s.entity_type), s.start, s.end) for s in row.spans), {})
        spans = analyze(row.text)
        got = _tokens(row.text, ((s.entity, s.start, s.end) for s in spans), predicted_merge)
        for token in gold.keys() | got.keys():
            g, p = gold.get(token), got.get(token)
            if g is not None and g == p:
                tp[g] += 1
                continue
            if g is not None:
                fn[g] += 1
            if p is not None:
                fp[p] += 1
        if row.identifiers:
            redacted = redact(row.text)
            identifiers += len(row.identifiers)
            damaged += [i for i in row.identifiers if i not in redacted]
    elapsed = time.perf_counter() - started
    entities = tuple(
        EntityScore(e, tp[e], fp[e], fn[e]) for e in sorted(set(tp) | set(fp) | set(fn))
    )
    return PiiReport(
        name,
        len(rows),
        entities,
        identifiers,
        tuple(damaged),
        ms_per_row=1000 * elapsed / max(1, len(rows)),
    )


@dataclass(frozen=True, slots=True)
class InjectionReport:
    """Injection scores of one data set."""

    name: str
    positives: int
    negatives: int
    threshold: float
    tpr: float | None
    fpr: float | None
    roc: tuple[tuple[float, float], ...]
    """(FPR, TPR) points, threshold descending."""
    auc: float
    over_defence: float | None = None
    """Share of benign trigger-word texts at or above the threshold."""
    trigger_texts: int = 0
    misses: tuple[str, ...] = field(default=())
    false_alarms: tuple[str, ...] = field(default=())


def roc_points(scores: Sequence[float], labels: Sequence[int]) -> list[tuple[float, float]]:
    """The ROC curve as (FPR, TPR) points from (0, 0) to (1, 1)."""
    pos = sum(labels)
    neg = len(labels) - pos
    pairs = sorted(zip(scores, labels, strict=True), key=lambda x: -x[0])
    points = [(0.0, 0.0)]
    tp = fp = 0
    i = 0
    while i < len(pairs):
        score = pairs[i][0]
        while i < len(pairs) and pairs[i][0] == score:
            tp += pairs[i][1]
            fp += 1 - pairs[i][1]
            i += 1
        points.append((fp / neg if neg else 0.0, tp / pos if pos else 0.0))
    return points


def auc(points: Sequence[tuple[float, float]]) -> float:
    """Area under a ROC curve (trapezoids)."""
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points))


def tpr_at_fpr(scores: Sequence[float], labels: Sequence[int], max_fpr: float) -> float:
    """The best true-positive rate any threshold reaches with FPR <= ``max_fpr`` (an oracle
    figure: the threshold is picked on the data it is reported on; for context only)."""
    best = 0.0
    for fpr, tpr in roc_points(scores, labels):
        if fpr <= max_fpr:
            best = max(best, tpr)
    return best


def score_injection(
    name: str,
    rows: Sequence[LabelledText],
    scores: Sequence[float],
    threshold: float,
) -> InjectionReport:
    """TPR/FPR at ``threshold``, the ROC curve, and over-defence on trigger-word texts."""
    labels = [r.label for r in rows]
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    triggers = [
        s for s, r in zip(scores, rows, strict=True) if r.label == 0 and r.kind == "benign_trigger"
    ]
    points = roc_points(scores, labels) if pos and neg else []
    return InjectionReport(
        name=name,
        positives=len(pos),
        negatives=len(neg),
        threshold=threshold,
        tpr=sum(s >= threshold for s in pos) / len(pos) if pos else None,
        fpr=sum(s >= threshold for s in neg) / len(neg) if neg else None,
        roc=tuple(points),
        auc=auc(points) if points else 0.0,
        over_defence=sum(s >= threshold for s in triggers) / len(triggers) if triggers else None,
        trigger_texts=len(triggers),
        misses=tuple(
            r.text for r, s in zip(rows, scores, strict=True) if r.label == 1 and s < threshold
        ),
        false_alarms=tuple(
            r.text for r, s in zip(rows, scores, strict=True) if r.label == 0 and s >= threshold
        ),
    )
