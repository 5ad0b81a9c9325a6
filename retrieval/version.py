"""One published version, loaded: documents, chunks, their vectors and both indexes.

Immutable once loaded; the retriever swaps a whole ``LoadedVersion`` in one
reference assignment when ``CURRENT`` moves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.pooling import FloatArray
from retrieval.chunking import Chunk
from retrieval.codes import codes_in
from retrieval.dense import BoolArray, DenseIndex, IntArray
from retrieval.documents import PolicyDocument
from retrieval.filters import Filter
from retrieval.lexical import NEVER, LexicalIndex
from retrieval.store import CHUNKS, DOCUMENTS, LEXICAL, MANIFEST, VECTORS, StoreError


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as a version keeps it: the chunk, its content hash, its window rows."""

    chunk: Chunk
    content_hash: str
    windows: tuple[int, int]
    """[start, end) rows of its window vectors in ``vectors.npy``."""

    def to_json(self) -> dict[str, Any]:
        """One line of ``chunks.jsonl``."""
        c = self.chunk
        return {
            "tenant_id": c.tenant_id,
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "title": c.title,
            "section": c.section,
            "text": c.text,
            "region": c.region,
            "product_category": c.product_category,
            "policy_version": c.policy_version,
            "effective": c.effective.isoformat(),
            "expires": c.expires.isoformat() if c.expires else None,
            "source_doc": c.source_doc,
            "part": c.part,
            "hash": self.content_hash,
            "windows": list(self.windows),
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> StoredChunk:
        """The inverse of :meth:`to_json`."""
        chunk = Chunk(
            tenant_id=record["tenant_id"],
            chunk_id=record["chunk_id"],
            doc_id=record["doc_id"],
            title=record["title"],
            section=record["section"],
            text=record["text"],
            region=record["region"],
            product_category=record["product_category"],
            policy_version=record["policy_version"],
            effective=datetime.fromisoformat(record["effective"]),
            expires=datetime.fromisoformat(record["expires"]) if record["expires"] else None,
            source_doc=record["source_doc"],
            part=int(record["part"]),
        )
        start, end = record["windows"]
        return cls(chunk=chunk, content_hash=record["hash"], windows=(int(start), int(end)))


def read_documents(path: Path) -> list[PolicyDocument]:
    """``documents.jsonl`` of a version directory."""
    with (path / DOCUMENTS).open() as fh:
        return [PolicyDocument.from_json(json.loads(line)) for line in fh if line.strip()]


def read_chunks(path: Path) -> list[StoredChunk]:
    """``chunks.jsonl`` of a version directory."""
    with (path / CHUNKS).open() as fh:
        return [StoredChunk.from_json(json.loads(line)) for line in fh if line.strip()]


def read_vectors(path: Path) -> FloatArray:
    """``vectors.npy`` of a version directory (memory-mapped: replicas share the pages)."""
    vectors = np.load(path / VECTORS, mmap_mode="r", allow_pickle=False)
    return np.asarray(vectors, dtype=np.float32)


class LoadedVersion:
    """A version in memory, ready to search."""

    def __init__(self, path: Path, *, compress_min: int = 50_000) -> None:
        self.path = path
        try:
            self.manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text())
            self.documents: dict[tuple[str, str], PolicyDocument] = {
                d.key: d for d in read_documents(path)
            }
            self.chunks: list[StoredChunk] = read_chunks(path)
            vectors = read_vectors(path)
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"version at {path} is unreadable: {exc}") from None
        self.version: str = self.manifest["version"]
        self.row_of: dict[str, int] = {s.chunk.uid: i for i, s in enumerate(self.chunks)}
        self.codes: list[frozenset[str]] = [
            frozenset(codes_in(f"{s.chunk.heading} {s.chunk.text}")) for s in self.chunks
        ]
        """The codes each chunk names (the reranker's exact-code signal), read once."""
        self.chunks_of: dict[tuple[str, str], list[Chunk]] = {}
        """Chunks by (tenant, doc_id), in document order."""
        for stored in self.chunks:
            key = (stored.chunk.tenant_id, stored.chunk.doc_id)
            self.chunks_of.setdefault(key, []).append(stored.chunk)
        chunks = [s.chunk for s in self.chunks]
        self._codes: dict[str, int] = {}
        self._region = self._coded([c.region for c in chunks])
        self._category = self._coded([c.product_category for c in chunks])
        self._policy = self._coded([c.policy_version for c in chunks])
        self._effective = np.array([int(c.effective.timestamp()) for c in chunks], dtype=np.int64)
        self._expires = np.array(
            [int(c.expires.timestamp()) if c.expires else NEVER for c in chunks], dtype=np.int64
        )
        rows_of: dict[str, list[int]] = {}
        for row, c in enumerate(chunks):
            rows_of.setdefault(c.tenant_id, []).append(row)
        self._rows = {t: np.array(r, dtype=np.int64) for t, r in rows_of.items()}
        window_chunk = np.empty(vectors.shape[0], dtype=np.int64)
        for row, stored in enumerate(self.chunks):
            start, end = stored.windows
            window_chunk[start:end] = row
        self.window_chunk: IntArray = window_chunk
        self.vectors: FloatArray = vectors
        """Window vectors, rows as in ``chunks[i].windows``."""
        self.dense = DenseIndex(
            vectors, window_chunk, [c.tenant_id for c in chunks], compress_min=compress_min
        )
        self.lexical = LexicalIndex(path / LEXICAL)

    def similarity(self, row: int, query: FloatArray) -> float:
        """Cosine of the chunk's best window to ``query`` (unit vectors)."""
        start, end = self.chunks[row].windows
        if end <= start:
            return 0.0
        return float(np.max(self.vectors[start:end] @ query))

    def chunk(self, row: int) -> Chunk:
        """The chunk at ``row``."""
        return self.chunks[row].chunk

    def rows_of(self, tenant_id: str) -> IntArray:
        """Rows of the tenant's chunks."""
        return self._rows.get(tenant_id, np.zeros(0, dtype=np.int64))

    def _coded(self, values: Sequence[str]) -> IntArray:
        """Strings as small integers (one table for all fields): fast set membership."""
        return np.array([self._codes.setdefault(v, len(self._codes)) for v in values], np.int64)

    def _in(self, column: IntArray, values: Sequence[str]) -> BoolArray:
        wanted = [self._codes[v] for v in values if v in self._codes]
        return np.isin(column, np.array(wanted, dtype=np.int64))

    def allowed(self, tenant_id: str, where: Filter) -> BoolArray:
        """Rows of the tenant's chunks that pass ``where`` (the dense index's selector)."""
        rows = self.rows_of(tenant_id)
        keep = np.ones(rows.size, dtype=np.bool_)
        if where.regions is not None:
            keep &= self._in(self._region[rows], where.regions)
        if where.categories is not None:
            keep &= self._in(self._category[rows], where.categories)
        if where.policy_version:
            keep &= self._in(self._policy[rows], [where.policy_version])
        at = int(where.at.timestamp())
        keep &= (self._effective[rows] <= at) & (self._expires[rows] > at)
        mask = np.zeros(len(self.chunks), dtype=np.bool_)
        mask[rows[keep]] = True
        return mask
