"""Ingestion: documents in, a new published version out, re-embedding only what changed.

The new version starts from the current one. A document whose digest is
unchanged keeps its chunks as they are; a changed one is re-chunked, and each
of its chunks whose content hash (text, headings, metadata, policy version) is
unchanged keeps its vectors and its place in the lexical index. Only new and
changed chunks are embedded and written to the index; chunks that disappeared
are deleted from it. Everything happens in a staging directory under the
writer lock; nothing is visible until ``store.publish`` renames it into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from embeddings.pooling import FloatArray
from retrieval.chunking import Chunk, ChunkOptions, CountTokens, chunk_document, windows
from retrieval.documents import PolicyDocument
from retrieval.lexical import LexicalIndex
from retrieval.store import (
    CHUNKS,
    DOCUMENTS,
    LEXICAL,
    MANIFEST,
    VECTORS,
    KnowledgeBaseStore,
)
from retrieval.vector_cache import VectorCache
from retrieval.version import StoredChunk, read_chunks, read_documents, read_vectors

Progress = Callable[[int, int], None]
"""Called with (windows embedded so far, windows to embed)."""
Screen = Callable[[Sequence[str]], Sequence[float]]
"""Scores texts for injected instructions, 0..1 (the guardrails' scorer)."""


@dataclass(frozen=True, slots=True)
class Screening:
    """How new chunks are screened for injected instructions before they are indexed."""

    score: Screen
    flag_at: float = 0.70
    """A chunk scoring at least this is left out of the version."""
    quarantine_at: float = 0.90
    """A chunk scoring at least this quarantines its whole document."""


class TextEmbedder(Protocol):
    """What ingestion needs of an embedder."""

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> FloatArray: ...


class UnknownDocument(KeyError):
    """A delete named a document the tenant does not have."""


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ingest did."""

    version: str | None
    """The current version afterwards."""
    published: bool
    """Whether a new version was published (False: nothing changed)."""
    parent: str | None
    """The version it was built on."""
    documents_added: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_removed: int = 0
    chunks_indexed: int = 0
    """New or changed chunks embedded and written to the indexes."""
    chunks_unchanged: int = 0
    """Chunks whose content hash was unchanged: kept as they were."""
    chunks_removed: int = 0
    """Chunks of the previous version that are gone."""
    windows_embedded: int = 0
    """Windows run through the model (cached vectors excluded)."""
    documents_quarantined: tuple[str, ...] = ()
    """Documents left out because a chunk scored at the quarantine threshold for injected
    instructions (``tenant/doc_id``; a changed document keeps its previous version)."""
    chunks_flagged: int = 0
    """Chunks left out of the version (scored at the flag threshold: never retrieved)."""
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready record."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _digest(model_version: str, chunks: Sequence[StoredChunk]) -> str:
    h = hashlib.sha256(model_version.encode())
    for stored in sorted(chunks, key=lambda s: s.chunk.uid):
        h.update(stored.chunk.uid.encode())
        h.update(stored.content_hash.encode())
    return h.hexdigest()


def _write_jsonl(path: Path, records: Sequence[dict[str, object]]) -> None:
    with path.open("w") as fh:
        for record in records:
            fh.write(json.dumps(record, sort_keys=True, ensure_ascii=False))
            fh.write("\n")


@dataclass(slots=True)
class _Base:
    """The version an ingest starts from."""

    version: str | None
    path: Path | None
    documents: dict[tuple[str, str], PolicyDocument]
    chunks: list[StoredChunk]
    vectors: FloatArray
    model_changed: bool

    @classmethod
    def read(cls, store: KnowledgeBaseStore, embedder: TextEmbedder) -> _Base:
        version = store.current()
        path = store.path(version) if version else None
        if path is None:
            empty = np.zeros((0, embedder.dim), np.float32)
            return cls(None, None, {}, [], empty, model_changed=False)
        # Vectors of another model cannot be mixed with new ones: then everything is new.
        changed = json.loads((path / MANIFEST).read_text()).get("embedder") != embedder.version
        return cls(
            version,
            path,
            {d.key: d for d in read_documents(path)},
            [] if changed else read_chunks(path),
            read_vectors(path),
            model_changed=changed,
        )


@dataclass(slots=True)
class _Changes:
    """The document set after an ingest and how it differs from the base."""

    documents: dict[tuple[str, str], PolicyDocument]
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0


def _apply(
    base: _Base,
    *,
    upsert: Sequence[PolicyDocument],
    delete: Sequence[tuple[str, str]],
    replace_tenants: Collection[str],
) -> _Changes:
    docs = dict(base.documents)
    wanted = {d.key for d in upsert}
    removed = [k for k in docs if k[0] in replace_tenants and k not in wanted]
    for key in delete:
        if key not in docs:
            raise UnknownDocument(key)
        removed.append(key)
    for key in removed:
        docs.pop(key, None)
    out = _Changes(docs, removed=len(removed))
    for document in upsert:
        previous = docs.get(document.key)
        if previous is None:
            out.added += 1
        elif previous.digest == document.digest:
            out.unchanged += 1
            continue
        else:
            out.changed += 1
        docs[document.key] = document
    return out


def _plan(
    base: _Base,
    documents: dict[tuple[str, str], PolicyDocument],
    count: CountTokens,
    opts: ChunkOptions,
) -> list[tuple[Chunk, StoredChunk | None]]:
    """Every chunk of the new version, with the stored chunk it may keep (same uid and
    content hash), in (tenant, doc_id) order."""
    by_doc: dict[tuple[str, str], list[StoredChunk]] = {}
    for stored in base.chunks:
        by_doc.setdefault((stored.chunk.tenant_id, stored.chunk.doc_id), []).append(stored)
    old = {s.chunk.uid: s for s in base.chunks}
    planned: list[tuple[Chunk, StoredChunk | None]] = []
    for key in sorted(documents):
        document = documents[key]
        previous = base.documents.get(key)
        if key in by_doc and previous is not None and previous.digest == document.digest:
            planned.extend((s.chunk, s) for s in by_doc[key])
            continue
        for chunk in chunk_document(document, count, opts):
            kept = old.get(chunk.uid)
            same = kept is not None and kept.content_hash == chunk.content_hash
            planned.append((chunk, kept if same else None))
    return planned


def _screen(
    base: _Base,
    changes: _Changes,
    planned: list[tuple[Chunk, StoredChunk | None]],
    *,
    count: CountTokens,
    opts: ChunkOptions,
    screening: Screening,
) -> tuple[list[tuple[Chunk, StoredChunk | None]], list[str], int]:
    """Score the chunks to be indexed; quarantine documents with a chunk at the quarantine
    threshold (a changed one keeps its previous version) and leave out chunks at the flag
    threshold. Kept chunks were screened when they were first indexed."""
    fresh = [chunk for chunk, kept in planned if kept is None]
    scores = dict(
        zip((c.uid for c in fresh), screening.score([c.text for c in fresh]), strict=True)
    )
    bad_docs = sorted(
        {(c.tenant_id, c.doc_id) for c in fresh if scores[c.uid] >= screening.quarantine_at}
    )
    for key in bad_docs:
        # Roll the document back to what the base holds, and count it as quarantined only.
        previous = base.documents.get(key)
        received = changes.documents[key]
        if previous is None:
            changes.documents.pop(key)
            changes.added -= 1
        else:
            changes.documents[key] = previous
            if previous.digest != received.digest:
                changes.changed -= 1
    if bad_docs:
        planned = _plan(base, changes.documents, count, opts)
    kept_plan = [
        (chunk, kept)
        for chunk, kept in planned
        if kept is not None or scores.get(chunk.uid, 0.0) < screening.flag_at
    ]
    flagged = len(planned) - len(kept_plan)
    return kept_plan, [f"{t}/{d}" for t, d in bad_docs], flagged


def _assemble(
    base: _Base,
    planned: Sequence[tuple[Chunk, StoredChunk | None]],
    fresh_vectors: Sequence[FloatArray],
    dim: int,
) -> tuple[list[StoredChunk], FloatArray]:
    """The new version's chunks and vectors: kept blocks copied, new ones in between."""
    blocks: list[FloatArray] = []
    out: list[StoredChunk] = []
    row = 0
    fresh = iter(fresh_vectors)
    for chunk, kept in planned:
        start, end = kept.windows if kept is not None else (0, 0)
        block = base.vectors[start:end] if kept is not None else next(fresh)
        blocks.append(block)
        out.append(StoredChunk(chunk, chunk.content_hash, (row, row + len(block))))
        row += len(block)
    vectors = (
        np.concatenate(blocks).astype(np.float32) if blocks else np.zeros((0, dim), np.float32)
    )
    return out, vectors


def ingest(
    store: KnowledgeBaseStore,
    embedder: TextEmbedder,
    count: CountTokens,
    *,
    upsert: Sequence[PolicyDocument] = (),
    delete: Sequence[tuple[str, str]] = (),
    replace_tenants: Collection[str] = (),
    options: ChunkOptions | None = None,
    cache: VectorCache | None = None,
    progress: Progress | None = None,
    screening: Screening | None = None,
) -> IngestReport:
    """Apply document changes and publish a new version if anything changed.

    ``upsert`` adds or replaces documents by (tenant, doc_id); ``delete`` removes
    documents (UnknownDocument if one is missing: nothing is changed);
    ``replace_tenants`` makes ``upsert`` the whole knowledge base of those tenants,
    removing their documents it does not name (``waybill kb ingest DIR``).
    """
    started = time.perf_counter()
    opts = options or ChunkOptions()
    with store.writing():
        base = _Base.read(store, embedder)
        changes = _apply(base, upsert=upsert, delete=delete, replace_tenants=replace_tenants)
        if not (changes.added or changes.changed or changes.removed or base.model_changed):
            return IngestReport(
                version=base.version,
                published=False,
                parent=base.version,
                documents_unchanged=changes.unchanged,
                chunks_unchanged=len(base.chunks),
                seconds=time.perf_counter() - started,
            )
        planned = _plan(base, changes.documents, count, opts)
        quarantined: list[str] = []
        flagged = 0
        if screening is not None:
            planned, quarantined, flagged = _screen(
                base, changes, planned, count=count, opts=opts, screening=screening
            )
            if not (changes.added or changes.changed or changes.removed or base.model_changed):
                return IngestReport(
                    version=base.version,
                    published=False,
                    parent=base.version,
                    documents_unchanged=changes.unchanged,
                    chunks_unchanged=len(base.chunks),
                    documents_quarantined=tuple(quarantined),
                    chunks_flagged=flagged,
                    seconds=time.perf_counter() - started,
                )
        fresh = [chunk for chunk, kept in planned if kept is None]
        texts = [windows(chunk, count, opts) for chunk in fresh]
        flat, embedded = _embed(
            embedder, [t for group in texts for t in group], cache=cache, progress=progress
        )
        bounds = np.cumsum([0, *(len(group) for group in texts)])
        chunks, vectors = _assemble(
            base,
            planned,
            [flat[bounds[i] : bounds[i + 1]] for i in range(len(texts))],
            embedder.dim,
        )
        old = {s.chunk.uid for s in base.chunks}
        kept = {s.chunk.uid for _, s in planned if s is not None}
        new = {s.chunk.uid for s in chunks}
        gone = sorted(old - new)
        sequence = 1 + (int(base.version[1:].split("-", 1)[0]) if base.version else 0)
        report = IngestReport(
            version=f"v{sequence:05d}-{_digest(embedder.version, chunks)[:10]}",
            published=True,
            parent=base.version,
            documents_added=changes.added,
            documents_changed=changes.changed,
            documents_unchanged=changes.unchanged,
            documents_removed=changes.removed,
            chunks_indexed=len(fresh),
            chunks_unchanged=len(chunks) - len(fresh),
            chunks_removed=len(gone),
            windows_embedded=embedded,
            documents_quarantined=tuple(quarantined),
            chunks_flagged=flagged,
            seconds=0.0,
        )
        staged = store.staging()
        try:
            lexical = LexicalIndex.create(
                staged / LEXICAL,
                base=base.path / LEXICAL if base.path and not base.model_changed else None,
            )
            lexical.update(remove=[*gone, *sorted((old & new) - kept)], add=fresh)
            _write_version(
                staged,
                base,
                documents=changes.documents,
                chunks=chunks,
                vectors=vectors,
                report=report,
                embedder=embedder,
                opts=opts,
            )
            assert report.version is not None
            store.publish(staged, report.version)
        except BaseException:
            store.discard(staged)
            raise
        return replace(report, seconds=time.perf_counter() - started)


def _write_version(
    staged: Path,
    base: _Base,
    *,
    documents: dict[tuple[str, str], PolicyDocument],
    chunks: Sequence[StoredChunk],
    vectors: FloatArray,
    report: IngestReport,
    embedder: TextEmbedder,
    opts: ChunkOptions,
) -> None:
    _write_jsonl(staged / DOCUMENTS, [documents[k].to_json() for k in sorted(documents)])
    _write_jsonl(staged / CHUNKS, [s.to_json() for s in chunks])
    with (staged / VECTORS).open("wb") as fh:
        np.save(fh, vectors, allow_pickle=False)
    tenants: dict[str, dict[str, int]] = {}
    for key in documents:
        tenants.setdefault(key[0], {"documents": 0, "chunks": 0})["documents"] += 1
    for stored in chunks:
        tenants[stored.chunk.tenant_id]["chunks"] += 1
    manifest = {
        "version": report.version,
        "parent": base.version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedder": embedder.version,
        "chunking": {
            "max_tokens": opts.max_tokens,
            "target_tokens": opts.target_tokens,
            "overlap_tokens": opts.overlap_tokens,
            "window_tokens": opts.window_tokens,
        },
        "counts": {"documents": len(documents), "chunks": len(chunks), "windows": len(vectors)},
        "tenants": tenants,
        "ingest": report.to_json(),
        "writer_pid": os.getpid(),
    }
    (staged / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _embed(
    embedder: TextEmbedder,
    texts: Sequence[str],
    *,
    cache: VectorCache | None,
    progress: Progress | None,
    batch: int = 32,
) -> tuple[FloatArray, int]:
    """Vectors of ``texts`` (cache first), and how many ran through the model."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    missing = list(range(len(texts)))
    if cache is not None:
        found = cache.get(texts)
        for i, vector in found.items():
            out[i] = vector
        missing = [i for i in range(len(texts)) if i not in found]
    total = len(missing)
    if progress is not None:
        progress(0, total)
    for start in range(0, total, batch):
        part = missing[start : start + batch]
        vectors = embedder.embed([texts[i] for i in part])
        out[part] = vectors
        if cache is not None:
            cache.put([texts[i] for i in part], vectors)
        if progress is not None:
            progress(min(start + batch, total), total)
    return out, total
