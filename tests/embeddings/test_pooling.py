"""Mean pooling ignores padding; normalisation makes unit rows."""

from __future__ import annotations

import numpy as np

from embeddings.pooling import l2_normalize, mean_pool


def test_mean_pool_averages_only_real_tokens() -> None:
    hidden = np.array(
        [[[1.0, 1.0], [3.0, 5.0], [100.0, 100.0]], [[2.0, 0.0], [4.0, 2.0], [6.0, 4.0]]],
        dtype=np.float32,
    )
    mask = np.array([[1, 1, 0], [1, 1, 1]], dtype=np.int64)
    pooled = mean_pool(hidden, mask)
    np.testing.assert_allclose(pooled, [[2.0, 3.0], [4.0, 2.0]])


def test_l2_normalize_makes_unit_rows_and_survives_zero_rows() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    unit = l2_normalize(vectors)
    np.testing.assert_allclose(unit[0], [0.6, 0.8], rtol=1e-6)
    assert np.all(np.isfinite(unit))
    assert unit.dtype == np.float32
