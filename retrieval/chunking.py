"""Section-level chunks with stable ids, and the windows each chunk is embedded in.

A chunk never crosses a document (one policy) or a ``## `` section. A section
that fits ``max_tokens`` is one chunk, whatever its size: merging two sections
would make a citation point at text about another rule. A longer section is
split at sentence boundaries into parts of ``target_tokens`` or so, each
repeating the end of the previous one (``overlap_tokens``), sized evenly so
no part is a stub.

Ids depend on where a chunk is, not on what it says: ``<doc_id>#<section slug>``,
and ``~<n>`` for the parts of a split section. A re-ingest of an edited document
keeps its ids; the content hash tells what changed.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from retrieval.documents import HEADING, PolicyDocument

CountTokens = Callable[[str], int]
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+|\n+(?=\s*(?:[-*+]|\d+[.)])\s)|\n{2,}")


@dataclass(frozen=True, slots=True)
class ChunkOptions:
    """Chunk and window sizes, in the embedding model's word pieces."""

    max_tokens: int = 600
    """A section up to this size is one chunk."""
    target_tokens: int = 500
    """Size aimed at when a longer section is split."""
    overlap_tokens: int = 75
    """Tokens a part repeats from the end of the previous one (50..100)."""
    window_tokens: int = 200
    """Text per embedded window (the model reads 256 word pieces, title and heading included)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable unit of a policy document."""

    tenant_id: str
    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str
    region: str
    product_category: str
    policy_version: str
    effective: datetime
    expires: datetime | None
    source_doc: str
    part: int = 0
    """0 for a whole section; 1, 2, ... for the parts of a split one."""

    @property
    def uid(self) -> str:
        """Unique across tenants (chunk ids are unique within one)."""
        return f"{self.tenant_id}/{self.chunk_id}"

    @property
    def content_hash(self) -> str:
        """Everything that goes into the indexes; unchanged hash, nothing to re-index."""
        h = hashlib.sha256()
        for value in (
            self.text,
            self.title,
            self.section,
            self.region,
            self.product_category,
            self.policy_version,
            self.effective.isoformat(),
            self.expires.isoformat() if self.expires else "",
            self.source_doc,
        ):
            h.update(value.encode())
            h.update(b"\x1f")
        return h.hexdigest()

    @property
    def heading(self) -> str:
        """Title and section, the context every window of the chunk is embedded with."""
        return f"{self.title}. {self.section}"


def slug(heading: str) -> str:
    """The section part of a chunk id: lower case, runs of other characters as ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")[:60]


def sections(body: str) -> list[tuple[str, str]]:
    """(heading, text) of every ``## `` section, in order; text before the first is dropped
    (the ``# title`` line)."""
    found = list(HEADING.finditer(body))
    out = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(body)
        out.append((match.group(1).strip(), body[match.end() : end].strip()))
    return out


def sentences(text: str) -> list[str]:
    """Sentences and list items, in order, without empty pieces."""
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def _pack(pieces: Sequence[str], sizes: Sequence[int], *, limit: int) -> list[list[int]]:
    """Greedy groups of consecutive pieces of at most ``limit`` tokens (a longer piece
    stands alone)."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if current and total + size > limit:
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += size
    if current:
        groups.append(current)
    return groups


def split_section(text: str, count: CountTokens, options: ChunkOptions) -> list[str]:
    """The section as one text, or as evenly sized overlapping parts."""
    total = count(text)
    if total <= options.max_tokens:
        return [text]
    pieces = sentences(text)
    sizes = [count(p) for p in pieces]
    step = options.target_tokens - options.overlap_tokens
    parts = max(2, math.ceil((total - options.overlap_tokens) / step))
    size = math.ceil((total + (parts - 1) * options.overlap_tokens) / parts)
    out: list[str] = []
    start = 0
    while start < len(pieces):
        end, used = start, 0
        while end < len(pieces) and (end == start or used + sizes[end] <= size):
            used += sizes[end]
            end += 1
        if len(pieces) - end == 1 and sizes[end] + used <= options.max_tokens:
            end += 1  # a last sentence alone would be a stub
        out.append(" ".join(pieces[start:end]))
        if end >= len(pieces):
            break
        # The next part repeats the last sentences of this one, up to the overlap.
        back, carried = end, 0
        while back - 1 > start and carried + sizes[back - 1] <= options.overlap_tokens + 25:
            back -= 1
            carried += sizes[back]
        start = back if carried >= min(50, options.overlap_tokens) else end
    return out


def chunk_document(
    document: PolicyDocument, count: CountTokens, options: ChunkOptions | None = None
) -> list[Chunk]:
    """The document's chunks, in order."""
    opts = options or ChunkOptions()
    out: list[Chunk] = []
    for heading, text in sections(document.body):
        if not text:
            continue
        parts = split_section(text, count, opts)
        base = f"{document.doc_id}#{slug(heading)}"
        for n, part in enumerate(parts, start=1):
            out.append(
                Chunk(
                    tenant_id=document.tenant_id,
                    chunk_id=base if len(parts) == 1 else f"{base}~{n}",
                    doc_id=document.doc_id,
                    title=document.title,
                    section=heading,
                    text=part,
                    region=document.region,
                    product_category=document.product_category,
                    policy_version=document.policy_version,
                    effective=document.effective,
                    expires=document.expires,
                    source_doc=document.source_doc,
                    part=0 if len(parts) == 1 else n,
                )
            )
    return out


def windows(chunk: Chunk, count: CountTokens, options: ChunkOptions | None = None) -> list[str]:
    """The texts a chunk is embedded as: consecutive sentence groups that fit the model,
    each after the heading. A chunk scores by its best window, so a rule deep in a long
    section still matches a question about it. (A window of the heading alone was tried:
    no better on the DEV questions.)"""
    opts = options or ChunkOptions()
    pieces = sentences(chunk.text) or [chunk.text]
    sizes = [count(p) for p in pieces]
    groups = _pack(pieces, sizes, limit=opts.window_tokens)
    return [f"{chunk.heading}: " + " ".join(pieces[i] for i in group) for group in groups]
