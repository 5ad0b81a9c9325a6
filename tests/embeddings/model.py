"""The exported model, for tests that need it: a clear failure when it is missing.

``make test`` runs the setup step that exports it; a bare ``pytest`` after a
fresh checkout fails here with the command to run, instead of skipping.
"""

from __future__ import annotations

import pytest

from embeddings import ModelFiles, ModelMissingError, locate


def require_model() -> ModelFiles:
    """The current export, or a test failure naming the setup command."""
    try:
        return locate()
    except ModelMissingError as exc:
        pytest.fail(f"these tests need the exported embedding model: {exc}", pytrace=False)
