"""BM25 over chunks with tantivy: a stemmed text field, a field of whole codes, and
exact metadata fields that filter inside the index before anything is ranked.

The tenant filter is part of every query (there is no way to build one without
it). Empty region and category values are indexed as ``ANY`` so a filter can ask
for "this region, its country, or everywhere" with one term set.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import tantivy
from tantivy import FieldType, Occur, Query

from retrieval.chunking import Chunk
from retrieval.codes import TANTIVY_PATTERN
from retrieval.filters import Filter
from retrieval.synonyms import expansions

ANY = "ANY"
"""Indexed value of an empty region or category (applies to all)."""
NEVER = 2**62
"""Indexed expiry of an open-ended chunk."""
TEXT_ANALYZER = "waybill_en"
CODE_ANALYZER = "waybill_codes"
WRITER_HEAP = 32_000_000


def _analyzers() -> tuple[tantivy.TextAnalyzer, tantivy.TextAnalyzer]:
    text = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )
    codes = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(TANTIVY_PATTERN))
        .filter(tantivy.Filter.lowercase())
        .build()
    )
    return text, codes


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("uid", stored=True, tokenizer_name="raw")
    builder.add_text_field("tenant", tokenizer_name="raw")
    builder.add_text_field("region", tokenizer_name="raw")
    builder.add_text_field("category", tokenizer_name="raw")
    builder.add_text_field("version", tokenizer_name="raw")
    builder.add_integer_field("effective", indexed=True, fast=True)
    builder.add_integer_field("expires", indexed=True, fast=True)
    builder.add_text_field("body", tokenizer_name=TEXT_ANALYZER)
    builder.add_text_field("heading", tokenizer_name=TEXT_ANALYZER)
    builder.add_text_field("codes", tokenizer_name=CODE_ANALYZER)
    return builder.build()


@dataclass(frozen=True, slots=True)
class LexicalOptions:
    """Field weights of the BM25 query."""

    heading_boost: float = 1.5
    """Weight of a term found in the title or section heading."""
    code_boost: float = 4.0
    """Weight of a whole code found in the code field."""
    expansion_boost: float = 1.0
    """Weight of a policy term added for a customer phrase (``retrieval.synonyms``)."""


@dataclass(frozen=True, slots=True)
class LexicalHit:
    """One BM25 result."""

    uid: str
    score: float
    rank: int


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


class LexicalIndex:
    """One tantivy index directory (read-only once published)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, path=str(path), reuse=True)
        self._text, self._codes = _analyzers()
        # Analyzers are not stored in the index: register them after every open.
        self._index.register_tokenizer(TEXT_ANALYZER, self._text)
        self._index.register_tokenizer(CODE_ANALYZER, self._codes)

    @classmethod
    def create(cls, path: Path, *, base: Path | None = None) -> LexicalIndex:
        """A new index at ``path``: empty, or a copy of ``base`` to update."""
        if base is not None:
            shutil.copytree(base, path)
        else:
            path.mkdir(parents=True)
        return cls(path)

    def update(self, *, remove: Iterable[str], add: Sequence[Chunk]) -> None:
        """Delete chunks by uid, add new ones, commit and merge."""
        writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
        for uid in remove:
            writer.delete_documents_by_term("uid", uid)
        for chunk in add:
            writer.add_document(
                tantivy.Document(
                    uid=chunk.uid,
                    tenant=chunk.tenant_id,
                    region=chunk.region or ANY,
                    category=chunk.product_category or ANY,
                    version=chunk.policy_version,
                    effective=_seconds(chunk.effective),
                    expires=_seconds(chunk.expires) if chunk.expires else NEVER,
                    body=f"{chunk.heading}\n{chunk.text}",
                    heading=chunk.heading,
                    codes=f"{chunk.heading}\n{chunk.text}",
                )
            )
        writer.commit()
        writer.wait_merging_threads()
        self._index.reload()

    def count(self) -> int:
        """Documents in the index."""
        return int(self._index.searcher().num_docs)

    def _filters(self, tenant_id: str, where: Filter) -> list[tuple[Occur, Query]]:
        schema = self._schema
        clauses = [(Occur.Must, Query.term_query(schema, "tenant", tenant_id))]
        if where.regions is not None:
            values = [r or ANY for r in where.regions]
            clauses.append((Occur.Must, Query.term_set_query(schema, "region", values)))
        if where.categories is not None:
            values = [c or ANY for c in where.categories]
            clauses.append((Occur.Must, Query.term_set_query(schema, "category", values)))
        if where.policy_version:
            clauses.append((Occur.Must, Query.term_query(schema, "version", where.policy_version)))
        at = _seconds(where.at)
        clauses.append(
            (Occur.Must, Query.range_query(schema, "effective", FieldType.Integer, None, at))
        )
        clauses.append(
            (
                Occur.Must,
                Query.range_query(
                    schema, "expires", FieldType.Integer, at, None, include_lower=False
                ),
            )
        )
        return clauses

    def search(
        self,
        tenant_id: str,
        text: str,
        where: Filter,
        *,
        limit: int,
        options: LexicalOptions | None = None,
    ) -> list[LexicalHit]:
        """The best ``limit`` chunks of the tenant that pass ``where``, BM25 order."""
        schema = self._schema
        options = options or LexicalOptions()
        should: list[tuple[Occur, Query]] = []
        for term in dict.fromkeys(self._text.analyze(text)):
            should.append((Occur.Should, Query.term_query(schema, "body", term)))
            should.append(
                (
                    Occur.Should,
                    Query.boost_query(
                        Query.term_query(schema, "heading", term), options.heading_boost
                    ),
                )
            )
        own = set(self._text.analyze(text))
        added = [
            t for t in dict.fromkeys(self._text.analyze(" ".join(expansions(text)))) if t not in own
        ]
        for term in added:
            should.append(
                (
                    Occur.Should,
                    Query.boost_query(
                        Query.term_query(schema, "body", term), options.expansion_boost
                    ),
                )
            )
        for code in dict.fromkeys(self._codes.analyze(text)):
            should.append(
                (
                    Occur.Should,
                    Query.boost_query(Query.term_query(schema, "codes", code), options.code_boost),
                )
            )
        if not should:
            return []
        query = Query.boolean_query(
            [*self._filters(tenant_id, where), (Occur.Must, Query.boolean_query(should))]
        )
        searcher = self._index.searcher()
        hits = searcher.search(query, limit).hits
        return [
            LexicalHit(uid=searcher.doc(address)["uid"][0], score=float(score), rank=rank)
            for rank, (score, address) in enumerate(hits, start=1)
        ]
