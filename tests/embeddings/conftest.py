"""Fixtures of the embedding tests."""

from __future__ import annotations

import pytest

from embeddings import Embedder, ModelFiles
from tests.embeddings.model import require_model


@pytest.fixture(scope="session")
def model_files() -> ModelFiles:
    """The exported model (fails clearly when the setup step has not run)."""
    return require_model()


@pytest.fixture(scope="session")
def embedder(model_files: ModelFiles) -> Embedder:
    """One embedder for the session (sessions are thread-safe, loading takes ~0.5 s)."""
    return Embedder(model_files)
