"""Chunks: one per section up to the size limit, evenly split overlapping parts above it,
ids that depend on where a chunk is and hashes that depend on what it says."""

from __future__ import annotations

import itertools

from embeddings.tokenizer import TokenCounter
from retrieval.chunking import ChunkOptions, chunk_document, slug, split_section, windows
from retrieval.documents import load_dir
from runtime import paths
from tests.retrieval.conftest import TENANTS, MakeDocument

OPTIONS = ChunkOptions()


def _long_section(sentences: int) -> str:
    return " ".join(
        f"Rule {n}: a parcel reported damaged within {n + 2} days is inspected at the hub"
        f" and the customer is told the outcome by e-mail."
        for n in range(sentences)
    )


def test_slugs_are_stable_and_plain() -> None:
    assert slug("Tier extensions") == "tier-extensions"
    assert slug("  Fees: before & after dispatch (CXL-2)! ") == "fees-before-after-dispatch-cxl-2"


def test_a_short_section_is_one_chunk_with_a_positional_id(
    make_document: MakeDocument, count: TokenCounter
) -> None:
    doc = make_document(
        doc_id="acme-a", sections={"Return window": "Thirty days.", "Fees": "None."}
    )
    chunks = chunk_document(doc, count)
    assert [c.chunk_id for c in chunks] == ["acme-a#return-window", "acme-a#fees"]
    assert [c.text for c in chunks] == ["Thirty days.", "None."]
    assert {c.part for c in chunks} == {0}


def test_a_long_section_splits_into_overlapping_parts_within_bounds(
    make_document: MakeDocument, count: TokenCounter
) -> None:
    text = _long_section(60)
    total = count(text)
    assert total > 2 * OPTIONS.max_tokens
    doc = make_document(doc_id="acme-long", sections={"Claims": text, "Next": "Short."})
    chunks = chunk_document(doc, count)
    parts = [c for c in chunks if c.section == "Claims"]
    assert [c.chunk_id for c in parts] == [
        f"acme-long#claims~{n}" for n in range(1, len(parts) + 1)
    ]
    sizes = [count(c.text) for c in parts]
    assert all(300 <= s <= OPTIONS.max_tokens for s in sizes), sizes
    for first, second in itertools.pairwise(parts):
        # The overlap: the next part starts with the last sentences of this one.
        overlap = [s for s in second.text.split(". ") if s and s in first.text]
        assert overlap, "consecutive parts share no sentence"
        carried = count(". ".join(overlap))
        assert 40 <= carried <= 125, carried
    # Never crosses a section: the next section is its own chunk.
    assert chunks[-1].chunk_id == "acme-long#next"
    assert "Short." not in " ".join(c.text for c in parts)


def test_split_covers_every_sentence(count: TokenCounter) -> None:
    text = _long_section(45)
    parts = split_section(text, count, OPTIONS)
    assert len(parts) >= 2
    joined = " ".join(parts)
    for n in range(45):
        assert f"Rule {n}:" in joined


def test_the_hash_follows_content_and_version_but_the_id_does_not(
    make_document: MakeDocument, count: TokenCounter
) -> None:
    a = chunk_document(make_document(doc_id="acme-h", version="2026.1"), count)[0]
    b = chunk_document(make_document(doc_id="acme-h", version="2026.2"), count)[0]
    c = chunk_document(
        make_document(doc_id="acme-h", sections={"Return window": "Within 14 days."}), count
    )[0]
    same = chunk_document(make_document(doc_id="acme-h", version="2026.1"), count)[0]
    assert a.chunk_id == b.chunk_id == c.chunk_id
    assert len({a.content_hash, b.content_hash, c.content_hash}) == 3
    assert same.content_hash == a.content_hash


def test_windows_fit_the_model_and_carry_the_heading(
    make_document: MakeDocument, count: TokenCounter
) -> None:
    doc = make_document(doc_id="acme-w", sections={"Claims": _long_section(12)})
    (chunk,) = chunk_document(doc, count)
    found = windows(chunk, count)
    assert len(found) >= 2
    for window in found:
        assert window.startswith("Policy acme-w. Claims: ")
        assert count(window) <= 254  # the model reads 256 word pieces with its two markers


def test_the_shipped_kb_chunks_stay_within_bounds(count: TokenCounter) -> None:
    docs = load_dir(paths.data_dir("kb"), tenants=TENANTS).documents
    chunks = [c for d in docs for c in chunk_document(d, count)]
    ids = [(c.tenant_id, c.chunk_id) for c in chunks]
    assert len(ids) == len(set(ids))
    assert all(count(c.text) <= OPTIONS.max_tokens for c in chunks)
    assert any(c.part for c in chunks)  # some long sections are split
