"""The knowledge base's ingest screening, built from the guardrails' scorer and thresholds:
chunks at the flag threshold are left out, documents with a chunk at the quarantine
threshold are quarantined (``retrieval.ingest.Screening``)."""

from __future__ import annotations

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
    scorer = InjectionScorer(InjectionModel(located, threads=threads))
    thresholds = Thresholds.from_env()

    def score(texts: Sequence[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(texts), 32):
            out += [s.score for s in scorer.score_many(texts[i : i + 32])]
        return out

    return Screening(
        score=score, flag_at=thresholds.flag_retrieved, quarantine_at=thresholds.quarantine
    )
