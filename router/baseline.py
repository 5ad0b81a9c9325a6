"""The naive nearest-neighbour baseline every router figure is reported against.

A router worth its complexity must beat what takes minutes to write: the same
sentence model, 40 random utterances per worker drawn from the DEV portion of
the Bitext file plus 160 of its out-of-scope rows as an ``other`` class, the
majority of the 5 nearest neighbours, and out of scope when the nearest is
under cosine 0.40. Seeded, so a run is reproducible; drawn from DEV only, so
the rows it is scored on are unseen by it as by the router.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.encoder import Embedder
from router.datasets import GoldKind, LabelMapping, Row, load_rows, mappings_dir
from router.evaluation import Scored
from router.index import ExemplarIndex
from router.intents import WORKER_NAMES, WORKER_OF, I
from router.split import Portion, Split
from router.vectors import embed_all

PER_WORKER = 40
OTHER_ROWS = 160
K = 5
MIN_COSINE = 0.40
SEED = 0
OTHER = -1
"""Label of the ``other`` class in the baseline's index."""
REPRESENTATIVE: dict[int, int] = {
    I.WORKER_TRACKING: I.INTENT_TRACKING_STATUS,
    I.WORKER_POLICY: I.INTENT_POLICY_REFUND,
    I.WORKER_NEGOTIATION: I.INTENT_NEGOTIATION_REFUND_REQUEST,
    I.WORKER_HUMAN: I.INTENT_HUMAN_HANDOFF,
}
"""An intent standing for each worker (the baseline decides workers, not intents)."""


def worker_of(row: Row) -> int:
    """The row's worker (WORKER_UNSPECIFIED out of scope)."""
    if row.gold.kind == GoldKind.OUT_OF_SCOPE:
        return int(I.WORKER_UNSPECIFIED)
    if row.gold.kind == GoldKind.WORKER:
        return row.gold.value
    return WORKER_OF[row.gold.value]


@dataclass(frozen=True, slots=True)
class Baseline:
    """The baseline's index: worker labels, ``OTHER`` for out of scope."""

    index: ExemplarIndex
    embedder: Embedder

    @classmethod
    def build(cls, embedder: Embedder, shared: Path, *, split: Split | None = None) -> Baseline:
        """Draw the baseline's exemplars from the DEV portion of the Bitext file."""
        split = split or Split.load()
        mapping = LabelMapping.load(mappings_dir() / "bitext.json")
        rows = load_rows(
            shared / "intents" / "bitext_8k_utterances.jsonl",
            mapping,
            split=split,
            portion=Portion.DEV,
        ).rows
        rng = random.Random(SEED)
        chosen: list[tuple[str, int]] = []
        for worker in WORKER_NAMES.values():
            pool = [r for r in rows if worker_of(r) == worker]
            chosen += [(r.text, worker) for r in rng.sample(pool, PER_WORKER)]
        others = [r for r in rows if worker_of(r) == I.WORKER_UNSPECIFIED]
        chosen += [(r.text, OTHER) for r in rng.sample(others, OTHER_ROWS)]
        vectors = embed_all(embedder, [t for t, _ in chosen])
        labels = np.array([label for _, label in chosen], dtype=np.int32)
        return cls(ExemplarIndex(vectors, labels), embedder)

    def score(self, rows: Sequence[Row]) -> list[Scored]:
        """The baseline's decision per row (confidence 1 dispatched, 0 out of scope)."""
        vectors = embed_all(self.embedder, [r.text for r in rows])
        sims, labels = self.index.search(vectors, K)
        scored = []
        for row, near_sims, near in zip(rows, sims, labels, strict=True):
            votes = Counter(int(v) for v in near)
            top = max(votes.values())
            # A tie goes to the tied label whose exemplar is nearest.
            winner = next(int(v) for v in near if votes[int(v)] == top)
            served = winner != OTHER and float(near_sims[0]) >= MIN_COSINE
            intent = REPRESENTATIVE.get(winner, I.INTENT_OTHER)
            scored.append(Scored(row, intent, served, 1.0 if served else 0.0))
        return scored
