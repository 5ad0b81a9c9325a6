"""The exemplar index: exact inner-product search over unit vectors (= cosine).

One matrix product and a partial sort in numpy. At the corpus's size (6,400 vectors
of 384 floats) that is exact and fast for one query and for a batch; faiss's flat
index, built for far larger sets, took 4x as long for a batch of 32 with k = 64
here (``python -m bench --scenario classify`` prints both in the same run), and
its graph indexes would only add build time and recall loss at this size.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from embeddings.pooling import FloatArray

LabelArray = npt.NDArray[np.int32]


class ExemplarIndex:
    """Immutable once built; a new exemplar set is a new index (swapped whole)."""

    def __init__(self, vectors: FloatArray, labels: LabelArray) -> None:
        if vectors.ndim != 2 or len(vectors) != len(labels) or not len(vectors):
            raise ValueError("an index needs one label per vector and at least one vector")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, LabelArray]:
        """Similarities and labels of the ``k`` nearest exemplars per query, nearest first."""
        k = min(k, len(self))
        all_sims = np.asarray(queries, dtype=np.float32) @ self.vectors.T
        if k < len(self):
            ids = np.argpartition(-all_sims, k - 1, axis=1)[:, :k]
        else:
            ids = np.broadcast_to(np.arange(len(self)), all_sims.shape).copy()
        sims = np.take_along_axis(all_sims, ids, axis=1)
        order = np.argsort(-sims, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)
        return np.take_along_axis(sims, order, axis=1), self.labels[ids]

    def extended(self, vectors: FloatArray, labels: LabelArray) -> ExemplarIndex:
        """A new index with these exemplars added (this one is left untouched)."""
        return ExemplarIndex(
            np.concatenate([self.vectors, vectors]), np.concatenate([self.labels, labels])
        )


def merge_neighbours(
    first: tuple[FloatArray, LabelArray], second: tuple[FloatArray, LabelArray], k: int
) -> tuple[FloatArray, LabelArray]:
    """The ``k`` nearest of two searches' neighbour lists per query, nearest first.

    On equal similarity the first list's neighbour comes first (a stable sort),
    so an overlay exemplar that merely repeats a shipped one changes nothing.
    """
    sims = np.concatenate([first[0], second[0]], axis=1)
    labels = np.concatenate([first[1], second[1]], axis=1)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), np.take_along_axis(labels, order, axis=1)
