"""Scoring retrieval and policy answers on a golden set.

Each golden row is a question of one tenant's customer (region, tier, product
category, a date) with the chunk ids that answer it, or none when the
knowledge base cannot. The policy worker's own steps run on it: the query
rewrite, the search (in every mode, for the ablation), the relevance gate, the
quote selection, the composer's template and the grounding check. Nothing here
is tuned on the rows it reports: the split puts half of the rows in DEV (for
fitting the gate and choosing the pipeline) and half in TEST.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path

from waybill.common.v1 import customer_pb2

from guardrails.grounding import check
from retrieval.chunking import Chunk
from retrieval.codes import codes_in
from retrieval.filters import Filter
from retrieval.retriever import Retriever
from retrieval.search import Mode, Result
from workers.policy.answer import Gate, Passage, Window, answer_plan, relevant, select
from workers.policy.query import PolicyQuery, Product, rewrite
from workers.policy.templates import TEMPLATES

CATEGORIES = (
    "exact_code",
    "paraphrase",
    "multi_hop",
    "region_tier",
    "cross_tenant",
    "unanswerable",
)
SPLIT_SALT = "waybill-golden-split-v1/"
TOP_K = 5
TIERS = {
    "standard": customer_pb2.CUSTOMER_TIER_STANDARD,
    "silver": customer_pb2.CUSTOMER_TIER_SILVER,
    "gold": customer_pb2.CUSTOMER_TIER_GOLD,
    "platinum": customer_pb2.CUSTOMER_TIER_PLATINUM,
}


@dataclass(frozen=True, slots=True)
class GoldenRow:
    """One golden question."""

    id: str
    tenant_id: str
    category: str
    question: str
    region: str
    product_category: str
    tier: str
    as_of: datetime
    expected: tuple[str, ...]
    answerable: bool
    answer_contains: tuple[str, ...]

    @property
    def portion(self) -> str:
        """``dev`` or ``test``: half of the rows each, by a hash of the id."""
        bucket = int(hashlib.sha256((SPLIT_SALT + self.id).encode()).hexdigest(), 16) % 100
        return "test" if bucket < 50 else "dev"


def load_golden(path: Path) -> list[GoldenRow]:
    """The golden rows of a JSONL file (ValueError names a bad line)."""
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            day = datetime.fromisoformat(r["as_of"]).date()
            rows.append(
                GoldenRow(
                    id=str(r["id"]),
                    tenant_id=r["tenant_id"],
                    category=r["category"],
                    question=r["question"],
                    region=r.get("region", ""),
                    product_category=r.get("product_category", ""),
                    tier=r.get("tier", "standard"),
                    # Noon of the day: a document effective that day is in force.
                    as_of=datetime.combine(day, time(12), tzinfo=UTC),
                    expected=tuple(r["expected_chunk_ids"]),
                    answerable=bool(r["answerable"]),
                    answer_contains=tuple(r.get("answer_contains", [])),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a golden row ({exc})") from None
    return rows


def query_of(row: GoldenRow) -> PolicyQuery:
    """The policy worker's rewrite of the row's question, for a customer like the row's."""
    context = customer_pb2.HydratedContext(
        tier=TIERS.get(row.tier, customer_pb2.CUSTOMER_TIER_STANDARD), region=row.region
    )
    sku = next((c for c in codes_in(row.question) if c.startswith("SKU-")), "")
    product = (
        Product(sku=sku, title="", category=row.product_category)
        if row.product_category or sku
        else None
    )
    return rewrite(row.question, context, product)


def _passage(result: Result | Chunk) -> Passage:
    chunk = result.chunk if isinstance(result, Result) else result
    return Passage(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        title=chunk.title,
        section=chunk.section,
        text=chunk.text,
        policy_version=chunk.policy_version,
        source_doc=chunk.source_doc,
        score=result.score if isinstance(result, Result) else 0.0,
        dense_score=result.dense_score if isinstance(result, Result) else 0.0,
        lexical_score=result.lexical_score if isinstance(result, Result) else 0.0,
    )


@dataclass(slots=True)
class RowOutcome:
    """How one row fared."""

    row: GoldenRow
    ranked: dict[str, list[str]] = field(default_factory=dict)
    """Chunk ids per mode, best first."""
    foreign: int = 0
    """Chunks of another tenant returned (must stay 0)."""
    answered: bool = False
    grounded: bool | None = None
    correct: bool | None = None
    answer: str = ""
    unsupported: tuple[str, ...] = ()
    query: PolicyQuery | None = None
    passages: list[Passage] = field(default_factory=list)
    """What the pipeline returned (the gate's input)."""
    window: bool = False
    """Whether the return-window tool answered (the gate is then skipped)."""


