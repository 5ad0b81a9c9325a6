"""What a policy answer says: whether anything relevant was found, which sentences to
quote, and the plan the LLM pool renders. Pure functions: no I/O.

The composer answers by quoting: the sentences of the retrieved chunks that
share the most with the question (codes count most), with a citation marker
per chunk. A model backend gets the same chunks in its prompt and the same
facts. When the best chunk is not relevant enough (the gate, fitted on the DEV
half of the golden set), the answer says so and offers a person instead of
guessing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from llm_pool.generation import AnswerPlan
from retrieval.chunking import sentences
from retrieval.codes import codes_in
from retrieval.synonyms import expansions
from runtime.words import content_words
from workers.policy.query import PolicyQuery

_NUMERIC = re.compile(
    r"\b(how\s+(long|many|much)|when|deadline|late|days?|weeks?|months?|years?|fee|fees|cost"
    r"|costs|price|charge|pay|percent|%)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk as the worker uses it."""

    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str
    policy_version: str
    source_doc: str
    score: float = 0.0
    dense_score: float = 0.0
    lexical_score: float = 0.0


@dataclass(frozen=True, slots=True)
class Gate:
    """When retrieval counts as having found something."""

    min_dense: float = 0.35
    """The best chunk's cosine below which nothing counts as relevant..."""
    code_match: bool = True
    """...unless a code the question names is in it."""


@dataclass(frozen=True, slots=True)
class SelectOptions:
    """How quotes are chosen (fitted on the DEV golden questions' correct-answer rate)."""

    code_weight: float = 0.5
    """Score of each code the question names that a sentence contains."""
    number_bonus: float = 2.0
    """Score of a sentence with a figure when the question asks for one."""
    second_chunk: float = 0.5
    """A runner-up chunk is quoted when its best sentence scores this share of the best's."""
    second_sentence: float = 0.4
    """A second sentence of a chunk is quoted when it scores this share of the first."""
    max_sentences: int = 3
    """Sentences quoted per chunk."""
    max_chunks: int = 2
    """Chunks quoted."""


@dataclass(frozen=True, slots=True)
class Window:
    """A return window from the get_return_window tool."""

    returnable: bool
    days: int
    base_days: int
    tier_extra_days: int
    sku_rule: bool
    passages: tuple[Passage, ...]
    """The chunks that state the figures (the window's, then the tier's)."""


@dataclass(frozen=True, slots=True)
class Quote:
    """Sentences quoted from one chunk, and its citation number."""

    passage: Passage
    text: str
    marker: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the answer is built from."""

    quotes: tuple[Quote, ...]
    window: Window | None = None
    cited: tuple[Passage, ...] = field(default_factory=tuple)
    """Every chunk the answer cites, in marker order."""


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text)}


def relevant(passages: Sequence[Passage], query: PolicyQuery, gate: Gate) -> bool:
    """Whether the best passages answer anything of the question."""
    if not passages:
        return False
    asked = set(codes_in(query.text))
    if gate.code_match and asked:
        for passage in passages[:3]:
            if asked & set(codes_in(f"{passage.section} {passage.text}")):
                return True
    return max(p.dense_score for p in passages[:3]) >= gate.min_dense


def _scored_sentences(  # noqa: PLR0917 - a private step of select()
    passage: Passage,
    terms: set[str],
    codes: set[str],
    weights: dict[str, float],
    numeric: bool,
    options: SelectOptions,
) -> list[tuple[float, int, str]]:
    out = []
    for i, sentence in enumerate(sentences(passage.text)):
        words = _terms(sentence)
        score = sum(weights.get(t, 0.0) for t in words & terms)
        score += options.code_weight * len(codes & set(codes_in(sentence)))
        if numeric and re.search(r"\d", sentence):
            score += options.number_bonus
        out.append((score, i, sentence))
    return out


GAP = " … "
"""Between quoted sentences that are not next to each other in the chunk: a reader must
not take a sentence about one product for the continuation of one about another."""


def _join(picked: Sequence[tuple[int, str]]) -> str:
    out = ""
    previous = None
    for index, sentence in picked:
        if previous is not None:
            out += " " if index == previous + 1 else GAP
        out += sentence
        previous = index
    return out


def select(
    passages: Sequence[Passage],
    query: PolicyQuery,
    *,
    window: Window | None = None,
    options: SelectOptions | None = None,
) -> Evidence:
    """The sentences to quote: the best ones of the best chunk, and of the runner-up when it
    is nearly as good (a question that needs two rules: a window and a tier extension).
    The question's words count with the policy terms of its customer phrases."""
    opts = options or SelectOptions()
    terms = _terms(query.text) | _terms(" ".join(expansions(query.text)))
    codes = set(codes_in(query.text))
    numeric = bool(_NUMERIC.search(query.text))
    pool = list(passages[:4])
    # Rarer words weigh more: idf over the sentences of the retrieved chunks.
    all_sentences = [_terms(s) for p in pool for s in sentences(p.text)]
    n = max(1, len(all_sentences))
    weights = {t: math.log(1 + n / (1 + sum(t in s for s in all_sentences))) for t in terms}
    ranked = []
    for order, passage in enumerate(pool):
        scored = _scored_sentences(passage, terms, codes, weights, numeric, opts)
        best = max((s for s, _, _ in scored), default=0.0)
        ranked.append((order, passage, scored, best))
    quotes: list[Quote] = []
    cited: list[Passage] = []
    if window is not None:
        cited.extend(window.passages)
    top_best = ranked[0][3] if ranked else 0.0
    for order, passage, scored, best in ranked:
        if len(quotes) >= opts.max_chunks:
            break
        if order > 0 and (best <= 0 or best < opts.second_chunk * top_best):
            continue
        picked = sorted(scored, key=lambda t: (-t[0], t[1]))[: opts.max_sentences]
        keep = [picked[0]] + [
            p for p in picked[1:] if p[0] >= opts.second_sentence * picked[0][0] and p[0] > 0
        ]
        text = _join(sorted((i, s) for _, i, s in keep))
        known = [p.chunk_id for p in cited]
        if passage.chunk_id in known:
            marker = known.index(passage.chunk_id) + 1
        else:
            cited.append(passage)
            marker = len(cited)
        quotes.append(Quote(passage=passage, text=text, marker=marker))
    return Evidence(quotes=tuple(quotes), window=window, cited=tuple(cited))


def answer_plan(evidence: Evidence, query: PolicyQuery) -> AnswerPlan:
    """The plan of a grounded answer."""
    window = evidence.window
    facts: dict[str, object] = {
        "quotes": [
            {
                "marker": q.marker,
                "chunk_id": q.passage.chunk_id,
                "title": q.passage.title,
                "section": q.passage.section,
                "text": q.text,
            }
            for q in evidence.quotes
        ],
        "tier": query.tier,
    }
    if window is not None and query.product is not None:
        wanted = {p.chunk_id for p in window.passages}
        markers = [i + 1 for i, p in enumerate(evidence.cited) if p.chunk_id in wanted]
        facts["window"] = {
            "product": query.product.title or query.product.sku,
            "sku": query.product.sku,
            "returnable": window.returnable,
            "days": window.days,
            "base_days": window.base_days,
            "tier_extra_days": window.tier_extra_days,
            "markers": markers,
        }
    return AnswerPlan(template="policy.answer", facts=facts)


def not_found_plan(query: PolicyQuery) -> AnswerPlan:
    """The plan of "nothing in the policies answers this"."""
    return AnswerPlan(template="policy.not_found", facts={"region": query.region})
