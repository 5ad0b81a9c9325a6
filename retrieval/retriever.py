"""The version a retrieval process serves, and the searches it runs on it.

The served version is one reference: a refresh loads the version ``CURRENT``
names beside the old one and swaps the reference, so a search in progress
finishes on the version it started with and every search sees exactly one.
Every replica pointed at the same knowledge base directory serves the version
published there, whoever published it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter, Gauge

from embeddings.pooling import FloatArray
from retrieval.filters import Filter
from retrieval.ingest import TextEmbedder
from retrieval.rules import ReturnWindow, return_window
from retrieval.search import Mode, Result, SearchOptions, search
from retrieval.store import KnowledgeBaseStore, StoreError
from retrieval.synonyms import for_embedding
from retrieval.version import LoadedVersion

log = logging.getLogger("waybill.retrieval")

SWAPS = Counter("waybill_retrieval_index_swaps_total", "Index versions loaded and swapped in.")
CHUNKS = Gauge(
    "waybill_retrieval_chunks", "Chunks in the served index version, by tenant.", ["tenant"]
)
SEARCHES = Counter("waybill_retrieval_searches_total", "Searches, by mode.", ["mode"])


class NotReady(RuntimeError):
    """No index version is loaded yet."""


@dataclass(frozen=True, slots=True)
class Searched:
    """A search's results and the version they come from."""

    version: str
    results: list[Result]


class Retriever:
    """Serves the current version of one knowledge base directory."""

    def __init__(
        self,
        store: KnowledgeBaseStore,
        embedder: TextEmbedder,
        *,
        options: SearchOptions | None = None,
        compress_min: int = 50_000,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options or SearchOptions()
        self._compress_min = compress_min
        self._loaded: LoadedVersion | None = None
        self._refresh_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="embed")

    @property
    def loaded(self) -> LoadedVersion | None:
        """The served version."""
        return self._loaded

    def refresh(self) -> bool:
        """Load the version ``CURRENT`` names if it is not the served one; True on a swap."""
        with self._refresh_lock:
            wanted = self.store.current()
            current = self._loaded
            if wanted is None or (current is not None and current.version == wanted):
                return False
            loaded = LoadedVersion(self.store.path(wanted), compress_min=self._compress_min)
            self._loaded = loaded  # the swap: one reference
            SWAPS.inc()
            counts: dict[str, int] = {}
            for stored in loaded.chunks:
                counts[stored.chunk.tenant_id] = counts.get(stored.chunk.tenant_id, 0) + 1
            for tenant, n in counts.items():
                CHUNKS.labels(tenant).set(n)
            log.info(
                "index version loaded",
                extra={"version": wanted, "chunks": len(loaded.chunks), "tenants": len(counts)},
            )
            return True

    async def follow(self, interval_s: float) -> None:
        """Poll ``CURRENT`` and swap in new versions until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self.refresh)
            except StoreError as exc:
                log.warning("index version not loaded", extra={"error": str(exc)})

    def _version(self) -> LoadedVersion:
        loaded = self._loaded
        if loaded is None:
            raise NotReady("no index version is loaded yet")
        return loaded

    def embed(self, text: str) -> FloatArray:
        """The query's vector (of the query and its policy terms, ``synonyms.for_embedding``)."""
        vector: FloatArray = self.embedder.embed([for_embedding(text)])[0]
        return vector

    def search(
        self,
        *,
        tenant_id: str,
        text: str,
        where: Filter,
        mode: Mode | None,
        top_k: int,
        vector: FloatArray | None = None,
    ) -> Searched:
        """Search the served version (embeds the query when the mode needs it)."""
        loaded = self._version()
        chosen = mode or self.options.default_mode
        pending: Future[FloatArray] | None = None
        if chosen.needs_vector and vector is None:
            # The model and BM25 both release the GIL: embed while the lexical stage runs.
            pending = self._pool.submit(self.embed, text)
        SEARCHES.labels(chosen.value).inc()
        results = search(
            loaded,
            tenant_id=tenant_id,
            text=text,
            vector=pending.result if pending is not None else vector,
            where=where,
            mode=chosen,
            top_k=top_k,
            options=self.options,
        )
        return Searched(loaded.version, results)

    def return_window(
        self,
        *,
        tenant_id: str,
        sku: str,
        tier: str,
        region: str,
        product_category: str,
        at: datetime,
    ) -> tuple[str, ReturnWindow | None]:
        """The return window from the served version's rules, and the version."""
        loaded = self._version()
        found = return_window(
            loaded.documents.values(),
            loaded.chunks_of,
            tenant_id=tenant_id,
            sku=sku,
            tier=tier,
            region=region,
            product_category=product_category,
            at=at,
        )
        return loaded.version, found
