"""The exemplar index: faiss inner-product search over unit vectors (= cosine)."""

from __future__ import annotations

import faiss
import numpy as np
import numpy.typing as npt

from embeddings.pooling import FloatArray

LabelArray = npt.NDArray[np.int32]

# One thread per search: the batch is already the unit of parallel work, and
# OpenMP threads spinning beside onnxruntime's would fight for 2 cores.
faiss.omp_set_num_threads(1)


class ExemplarIndex:
    """Immutable once built; a new exemplar set is a new index (swapped whole)."""

    def __init__(self, vectors: FloatArray, labels: LabelArray) -> None:
        if vectors.ndim != 2 or len(vectors) != len(labels) or not len(vectors):
            raise ValueError("an index needs one label per vector and at least one vector")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)
        # Exact search: a few thousand exemplars take microseconds; HNSW would
        # only add build time and recall loss at this size.
        self._index = faiss.IndexFlatIP(self.vectors.shape[1])
        self._index.add(self.vectors)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, LabelArray]:
        """Similarities and labels of the ``k`` nearest exemplars per query, nearest first."""
        k = min(k, len(self))
        sims, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return np.asarray(sims, dtype=np.float32), self.labels[ids]

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
