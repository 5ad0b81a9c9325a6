"""RetrievalService over a real aio server: searches, return windows, ingestion and
every kind of bad input, each with its precise status and rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2
from waybill.retrieval.v1 import retrieval_service_pb2 as pb
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from embeddings import Embedder
from embeddings.tokenizer import TokenCounter
from retrieval.ingest import ingest
from retrieval.retriever import Retriever
from retrieval.service import RetrievalServicer
from retrieval.settings import RetrievalSettings
from retrieval.store import KnowledgeBaseStore
from runtime import mesh
from runtime.errors import error_info_of, violations_of
from runtime.server import Registration
from runtime.settings import SettingsError
from tests.conftest import StartServer
from tests.retrieval.conftest import TENANTS, MakeDocument

SERVICE = mesh.spec("retrieval").grpc_services[0]
RULES = (
    "return_rules:\n  window_days: 30\n  tier_extra_days: {gold: 15, platinum: 30}\n"
    "  sku_days: {SKU-9942-B: 14}\n  non_returnable_skus: [SKU-2210-B]"
)


def _ts(day: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(day).replace(tzinfo=UTC))
    return stamp


async def _stub(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    servicer: RetrievalServicer,
) -> pb_grpc.RetrievalServiceStub:
    address = await serve(
        "retrieval",
        [Registration(SERVICE, pb_grpc.add_RetrievalServiceServicer_to_server, servicer)],
    )
    return pb_grpc.RetrievalServiceStub(channels(address))


@pytest.fixture
def servicer(
    store: KnowledgeBaseStore, embedder: Embedder, count: TokenCounter, make_document: MakeDocument
) -> RetrievalServicer:
    ingest(
        store,
        embedder,
        count,
        upsert=[
            make_document(
                doc_id="acme-returns",
                rules=RULES,
                sections={
                    "Return window": "Electronics may be returned within 30 days of delivery.",
                    "Chargers": "The USB-C charger SKU-9942-B may be returned within 14 days.",
                    "Hygiene": "Opened in-ear headphones SKU-2210-B cannot be returned.",
                    "Tiers": "Gold members get 15 extra days and platinum members 30.",
                },
            ),
            make_document(
                doc_id="acme-returns-ca",
                region="US-CA",
                rules="return_rules:\n  window_days: 45",
                sections={"California": "Customers in California have 45 days."},
            ),
            make_document(
                doc_id="globex-returns",
                tenant="globex-home",
                region="DE",
                sections={"Chargers": "Globex chargers SKU-9942-B: 30 days."},
            ),
        ],
    )
    retriever = Retriever(store, embedder)
    retriever.refresh()
    return RetrievalServicer(retriever, count=count, tenants=TENANTS, writable=True)


async def test_search_returns_chunks_with_scores_and_version(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], servicer: RetrievalServicer
) -> None:
    stub = await _stub(serve, channels, servicer)
    reply = await stub.Search(
        pb.SearchRequest(
            tenant_id="acme-retail",
            query="return the charger SKU-9942-B",
            filters=pb.SearchFilters(region="US-NY", product_category="electronics"),
            top_k=2,
        )
    )
    assert len(reply.chunks) == 2
    best = reply.chunks[0]
    assert best.chunk_id == "acme-returns#chargers"
    assert (best.title, best.section, best.policy_version) == (
        "Policy acme-returns",
        "Chargers",
        "2026.1",
    )
    assert best.scores.lexical_rank == 1
    assert best.scores.fused_score > 0
    assert reply.index_version.startswith("v00001-")
    assert all(c.chunk_id != "acme-returns-ca#california" for c in reply.chunks)


@pytest.mark.parametrize(
    ("request_", "rules"),
    [
        (pb.SearchRequest(query="return window"), {("tenant_id", "string.pattern")}),
        (pb.SearchRequest(tenant_id="acme-retail", query="x"), {("query", "string.min_len")}),
        (
            pb.SearchRequest(tenant_id="acme-retail", query="fees", top_k=21),
            {("top_k", "int32.gte_lte")},
        ),
        (
            pb.SearchRequest(
                tenant_id="acme-retail", query="fees", filters=pb.SearchFilters(region="usa")
            ),
            {("filters.region", "string.pattern")},
        ),
        (
            pb.SearchRequest(tenant_id="acme-retail", query="fees", mode=99),  # type: ignore[arg-type]
            {("mode", "enum.defined_only")},
        ),
    ],
)
async def test_bad_searches_name_the_violated_rule(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    servicer: RetrievalServicer,
    request_: pb.SearchRequest,
    rules: set[tuple[str, str]],
) -> None:
    stub = await _stub(serve, channels, servicer)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Search(request_)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {(v.field, v.reason) for v in violations_of(raised.value)} == rules


async def test_a_caller_acting_for_one_tenant_cannot_search_another(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], servicer: RetrievalServicer
) -> None:
    stub = await _stub(serve, channels, servicer)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Search(
            pb.SearchRequest(tenant_id="globex-home", query="chargers"),
            metadata=(("x-waybill-tenant", "acme-retail"),),
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "TENANT_MISMATCH"


@pytest.mark.parametrize(
    ("sku", "tier", "region", "expected"),
    [
        ("SKU-9942-B", customer_pb2.CUSTOMER_TIER_GOLD, "US-NY", (True, 29, 14, 15, True)),
        ("SKU-9942-A", customer_pb2.CUSTOMER_TIER_STANDARD, "US-NY", (True, 30, 30, 0, False)),
        ("SKU-9942-A", customer_pb2.CUSTOMER_TIER_PLATINUM, "US-NY", (True, 60, 30, 30, False)),
        ("SKU-2210-B", customer_pb2.CUSTOMER_TIER_GOLD, "US-NY", (False, 0, 0, 0, True)),
        # The SKU rule is more specific than California's general window...
        ("SKU-9942-B", customer_pb2.CUSTOMER_TIER_STANDARD, "US-CA", (True, 14, 14, 0, True)),
        # ...which beats the country's for every other product there.
        ("SKU-5005-A", customer_pb2.CUSTOMER_TIER_STANDARD, "US-CA", (True, 45, 45, 0, False)),
    ],
)
async def test_return_windows_pick_the_most_specific_rule(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    servicer: RetrievalServicer,
    sku: str,
    tier: customer_pb2.CustomerTier,
    region: str,
    expected: tuple[bool, int, int, int, bool],
) -> None:
    stub = await _stub(serve, channels, servicer)
    reply = await stub.GetReturnWindow(
        pb.GetReturnWindowRequest(
            tenant_id="acme-retail",
            sku=sku,
            tier=tier,
            region=region,
            product_category="electronics",
        )
    )
    got = (reply.returnable, reply.days, reply.base_days, reply.tier_extra_days, reply.sku_rule)
    assert got == expected
    assert reply.chunks[0].chunk_id == reply.chunk_id
    if reply.sku_rule:
        assert sku in reply.chunks[0].text
    if reply.tier_extra_days:
        # The tier's figure is cited too: the answer states it.
        assert any(str(reply.tier_extra_days) in c.text for c in reply.chunks)


async def test_no_rule_in_force_is_not_found(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], servicer: RetrievalServicer
) -> None:
    stub = await _stub(serve, channels, servicer)
    for request in (
        pb.GetReturnWindowRequest(
            tenant_id="acme-retail",
            sku="SKU-9942-B",
            tier=customer_pb2.CUSTOMER_TIER_STANDARD,
            as_of_time=_ts("2025-01-01"),
        ),
        pb.GetReturnWindowRequest(
            tenant_id="globex-home", sku="SKU-9942-B", tier=customer_pb2.CUSTOMER_TIER_STANDARD
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetReturnWindow(request)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        info = error_info_of(raised.value)
        assert info is not None
        assert info.reason == "RETURN_RULE_NOT_FOUND"


def _document(doc_id: str, body: str, **fields: object) -> pb.Document:
    return pb.Document(
        doc_id=doc_id,
        title=f"Policy {doc_id}",
        body=body,
        region="US",
        policy_version="2026.5",
        source_doc="REF-1",
        effective_time=_ts("2026-01-01"),
        **fields,  # type: ignore[arg-type]
    )


async def test_ingest_publishes_a_version_the_next_search_sees(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], servicer: RetrievalServicer
) -> None:
    stub = await _stub(serve, channels, servicer)
    reply = await stub.IngestDocuments(
        pb.IngestDocumentsRequest(
            tenant_id="acme-retail",
            documents=[_document("acme-gift", "## Gift wrapping\nGift wrapping costs 5 USD.")],
        )
    )
    assert (reply.chunks_indexed, reply.chunks_removed) == (1, 0)
    assert reply.index_version.startswith("v00002-")
    found = await stub.Search(pb.SearchRequest(tenant_id="acme-retail", query="gift wrapping"))
    assert found.index_version == reply.index_version
    assert found.chunks[0].chunk_id == "acme-gift#gift-wrapping"
    deleted = await stub.DeleteDocument(
        pb.DeleteDocumentRequest(tenant_id="acme-retail", doc_id="acme-gift")
    )
    assert deleted.chunks_deleted == 1
    again = await stub.Search(pb.SearchRequest(tenant_id="acme-retail", query="gift wrapping"))
    assert again.index_version == deleted.index_version
    assert all(c.doc_id != "acme-gift" for c in again.chunks)


@pytest.mark.parametrize(
    ("documents", "rule"),
    [
        ([_document("acme-new", "no headings at all")], "document.no_sections"),
        (
            [_document("acme-new", "## A\nx\n## a\ny")],
            "document.duplicate_heading",
        ),
        (
            [_document("acme-ok", "## A\nfine"), _document("acme-ok", "## B\nfine")],
            "document.duplicate_id",
        ),
    ],
)
async def test_a_rejected_document_rejects_the_request_whole(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    servicer: RetrievalServicer,
    documents: list[pb.Document],
    rule: str,
) -> None:
    stub = await _stub(serve, channels, servicer)
    before = servicer._retriever.store.current()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.IngestDocuments(
            pb.IngestDocumentsRequest(tenant_id="acme-retail", documents=documents)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(raised.value)
    assert info is not None
    assert (info.reason, info.metadata["rule_id"]) == ("DOCUMENT_REJECTED", rule)
    assert servicer._retriever.store.current() == before


async def test_contract_rules_reject_a_document_before_the_servicer(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], servicer: RetrievalServicer
) -> None:
    stub = await _stub(serve, channels, servicer)
    no_date = _document("acme-x", "## A\nx")
    no_date.ClearField("effective_time")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.IngestDocuments(
            pb.IngestDocumentsRequest(
                tenant_id="acme-retail", documents=[no_date, _document("Bad Id", "## A\nx")]
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {(v.field, v.reason) for v in violations_of(raised.value)} == {
        ("documents[0].effective_time", "required"),
        ("documents[1].doc_id", "string.pattern"),
    }


async def test_a_read_only_replica_refuses_to_publish_and_unknown_deletes_are_not_found(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], servicer: RetrievalServicer
) -> None:
    stub = await _stub(serve, channels, servicer)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.DeleteDocument(pb.DeleteDocumentRequest(tenant_id="acme-retail", doc_id="nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    read_only = RetrievalServicer(
        servicer._retriever, count=servicer._count, tenants=TENANTS, writable=False
    )
    stub = await _stub(serve, channels, read_only)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.IngestDocuments(
            pb.IngestDocumentsRequest(
                tenant_id="acme-retail", documents=[_document("acme-new", "## A\nx")]
            )
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "KB_READ_ONLY"


async def test_before_a_version_is_loaded_searches_are_unavailable_with_retry_info(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    store: KnowledgeBaseStore,
    embedder: Embedder,
    count: TokenCounter,
) -> None:
    empty = RetrievalServicer(
        Retriever(store, embedder), count=count, tenants=TENANTS, writable=True
    )
    stub = await _stub(serve, channels, empty)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Search(pb.SearchRequest(tenant_id="acme-retail", query="return window"))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "INDEX_NOT_READY"


def test_settings_name_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RetrievalSettings.from_env().service.name == "retrieval"
    monkeypatch.setenv("WAYBILL_KB_POLL_S", "often")
    with pytest.raises(SettingsError, match="WAYBILL_KB_POLL_S"):
        RetrievalSettings.from_env()
    monkeypatch.delenv("WAYBILL_KB_POLL_S")
    monkeypatch.setenv("WAYBILL_KB_SEED_DIR", "/nonexistent/policies")
    with pytest.raises(SettingsError, match="WAYBILL_KB_SEED_DIR"):
        RetrievalSettings.from_env()
