"""Mean pooling over real tokens and L2 normalisation (sentence-transformers' recipe)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
# Guards the division for an all-padding row; a real text always has [CLS] and [SEP].
_EPS = 1e-9


def mean_pool(hidden: FloatArray, mask: npt.NDArray[np.int64]) -> FloatArray:
    """Average of the token vectors that the attention mask marks as real."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.maximum(weights.sum(axis=1), _EPS)
    pooled: FloatArray = (summed / counts).astype(np.float32)
    return pooled


def l2_normalize(vectors: FloatArray) -> FloatArray:
    """Unit-length rows, so that inner product is cosine similarity."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: FloatArray = (vectors / np.maximum(norms, _EPS)).astype(np.float32)
    return unit
