"""The exemplar index returns exactly what an exhaustive faiss search returns."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from router.index import ExemplarIndex


@pytest.mark.parametrize(("queries", "k"), [(1, 64), (32, 64), (5, 3), (4, 500)])
def test_search_matches_faiss_flat(queries: int, k: int) -> None:
    rng = np.random.default_rng(queries * 1000 + k)
    vectors = rng.standard_normal((400, 48)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = rng.integers(0, 9, size=400).astype(np.int32)
    q = vectors[:queries] + 0.1 * rng.standard_normal((queries, 48)).astype(np.float32)
    index = ExemplarIndex(vectors, labels)
    sims, found = index.search(q, k)
    flat = faiss.IndexFlatIP(48)
    flat.add(vectors)
    want_sims, want_ids = flat.search(q, min(k, 400))
    assert sims.shape == want_sims.shape
    np.testing.assert_allclose(sims, want_sims, rtol=1e-5, atol=1e-5)
    # Ties aside, the same neighbours in the same order.
    np.testing.assert_array_equal(found, labels[want_ids])
    assert np.all(np.diff(sims, axis=1) <= 1e-6)


def test_an_index_needs_vectors() -> None:
    with pytest.raises(ValueError, match="at least one vector"):
        ExemplarIndex(np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int32))
