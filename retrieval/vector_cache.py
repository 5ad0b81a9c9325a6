"""Window vectors kept across knowledge bases, keyed by model version and text.

A fresh knowledge base directory (a new embedded run, a test) would otherwise
embed every window again; with the cache, ingesting the demo policies is a
file read per window. One ``.npy`` file per text under
``<dir>/<model version>/<hash[:2]>/<hash>.npy``, written atomically, so several
processes may fill it at once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.pooling import FloatArray


class VectorCache:
    """Vectors by text for one model version."""

    def __init__(self, root: Path, model_version: str) -> None:
        self.root = Path(root) / model_version

    def _path(self, text: str) -> Path:
        digest = hashlib.sha256(text.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.npy"

    def get(self, texts: Sequence[str]) -> dict[int, FloatArray]:
        """Cached vectors of ``texts`` by position; unreadable entries count as missing."""
        found: dict[int, FloatArray] = {}
        for i, text in enumerate(texts):
            path = self._path(text)
            try:
                vector = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                continue
            if vector.ndim == 1 and vector.dtype == np.float32:
                found[i] = vector
        return found

    def put(self, texts: Sequence[str], vectors: FloatArray) -> None:
        """Store vectors; a read-only or full disk only costs the cache."""
        for text, vector in zip(texts, vectors, strict=True):
            path = self._path(text)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, np.asarray(vector, dtype=np.float32), allow_pickle=False)
                os.replace(tmp, path)
            except OSError:
                return
