"""The knowledge base's ingest screening, built from the guardrails' scorer and thresholds:
chunks at the flag threshold are left out, documents with a chunk at the quarantine
threshold are quarantined (``retrieval.ingest.Screening``).

The classifier is located at once (a missing one fails start-up) but loaded at the first
ingest: a writable replica that never ingests does not hold it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from embeddings import ModelMissingError
from guardrails.injection import InjectionModel, InjectionScorer, locate_model
from guardrails.settings import Thresholds
from retrieval.ingest import Screening
from runtime import paths


def ingest_screening(model_dir: Path | None = None, *, threads: int = 2) -> Screening:
    """The screening of an ingest (ModelMissingError when the classifier is not trained)."""
    try:
        located = locate_model(model_dir or paths.model_dir())
    except FileNotFoundError as exc:
        raise ModelMissingError(str(exc)) from None
    thresholds = Thresholds.from_env()
    loaded: list[InjectionScorer] = []
    lock = threading.Lock()

    def score(texts: Sequence[str]) -> list[float]:
        with lock:
            if not loaded:
                loaded.append(InjectionScorer(InjectionModel(located, threads=threads)))
        scorer = loaded[0]
        out: list[float] = []
        for i in range(0, len(texts), 32):
            out += [s.score for s in scorer.score_many(texts[i : i + 32])]
        return out

    return Screening(
        score=score, flag_at=thresholds.flag_retrieved, quarantine_at=thresholds.quarantine
    )
