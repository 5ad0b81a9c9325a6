"""Per-class scores from neighbours."""

from __future__ import annotations

import numpy as np

from router.scoring import class_scores


def test_mean_of_the_top_m_neighbours_per_class() -> None:
    sims = np.array([[0.9, 0.8, 0.7, 0.2]], dtype=np.float32)
    labels = np.array([[1, 2, 1, 2]], dtype=np.int32)
    scores = class_scores(sims, labels, [1, 2], top_m=2)
    np.testing.assert_allclose(scores, [[0.8, 0.5]], rtol=1e-6)


def test_a_class_missing_from_the_neighbours_is_padded_with_the_farthest() -> None:
    sims = np.array([[0.9, 0.6, 0.3]], dtype=np.float32)
    labels = np.array([[1, 1, 1]], dtype=np.int32)
    scores = class_scores(sims, labels, [1, 3], top_m=2)
    # class 3 has no neighbour: both slots take the farthest similarity returned.
    np.testing.assert_allclose(scores, [[0.75, 0.3]], rtol=1e-6)


def test_top_one_is_the_nearest_exemplar_per_class() -> None:
    sims = np.array([[0.9, 0.8], [0.7, 0.1]], dtype=np.float32)
    labels = np.array([[2, 1], [1, 2]], dtype=np.int32)
    np.testing.assert_allclose(
        class_scores(sims, labels, [1, 2], top_m=1), [[0.8, 0.9], [0.7, 0.1]], rtol=1e-6
    )
