"""From nearest neighbours to one score per class (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embeddings.pooling import FloatArray
from router.index import LabelArray


def class_scores(
    sims: FloatArray, labels: LabelArray, classes: Sequence[int], *, top_m: int
) -> FloatArray:
    """Per query and class: the mean similarity of the class's ``top_m`` nearest exemplars.

    ``sims``/``labels`` are ``(queries, k)``, nearest first. A class with fewer
    than ``top_m`` exemplars among the ``k`` returned is padded with the k-th
    similarity (its remaining exemplars are at most that close), so a class
    far from the query scores low without a search over the whole index.
    Averaging two or three neighbours rather than taking the single nearest
    keeps one odd exemplar from deciding alone.
    """
    wanted = np.asarray(classes, dtype=np.int32)
    # (queries, classes, k): which neighbour belongs to which class.
    member = labels[:, None, :] == wanted[None, :, None]
    rank = np.cumsum(member, axis=2)
    chosen = member & (rank <= top_m)
    total = (sims[:, None, :] * chosen).sum(axis=2)
    found = chosen.sum(axis=2)
    floor = sims[:, -1][:, None]
    scores: FloatArray = ((total + (top_m - found) * floor) / top_m).astype(np.float32)
    return scores
