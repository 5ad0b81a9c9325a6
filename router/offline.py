"""Classification outside the server: for the evaluation command and calibration.

Same code path as serving (normalisation, embedding, faiss, scores, decision),
called directly in large batches. The index never contains a text that is
being scored: any exemplar equal to an evaluated row is left out of it, so the
held-out split of our own exemplars is scored against the other 80%.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from embeddings.encoder import Embedder
from router.calibration import Calibration
from router.classifier import Query, Snapshot, classify_with, snapshot_of
from router.datasets import Row
from router.decision import PriorOptions, Reason
from router.evaluation import Scored
from router.exemplars import Exemplar
from router.index import ExemplarIndex
from router.normalize import dedup_key
from router.vectors import vectors_for

CHUNK = 256


@dataclass(frozen=True, slots=True)
class Features:
    """Raw scores of one row (what the calibration is fitted on)."""

    intent: int
    served: bool
    top: float
    gap: float


def index_without(
    embedder: Embedder,
    exemplars: Sequence[Exemplar],
    rows: Sequence[Row],
    *,
    vectors_dir: Path | None = None,
) -> tuple[Snapshot, int]:
    """An index of ``exemplars`` minus any whose text is among ``rows``; (index, left out).

    With ``vectors_dir`` the vectors of the whole set come from there (built once),
    and the left-out rows are masked out of them.
    """
    scored = {dedup_key(r.text) for r in rows}
    keep = [dedup_key(e.text) not in scored for e in exemplars]
    kept = [e for e, k in zip(exemplars, keep, strict=True) if k]
    if vectors_dir is None:
        return snapshot_of(embedder, kept), len(exemplars) - len(kept)
    every = vectors_for(embedder, [e.text for e in exemplars], vectors_dir)
    labels = np.array([e.label for e in kept], dtype=np.int32)
    index = ExemplarIndex(every[np.array(keep, dtype=bool)], labels)
    snapshot = Snapshot.build(kept, index, model_version=embedder.version)
    return snapshot, len(exemplars) - len(kept)


def features(
    embedder: Embedder,
    snapshot: Snapshot,
    calibration: Calibration,
    texts: Sequence[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Features]:
    """Scores of ``texts`` without previous intents, in chunks."""
    found: list[Features] = []
    prior = PriorOptions()
    for start in range(0, len(texts), CHUNK):
        queries = [Query(t) for t in texts[start : start + CHUNK]]
        for outcome in classify_with(embedder, snapshot, calibration, queries, prior=prior):
            d = outcome.decision
            # Low-confidence at any threshold: out of scope, a bare follow-up, under the
            # similarity floor, or negotiation too close to another worker.
            held = d.low_confidence and d.confidence >= calibration.threshold
            served = d.reason not in (Reason.OUT_OF_SCOPE, Reason.NEEDS_CONTEXT) and not held
            found.append(Features(d.intent, served, d.top, d.gap))
        if progress is not None:
            progress(min(start + CHUNK, len(texts)), len(texts))
    return found


def score(
    embedder: Embedder,
    snapshot: Snapshot,
    calibration: Calibration,
    rows: Sequence[Row],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Scored]:
    """Rows with their classifications."""
    raw = features(embedder, snapshot, calibration, [r.text for r in rows], progress=progress)
    return [
        # Under the similarity floor a served guess is still low-confidence (decide()).
        Scored(
            row,
            f.intent,
            f.served and f.top >= calibration.min_top,
            calibration.confidence(f.top, f.gap),
        )
        for row, f in zip(rows, raw, strict=True)
    ]


def progress_printer(label: str, out: TextIO = sys.stderr) -> Callable[[int, int], None]:
    """A progress callback printing ``label: done/total`` on one updating line."""

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\r  {label}: {done}/{total}", end=end, file=out, flush=True)

    return show
