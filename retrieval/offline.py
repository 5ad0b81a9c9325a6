"""The embedding model as the command-line steps run it: ``waybill kb ingest``,
``waybill eval-retrieval`` and ``python -m retrieval.prepare`` build knowledge bases with
the model the service runs, its token counter and the vector cache they all share."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from embeddings import Embedder, EmbedderOptions, ModelFiles, locate
from embeddings.tokenizer import TokenCounter
from retrieval.documents import PolicyDocument
from retrieval.ingest import IngestReport, Screening, ingest
from retrieval.settings import default_vector_cache
from retrieval.store import KnowledgeBaseStore
from retrieval.vector_cache import VectorCache
from runtime.progress import Progress


@dataclass(frozen=True, slots=True)
class OfflineModel:
    """An embedder, its token counter and the shared vector cache."""

    files: ModelFiles
    embedder: Embedder
    cache: VectorCache
    screening: Screening | None = None
    """Injection screening of new chunks (the guardrails' classifier), when available."""

    @classmethod
    def load(cls, *, quantized: bool, cache_dir: Path | None = None) -> OfflineModel:
        """The located model (ModelMissingError if absent); ``cache_dir`` defaults to the
        cache every knowledge base here reads."""
        files = locate()
        embedder = Embedder(files, EmbedderOptions(quantized=quantized, intra_op_threads=2))
        from guardrails.screening import ingest_screening

        return cls(
            files,
            embedder,
            VectorCache(cache_dir or default_vector_cache(), embedder.version),
            ingest_screening(),
        )

    def ingest(
        self,
        store: KnowledgeBaseStore,
        documents: Sequence[PolicyDocument],
        *,
        replace_tenants: Collection[str] = (),
        progress: Progress | None = None,
    ) -> IngestReport:
        """Upsert ``documents`` into ``store`` and publish (:func:`retrieval.ingest.ingest`)."""
        return ingest(
            store,
            self.embedder,
            TokenCounter(self.files.tokenizer),
            upsert=documents,
            replace_tenants=replace_tenants,
            cache=self.cache,
            progress=progress,
            screening=self.screening,
        )
