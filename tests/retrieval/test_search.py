"""Search: the tenant filter in both indexes, metadata filters applied before ranking
(checked against the reference ``Filter.admits``), codes that match whole, and RRF."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from embeddings import Embedder
from embeddings.tokenizer import TokenCounter
from retrieval.filters import Filter
from retrieval.fusion import rrf
from retrieval.ingest import ingest
from retrieval.retriever import Retriever
from retrieval.search import Mode
from retrieval.store import KnowledgeBaseStore
from tests.retrieval.conftest import document_maker

AT = datetime(2026, 12, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def retriever(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, count: TokenCounter
) -> Retriever:
    """One knowledge base for the module (searches do not change it)."""
    make_document = document_maker()
    store = KnowledgeBaseStore(tmp_path_factory.mktemp("kb"))
    docs = []
    for tenant, region in (("acme-retail", "US"), ("globex-home", "DE")):
        prefix = tenant.split("-")[0]
        docs.append(
            make_document(
                doc_id=f"{prefix}-chargers",
                tenant=tenant,
                region=region,
                sections={
                    "Variant B": f"The charger SKU-9942-B of {prefix} may be returned within"
                    " 14 days of delivery.",
                    "Variant A": f"The charger SKU-9942-A of {prefix} follows the 30 day window.",
                },
            )
        )
    # A grid of filter cases for acme: regions, categories, dates.
    for n, (region, category, (effective, expires)) in enumerate(
        itertools.product(
            ("", "US", "US-CA", "US-NY"),
            ("", "electronics", "home"),
            (("2026-01-01", None), ("2026-01-01", "2026-06-01"), ("2027-01-01", None)),
        )
    ):
        docs.append(
            make_document(
                doc_id=f"acme-grid-{n:02d}",
                region=region,
                category=category,
                effective=effective,
                expires=expires,
                sections={"Delivery fee": f"Grid rule {n}: the delivery fee for parcels is low."},
            )
        )
    ingest(store, embedder, count, upsert=docs)
    found = Retriever(store, embedder)
    found.refresh()
    return found


@pytest.mark.parametrize("mode", list(Mode))
def test_a_query_for_another_tenants_sku_returns_nothing_of_theirs(
    retriever: Retriever, mode: Mode
) -> None:
    for asking, other in (("acme-retail", "globex"), ("globex-home", "acme")):
        found = retriever.search(
            tenant_id=asking,
            text=f"{other} charger SKU-9942-B return within 14 days",
            where=Filter.of(at=AT),
            mode=mode,
            top_k=20,
        ).results
        assert found, "the asking tenant's own chunks still match"
        assert {r.chunk.tenant_id for r in found} == {asking}
        assert all(other not in r.chunk.text for r in found)


def test_an_unknown_tenant_gets_nothing(retriever: Retriever) -> None:
    for mode in Mode:
        found = retriever.search(
            tenant_id="initech", text="charger SKU-9942-B", where=Filter.of(), mode=mode, top_k=5
        )
        assert found.results == []


@pytest.mark.parametrize("mode", [Mode.LEXICAL, Mode.DENSE])
@pytest.mark.parametrize("region", ["", "US", "US-CA", "US-NY", "US-TX"])
@pytest.mark.parametrize("category", ["", "electronics", "home"])
@pytest.mark.parametrize("day", ["2026-03-01", "2026-08-01", "2027-02-01"])
def test_filters_apply_inside_each_index_before_ranking(
    retriever: Retriever, mode: Mode, region: str, category: str, day: str
) -> None:
    loaded = retriever.loaded
    assert loaded is not None
    at = datetime.fromisoformat(day).replace(tzinfo=UTC)
    where = Filter.of(region=region, product_category=category, at=at)
    expected = {
        s.chunk.chunk_id
        for s in loaded.chunks
        if s.chunk.tenant_id == "acme-retail"
        and s.chunk.doc_id.startswith("acme-grid")
        and where.admits(
            region=s.chunk.region,
            product_category=s.chunk.product_category,
            policy_version=s.chunk.policy_version,
            effective=s.chunk.effective,
            expires=s.chunk.expires,
        )
    }
    found = retriever.search(
        tenant_id="acme-retail",
        text="delivery fee for parcels grid rule",
        where=where,
        mode=mode,
        top_k=50,
    ).results
    grid = {r.chunk.chunk_id for r in found if r.chunk.doc_id.startswith("acme-grid")}
    # Everything admitted is found (top_k exceeds the admitted count) and nothing else.
    assert grid == expected


def test_the_exact_code_ranks_its_own_variant_first(retriever: Retriever) -> None:
    for sku, wanted in (("SKU-9942-B", "#variant-b"), ("SKU-9942-A", "#variant-a")):
        for mode in (Mode.LEXICAL, Mode.HYBRID, Mode.HYBRID_RERANK):
            found = retriever.search(
                tenant_id="acme-retail",
                text=f"can I still send back {sku}?",
                where=Filter.of(at=AT),
                mode=mode,
                top_k=3,
            ).results
            assert found[0].chunk.chunk_id.endswith(wanted), (sku, mode, found[0].chunk.chunk_id)


def test_every_result_carries_its_stage_scores(retriever: Retriever) -> None:
    found = retriever.search(
        tenant_id="acme-retail",
        text="charger SKU-9942-B",
        where=Filter.of(at=AT),
        mode=Mode.HYBRID_RERANK,
        top_k=5,
    ).results
    best = found[0]
    assert best.lexical_rank == 1
    assert best.lexical_score > 0
    assert best.dense_rank >= 1
    assert 0 < best.dense_score <= 1
    assert best.fused_score > 0
    assert best.rerank_score is not None
    assert best.score == best.rerank_score


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = dict(rrf([["a", "b", "c"], ["c", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert [item for item, _ in rrf([["a", "b", "c"], ["c", "a"]])] == ["a", "c", "b"]


def test_compressed_vectors_rank_the_shipped_policies_like_exact_ones(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, count: TokenCounter
) -> None:
    """A large tenant's vectors are scanned as 8-bit codes; on the real policies (every
    tenant forced over the threshold) the dense ranking stays the exact one."""
    from retrieval.documents import load_dir
    from retrieval.settings import default_vector_cache
    from retrieval.vector_cache import VectorCache
    from runtime import paths
    from runtime.tenants import DEMO_TENANTS

    store = KnowledgeBaseStore(tmp_path_factory.mktemp("kb-compressed"))
    documents = load_dir(paths.data_dir("kb"), tenants=DEMO_TENANTS).documents
    cache = VectorCache(default_vector_cache(), embedder.version)
    ingest(store, embedder, count, upsert=documents, cache=cache)
    exact = Retriever(store, embedder)
    compressed = Retriever(store, embedder, compress_min=1)
    exact.refresh()
    compressed.refresh()
    questions = [
        "how long do I have to send back a jacket?",
        "what does it cost to cancel an order in transit?",
        "my parcel says delivered but it is not here",
        "do gold members get free return shipping?",
        "can I return opened headphones?",
    ]
    same = total = 0
    for tenant in DEMO_TENANTS:
        for question in questions:
            vector = exact.embed(question)
            ranked = [
                [
                    r.chunk.chunk_id
                    for r in retriever.search(
                        tenant_id=tenant,
                        text=question,
                        where=Filter.of(at=AT),
                        mode=Mode.DENSE,
                        top_k=5,
                        vector=vector,
                    ).results
                ]
                for retriever in (exact, compressed)
            ]
            same += len(set(ranked[0]) & set(ranked[1]))
            total += 5
            assert ranked[0][0] == ranked[1][0], question
    assert same / total >= 0.9
