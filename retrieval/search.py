"""One search over a loaded version: BM25 and dense lists, RRF, optional reranking.

Both stages see only the tenant's chunks that pass the filter (each index
applies it inside its own search), each returns up to ``candidates`` chunks,
and reciprocal rank fusion merges the two lists. Per-stage scores and ranks
travel with every result, so a caller (and the evaluation) can see why a chunk
ranked where it did.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from embeddings.pooling import FloatArray
from retrieval.chunking import Chunk
from retrieval.filters import Filter
from retrieval.fusion import RRF_K, rrf
from retrieval.lexical import LexicalOptions
from retrieval.rerank import RerankWeights, rerank
from retrieval.version import LoadedVersion


class Mode(enum.Enum):
    """Which stages run."""

    LEXICAL = "lexical"
    DENSE = "dense"
    HYBRID = "hybrid"
    HYBRID_RERANK = "hybrid+rerank"

    @property
    def needs_vector(self) -> bool:
        """Whether the query must be embedded."""
        return self is not Mode.LEXICAL


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """How searches run."""

    candidates: int = 50
    """Chunks each stage contributes to fusion."""
    rrf_k: int = RRF_K
    """Reciprocal rank fusion constant."""
    default_mode: Mode = Mode.HYBRID
    """The pipeline a request without a mode gets."""
    lexical: LexicalOptions = field(default_factory=LexicalOptions)
    """BM25 field weights."""
    rerank: RerankWeights = field(default_factory=RerankWeights)
    """Reranker weights."""


@dataclass(slots=True)
class Result:
    """A chunk and how it scored in each stage."""

    row: int
    chunk: Chunk
    lexical_score: float = 0.0
    lexical_rank: int = 0
    dense_score: float = 0.0
    dense_rank: int = 0
    fused_score: float = 0.0
    rerank_score: float | None = None
    codes: frozenset[str] = frozenset()
    """Codes the chunk names (for the reranker)."""

    @property
    def score(self) -> float:
        """The score the results are ordered by."""
        if self.rerank_score is not None:
            return self.rerank_score
        if self.fused_score:
            return self.fused_score
        return self.lexical_score if self.lexical_rank else self.dense_score


def search(
    version: LoadedVersion,
    *,
    tenant_id: str,
    text: str,
    vector: FloatArray | Callable[[], FloatArray] | None,
    where: Filter,
    mode: Mode,
    top_k: int,
    options: SearchOptions | None = None,
) -> list[Result]:
    """The ``top_k`` best chunks of one tenant for ``text``. ``vector`` is the query's
    vector, or a function returning it (called once, after the BM25 stage: a vector
    computed on another thread meanwhile)."""
    opts = options or SearchOptions()
    results: dict[int, Result] = {}
    lexical_order: list[int] = []
    dense_order: list[int] = []
    if mode is not Mode.DENSE:
        for hit in version.lexical.search(
            tenant_id, text, where, limit=opts.candidates, options=opts.lexical
        ):
            row = version.row_of.get(hit.uid)
            if row is None:  # cannot happen in a consistent version; never guess
                continue
            found = results.setdefault(row, Result(row, version.chunk(row)))
            found.lexical_score, found.lexical_rank = hit.score, hit.rank
            lexical_order.append(row)
    if mode is not Mode.LEXICAL:
        if vector is None:
            raise ValueError(f"a {mode.value} search needs the query vector")
        if callable(vector):
            # Embedding ran beside the BM25 stage; its result is needed from here on.
            vector = vector()
        allowed = version.allowed(tenant_id, where)
        for dense_hit in version.dense.search(
            tenant_id, vector, allowed=allowed, limit=opts.candidates
        ):
            found = results.setdefault(
                dense_hit.row, Result(dense_hit.row, version.chunk(dense_hit.row))
            )
            found.dense_score, found.dense_rank = dense_hit.score, dense_hit.rank
            dense_order.append(dense_hit.row)
    if mode in (Mode.LEXICAL, Mode.DENSE):
        order = lexical_order if mode is Mode.LEXICAL else dense_order
        return [results[row] for row in order[:top_k]]
    fused = rrf([lexical_order, dense_order], k=opts.rrf_k)
    ranked = []
    for row, score in fused:
        found = results[row]
        found.fused_score = score
        if not found.dense_rank and vector is not None and not callable(vector):
            # Outside the dense list, but its closeness still tells the reranker something.
            found.dense_score = version.similarity(row, vector)
        ranked.append(found)
    if mode is Mode.HYBRID_RERANK:
        for found in ranked:
            found.codes = version.codes[found.row]
        ranked = rerank(ranked, text=text, weights=opts.rerank, rrf_k=opts.rrf_k)
    return ranked[:top_k]