def run_rows(
    retriever: Retriever,
    rows: Iterable[GoldenRow],
    *,
    modes: Sequence[Mode],
    pipeline: Mode,
    gate: Gate,
) -> list[RowOutcome]:
    """Search every row in every mode, then answer it as the worker would with ``pipeline``."""
    outcomes = []
    for row in rows:
        query = query_of(row)
        where = Filter.of(
            region=query.region, product_category=query.product_category, at=row.as_of
        )
        vector = retriever.embed(query.text)
        outcome = RowOutcome(row)
        results: dict[Mode, list[Result]] = {}
        for mode in {*modes, pipeline}:
            found = retriever.search(
                tenant_id=row.tenant_id,
                text=query.text,
                where=where,
                mode=mode,
                top_k=10,
                vector=vector,
            ).results
            outcome.foreign += sum(r.chunk.tenant_id != row.tenant_id for r in found)
            results[mode] = found
            outcome.ranked[mode.value] = [r.chunk.chunk_id for r in found]
        passages = [_passage(r) for r in results[pipeline][:TOP_K]]
        window = _window(retriever, row, query)
        outcome.query, outcome.passages, outcome.window = query, passages, window is not None
        if window is None and not relevant(passages, query, gate):
            outcomes.append(outcome)
            continue
        outcome.answered = True
        evidence = select(passages, query, window=window)
        plan = answer_plan(evidence, query)
        outcome.answer = TEMPLATES[plan.template](plan.facts)
        cited = [f"{p.title}. {p.section}: {p.text}" for p in evidence.cited]
        verdict = check(outcome.answer, cited)
        outcome.grounded = verdict.grounded
        outcome.unsupported = verdict.unsupported
        lowered = outcome.answer.lower()
        outcome.correct = all(s.lower() in lowered for s in row.answer_contains)
        outcomes.append(outcome)
    return outcomes


def _window(retriever: Retriever, row: GoldenRow, query: PolicyQuery) -> Window | None:
    if not query.wants_window or query.product is None or not query.product.sku:
        return None
    _, found = retriever.return_window(
        tenant_id=row.tenant_id,
        sku=query.product.sku,
        tier=query.tier,
        region=query.region,
        product_category=query.product.category,
        at=row.as_of,
    )
    if found is None:
        return None
    return Window(
        returnable=found.returnable,
        days=found.days,
        base_days=found.base_days,
        tier_extra_days=found.tier_extra_days,
        sku_rule=found.sku_rule,
        passages=tuple(_passage(c) for c in found.chunks),
    )


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of a set of rows."""

    rows: int
    answerable: int
    recall_at_5: dict[str, float | None]
    mrr: dict[str, float | None]
    no_answer_precision: float | None
    no_answer_recall: float | None
    answered: int
    grounded_rate: float | None
    correct_rate: float | None
    foreign_chunks: int


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def figures(outcomes: Sequence[RowOutcome], modes: Sequence[Mode]) -> Figures:
    """Recall@5 and MRR per mode over answerable rows with expected chunks; no-answer
    precision and recall; grounded and correct answer rates."""
    scored = [o for o in outcomes if o.row.answerable and o.row.expected]
    recall: dict[str, float | None] = {}
    mrr: dict[str, float | None] = {}
    for mode in modes:
        r, m = [], []
        for o in scored:
            top = o.ranked[mode.value]
            expected = set(o.row.expected)
            r.append(len(expected & set(top[:TOP_K])) / len(expected))
            rank = next((i for i, c in enumerate(top, start=1) if c in expected), None)
            m.append(1.0 / rank if rank else 0.0)
        recall[mode.value] = _mean(r)
        mrr[mode.value] = _mean(m)
    said_none = [o for o in outcomes if not o.answered]
    truly_none = [o for o in outcomes if not o.row.answerable]
    hits = [o for o in said_none if not o.row.answerable]
    answered = [o for o in outcomes if o.answered and o.row.answerable]
    return Figures(
        rows=len(outcomes),
        answerable=len(scored),
        recall_at_5=recall,
        mrr=mrr,
        no_answer_precision=len(hits) / len(said_none) if said_none else None,
        no_answer_recall=len(hits) / len(truly_none) if truly_none else None,
        answered=len(answered),
        grounded_rate=_mean([1.0 if o.grounded else 0.0 for o in answered]),
        correct_rate=_mean([1.0 if o.correct else 0.0 for o in answered]),
        foreign_chunks=sum(o.foreign for o in outcomes),
    )


def fit_gate(
    outcomes: Sequence[RowOutcome], *, max_false_rejection: float, code_match: bool = True
) -> float:
    """The highest dense threshold at which at most ``max_false_rejection`` of the
    answerable rows are refused (the higher, the more unanswerable questions are
    refused). Fit on DEV outcomes only."""
    answerable = [o for o in outcomes if o.row.answerable and o.query is not None]
    best = 0.0
    for step in range(0, 101):
        threshold = step / 100
        gate = Gate(min_dense=threshold, code_match=code_match)
        refused = [
            o
            for o in answerable
            if not o.window and o.query is not None and not relevant(o.passages, o.query, gate)
        ]
        if answerable and len(refused) / len(answerable) <= max_false_rejection:
            best = threshold
    return best
