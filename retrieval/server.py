"""Wiring of the retrieval process: the embedder, the knowledge base, the servicer."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from embeddings import Embedder, EmbedderOptions
from embeddings.store import locate
from embeddings.tokenizer import TokenCounter
from guardrails.screening import ingest_screening
from retrieval.documents import load_dir
from retrieval.ingest import Screening, ingest
from retrieval.retriever import Retriever
from retrieval.search import Mode, SearchOptions
from retrieval.service import RetrievalServicer
from retrieval.settings import RetrievalSettings
from retrieval.store import KnowledgeBaseStore
from retrieval.vector_cache import VectorCache
from runtime import mesh
from runtime.progress import log_progress
from runtime.server import Registration, serve

log = logging.getLogger("waybill.retrieval")
SERVICE = mesh.spec("retrieval").grpc_services[0]


def seed(
    settings: RetrievalSettings,
    store: KnowledgeBaseStore,
    embedder: Embedder,
    count: TokenCounter,
    cache: VectorCache | None,
    *,
    screening: Screening | None = None,
) -> None:
    """Ingest the seed documents into a knowledge base that has no version yet."""
    if settings.seed_dir is None or not settings.writable or store.current() is not None:
        return
    loaded = load_dir(settings.seed_dir, tenants=settings.tenants)
    for rejected in loaded.rejected:
        log.warning(
            "seed document rejected", extra={"file": rejected.source, "rule": rejected.rule}
        )
    report = ingest(
        store,
        embedder,
        count,
        upsert=loaded.documents,
        cache=cache,
        screening=screening,
        progress=log_progress(log, "embedding knowledge-base windows"),
    )
    log.info("knowledge base seeded", extra=report.to_json())


async def main() -> None:
    """Serve the knowledge base directory's current version."""
    settings = RetrievalSettings.from_env()
    files = locate()
    embedder = Embedder(
        files, EmbedderOptions(quantized=settings.quantized, cache_size=10_000, max_batch=32)
    )
    count = TokenCounter(files.tokenizer)
    store = KnowledgeBaseStore(settings.kb_dir)
    cache = VectorCache(settings.vector_cache, embedder.version) if settings.vector_cache else None
    options = SearchOptions(default_mode=Mode.HYBRID_RERANK if settings.rerank else Mode.HYBRID)
    retriever = Retriever(store, embedder, options=options, compress_min=settings.compress_min)
    # A writable replica screens what it ingests with the guardrails' classifier.
    screening = ingest_screening() if settings.writable else None
    servicer = RetrievalServicer(
        retriever,
        count=count,
        tenants=settings.tenants,
        writable=settings.writable,
        cache=cache,
        screening=screening,
    )
    follower: asyncio.Task[None] | None = None

    async def ready() -> None:
        nonlocal follower
        await asyncio.to_thread(
            lambda: seed(settings, store, embedder, count, cache, screening=screening)
        )
        await asyncio.to_thread(retriever.refresh)
        await asyncio.to_thread(embedder.warm)
        follower = asyncio.create_task(retriever.follow(settings.poll_s))

    async def on_stop() -> None:
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    await serve(
        settings.service,
        [Registration(SERVICE, pb_grpc.add_RetrievalServiceServicer_to_server, servicer)],
        ready=ready,
        on_stop=on_stop,
    )
