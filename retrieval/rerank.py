"""The reranker: fused candidates reordered by what the fusion cannot see.

RRF knows ranks only. The reranker adds three signals a policy question cares
about: whether the chunk holds the exact codes the question names (and not just
a sibling: ``SKU-9942-A`` when ``SKU-9942-B`` was asked), how close its best
window is in meaning, and how specific the chunk is to the customer (a
region's own rule over the country's, a category's over the general one).
Whether it runs by default is decided by the evaluation (``waybill
eval-retrieval`` prints hybrid beside hybrid + rerank).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrieval.codes import codes_in

if TYPE_CHECKING:
    from retrieval.search import Result


@dataclass(frozen=True, slots=True)
class RerankWeights:
    """Weights of the reranker's signals (the fused score is scaled to 0..1)."""

    lexical: float = 0.25
    """BM25 score relative to the best BM25 score of the candidates."""
    code: float = 0.6
    """Share of the question's codes the chunk contains."""
    sibling: float = 0.4
    """Penalty for a chunk that names only a sibling of a code the question names."""
    dense: float = 2.0
    """Cosine of the chunk's best window."""
    specific: float = 0.0
    """Region and category specificity."""


def _stem(code: str) -> str:
    """``SKU-9942-B`` -> ``SKU-9942``: what two variants of one code share."""
    head, _, tail = code.rpartition("-")
    return head if head and len(tail) <= 2 else code


def rerank(
    results: Sequence[Result], *, text: str, weights: RerankWeights, rrf_k: int
) -> list[Result]:
    """Results in reranked order, with ``rerank_score`` set."""
    asked = codes_in(text)
    stems = {_stem(code) for code in asked}
    best_fused = 2.0 / (rrf_k + 1)
    best_lexical = max((r.lexical_score for r in results), default=0.0) or 1.0
    for result in results:
        chunk = result.chunk
        present = result.codes
        code_share = sum(code in present for code in asked) / len(asked) if asked else 0.0
        sibling = bool(asked) and code_share == 0.0 and any(_stem(c) in stems for c in present)
        specific = (0.5 if "-" in chunk.region else 0.25 if chunk.region else 0.0) + (
            0.5 if chunk.product_category else 0.0
        )
        result.rerank_score = (
            result.fused_score / best_fused
            + weights.lexical * result.lexical_score / best_lexical
            + weights.code * code_share
            - weights.sibling * sibling
            + weights.dense * result.dense_score
            + weights.specific * specific
        )
    return sorted(results, key=lambda r: -(r.rerank_score or 0.0))
