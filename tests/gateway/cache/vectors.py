"""A stand-in embedder whose cosines the test chooses exactly."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from embeddings.pooling import FloatArray

DIM = 64


def unit(i: int) -> FloatArray:
    """The i-th axis."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def at_cosine(cosine: float, *, base: int = 0, towards: int = 1) -> FloatArray:
    """A unit vector whose cosine to ``unit(base)`` is ``cosine``."""
    v = cosine * unit(base) + math.sqrt(max(0.0, 1 - cosine**2)) * unit(towards)
    return v.astype(np.float32)


def scattered(text: str) -> FloatArray:
    """A fixed pseudo-random unit vector per text (two texts: cosine far below 0.95)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8]))
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class TableEmbedder:
    """Vectors looked up by normalised text, else :func:`scattered`; the texts it was asked
    for are recorded."""

    def __init__(self, table: dict[str, FloatArray]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, text: str) -> FloatArray:
        self.asked.append(text)
        return self.table.get(text, scattered(text))
