"""RetrievalService servicer: translate proto <-> the retriever and ingestion, nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime

import grpc
from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2
from waybill.retrieval.v1 import retrieval_service_pb2 as pb
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from retrieval.chunking import ChunkOptions, CountTokens
from retrieval.documents import DocumentRejected, from_proto
from retrieval.filters import Filter
from retrieval.ingest import IngestReport, Screening, UnknownDocument, ingest
from retrieval.retriever import NotReady, Retriever
from retrieval.search import Mode, Result
from retrieval.vector_cache import VectorCache
from runtime import context
from runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

MODES = {
    pb.SEARCH_MODE_UNSPECIFIED: None,
    pb.SEARCH_MODE_LEXICAL: Mode.LEXICAL,
    pb.SEARCH_MODE_DENSE: Mode.DENSE,
    pb.SEARCH_MODE_HYBRID: Mode.HYBRID,
    pb.SEARCH_MODE_HYBRID_RERANK: Mode.HYBRID_RERANK,
}
DEFAULT_TOP_K = 5


def _ts(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _when(stamp: timestamp_pb2.Timestamp, present: bool) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC) if present else datetime.now(UTC)


def _chunk(result: Result) -> pb.Chunk:
    c = result.chunk
    return pb.Chunk(
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        section=c.section,
        text=c.text,
        score=result.score,
        region=c.region,
        product_category=c.product_category,
        policy_version=c.policy_version,
        effective_time=_ts(c.effective),
        expire_time=_ts(c.expires),
        title=c.title,
        source_doc=c.source_doc,
        scores=pb.StageScores(
            lexical_score=result.lexical_score,
            lexical_rank=result.lexical_rank,
            dense_score=result.dense_score,
            dense_rank=result.dense_rank,
            fused_score=result.fused_score,
            rerank_score=result.rerank_score or 0.0,
        ),
    )


def _own_tenant(tenant_id: str) -> None:
    """A caller acting for one tenant (metadata) cannot name another in the request."""
    acting = context.tenant_id.get()
    if acting and acting != tenant_id:
        raise PermissionDenied(
            "the request names another tenant than the caller acts for",
            reason="TENANT_MISMATCH",
        )


class RetrievalServicer(pb_grpc.RetrievalServiceServicer):
    """Search and return windows from the served version; ingestion publishes new ones."""

    def __init__(
        self,
        retriever: Retriever,
        *,
        count: CountTokens,
        tenants: Collection[str],
        writable: bool,
        cache: VectorCache | None = None,
        chunking: ChunkOptions | None = None,
        screening: Screening | None = None,
    ) -> None:
        self._retriever = retriever
        self._count = count
        self._tenants = frozenset(tenants)
        self._writable = writable
        self._cache = cache
        self._chunking = chunking or ChunkOptions()
        self._screening = screening
        # One publish at a time per process (the store's file lock orders processes).
        self._writer = asyncio.Lock()

    async def Search(
        self, request: pb.SearchRequest, context_: grpc.aio.ServicerContext
    ) -> pb.SearchResponse:
        _own_tenant(request.tenant_id)
        f = request.filters
        where = Filter.of(
            region=f.region,
            product_category=f.product_category,
            policy_version=f.policy_version,
            at=_when(f.effective_time, f.HasField("effective_time")),
        )
        try:
            # Off the event loop: the model, BM25 and faiss release the GIL, and the loop
            # keeps serving other calls meanwhile.
            found = await asyncio.to_thread(
                lambda: self._retriever.search(
                    tenant_id=request.tenant_id,
                    text=request.query,
                    where=where,
                    mode=MODES[request.mode],
                    top_k=request.top_k or DEFAULT_TOP_K,
                )
            )
        except NotReady:
            raise Unavailable(
                "the knowledge base is loading", reason="INDEX_NOT_READY", retry_after_s=1.0
            ) from None
        return pb.SearchResponse(
            chunks=[_chunk(r) for r in found.results], index_version=found.version
        )

    async def GetReturnWindow(
        self, request: pb.GetReturnWindowRequest, context_: grpc.aio.ServicerContext
    ) -> pb.GetReturnWindowResponse:
        _own_tenant(request.tenant_id)
        tier = customer_pb2.CustomerTier.Name(request.tier).removeprefix("CUSTOMER_TIER_").lower()
        try:
            version, window = self._retriever.return_window(
                tenant_id=request.tenant_id,
                sku=request.sku,
                tier=tier,
                region=request.region,
                product_category=request.product_category,
                at=_when(request.as_of_time, request.HasField("as_of_time")),
            )
        except NotReady:
            raise Unavailable(
                "the knowledge base is loading", reason="INDEX_NOT_READY", retry_after_s=1.0
            ) from None
        if window is None:
            raise NotFound(
                "no return rule in force covers this product here", reason="RETURN_RULE_NOT_FOUND"
            )
        return pb.GetReturnWindowResponse(
            returnable=window.returnable,
            days=window.days,
            base_days=window.base_days,
            tier_extra_days=window.tier_extra_days,
            sku_rule=window.sku_rule,
            doc_id=window.document.doc_id,
            chunk_id=window.chunk_id,
            policy_version=window.document.policy_version,
            index_version=version,
            chunks=[_chunk(Result(row=-1, chunk=c)) for c in window.chunks],
        )

    async def _publish(self, **changes: object) -> IngestReport:
        if not self._writable:
            raise FailedPrecondition(
                "this replica serves a read-only knowledge base; publish with `waybill kb ingest`",
                reason="KB_READ_ONLY",
            )
        async with self._writer:
            report = await asyncio.to_thread(
                lambda: ingest(
                    self._retriever.store,
                    self._retriever.embedder,
                    self._count,
                    options=self._chunking,
                    cache=self._cache,
                    screening=self._screening,
                    **changes,  # type: ignore[arg-type]
                )
            )
            # Serve what was just published before answering: read-your-writes.
            await asyncio.to_thread(self._retriever.refresh)
        return report

    async def IngestDocuments(
        self, request: pb.IngestDocumentsRequest, context_: grpc.aio.ServicerContext
    ) -> pb.IngestDocumentsResponse:
        _own_tenant(request.tenant_id)
        if request.tenant_id not in self._tenants:
            raise NotFound("no knowledge base for this tenant", reason="TENANT_UNKNOWN")
        seen: set[str] = set()
        documents = []
        for i, document in enumerate(request.documents):
            if document.doc_id in seen:
                raise InvalidArgument(
                    f"documents[{i}]: doc_id {document.doc_id!r} appears twice",
                    reason="DOCUMENT_REJECTED",
                    metadata={"doc_id": document.doc_id, "rule_id": "document.duplicate_id"},
                )
            seen.add(document.doc_id)
            try:
                documents.append(from_proto(request.tenant_id, document, tenants=self._tenants))
            except DocumentRejected as exc:
                # Nothing of the request is ingested: it is accepted whole or not at all.
                raise InvalidArgument(
                    f"documents[{i}]: {exc.reason}",
                    reason="DOCUMENT_REJECTED",
                    metadata={"doc_id": document.doc_id, "rule_id": exc.rule},
                ) from None
        report = await self._publish(upsert=documents)
        return pb.IngestDocumentsResponse(
            chunks_indexed=report.chunks_indexed,
            chunks_unchanged=report.chunks_unchanged,
            chunks_removed=report.chunks_removed,
            index_version=report.version or "",
            documents_quarantined=[d.split("/", 1)[1] for d in report.documents_quarantined],
            chunks_flagged=report.chunks_flagged,
        )

    async def DeleteDocument(
        self, request: pb.DeleteDocumentRequest, context_: grpc.aio.ServicerContext
    ) -> pb.DeleteDocumentResponse:
        _own_tenant(request.tenant_id)
        try:
            report = await self._publish(delete=[(request.tenant_id, request.doc_id)])
        except UnknownDocument:
            raise NotFound(
                "no document with this id in the tenant's knowledge base",
                reason="DOCUMENT_NOT_FOUND",
            ) from None
        return pb.DeleteDocumentResponse(
            chunks_deleted=report.chunks_removed, index_version=report.version or ""
        )
