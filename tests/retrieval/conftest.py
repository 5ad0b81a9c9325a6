"""Fixtures of the retrieval tests: the real embedding model, documents written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from embeddings import Embedder, EmbedderOptions, ModelFiles
from embeddings.tokenizer import TokenCounter
from retrieval.documents import PolicyDocument, parse_markdown
from retrieval.store import KnowledgeBaseStore
from retrieval.vector_cache import VectorCache
from runtime.tenants import DEMO_TENANTS
from tests.embeddings.model import require_model

TENANTS = DEMO_TENANTS


@pytest.fixture(scope="session")
def model_files() -> ModelFiles:
    """The exported model (fails clearly when the setup step has not run)."""
    return require_model()


@pytest.fixture(scope="session")
def embedder(model_files: ModelFiles) -> Embedder:
    """The embedder retrieval runs by default (fp32)."""
    return Embedder(model_files, EmbedderOptions(max_batch=32))


@pytest.fixture(scope="session")
def count(model_files: ModelFiles) -> TokenCounter:
    """The model's word-piece counter."""
    return TokenCounter(model_files.tokenizer)


@pytest.fixture
def store(tmp_path: Path) -> KnowledgeBaseStore:
    """An empty knowledge base directory."""
    return KnowledgeBaseStore(tmp_path / "kb")


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> VectorCache:
    """A vector cache shared by the session's tests (a fresh KB per test stays cheap)."""
    return VectorCache(tmp_path_factory.mktemp("kb-vectors"), embedder.version)


def document_text(
    *,
    doc_id: str,
    tenant: str = "acme-retail",
    region: str = "US",
    category: str = "electronics",
    version: str = "2026.1",
    effective: str = "2026-01-01",
    expires: str | None = None,
    sections: dict[str, str] | None = None,
    rules: str = "",
) -> str:
    """A policy document as a file would hold it."""
    body = sections or {"Return window": "Items may be returned within 30 days of delivery."}
    lines = [
        "---",
        f"doc_id: {doc_id}",
        f"title: Policy {doc_id}",
        f"client_id: {tenant}",
        f'region: "{region}"',
        f'product_category: "{category}"',
        f'policy_version: "{version}"',
        f"effective_date: {effective}",
        f"source_doc: REF-{doc_id.upper()}",
    ]
    if expires:
        lines.append(f"expires_date: {expires}")
    if rules:
        lines.append(rules.rstrip())
    lines += ["---", f"# Policy {doc_id}", ""]
    for heading, text in body.items():
        lines += [f"## {heading}", text, ""]
    return "\n".join(lines)


MakeDocument = Callable[..., PolicyDocument]


def document_maker() -> MakeDocument:
    """A PolicyDocument from ``document_text``'s keywords."""

    def make(**kwargs: object) -> PolicyDocument:
        return parse_markdown(
            document_text(**kwargs),  # type: ignore[arg-type]
            source=f"{kwargs.get('doc_id')}.md",
            tenants=TENANTS,
        )

    return make


@pytest.fixture
def make_document() -> MakeDocument:
    """A PolicyDocument from ``document_text``'s keywords."""
    return document_maker()
