"""One partition's vectors in memory: nearest neighbour by exact cosine (a matrix product).

Unit vectors, one row per entry, with each row's expiry beside it. At 10k entries of 384
dimensions a query is one ~4M multiply-add product (well under a millisecond on one core),
exact, with no index to build or tune: the partitions are small by construction (one
tenant, one intent, one policy version), so an approximate index would buy nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embeddings.pooling import FloatArray


@dataclass(frozen=True, slots=True)
class Neighbour:
    """The closest live entry to a query."""

    entry_id: str
    similarity: float


class VectorIndex:
    """Entries' unit vectors by id; expired and removed rows are skipped, then reused."""

    def __init__(self, dim: int, *, capacity: int = 64) -> None:
        self._dim = dim
        self._vectors = np.zeros((capacity, dim), dtype=np.float32)
        self._expires = np.zeros(capacity, dtype=np.float64)  # 0: an empty row
        self._ids: list[str | None] = [None] * capacity
        self._row_of: dict[str, int] = {}
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self._high = 0
        """One past the highest row ever used: rows are taken lowest first, so the scan
        stops there instead of at the capacity."""

    def __len__(self) -> int:
        return len(self._row_of)

    def put(self, entry_id: str, vector: FloatArray, expires_at: float) -> None:
        """Add or replace an entry."""
        row = self._row_of.get(entry_id)
        if row is None:
            if not self._free:
                self._grow()
            row = self._free.pop()
            self._high = max(self._high, row + 1)
            self._row_of[entry_id] = row
            self._ids[row] = entry_id
        self._vectors[row] = vector
        self._expires[row] = expires_at

    def remove(self, entry_id: str) -> None:
        """Forget an entry (a no-op when it is not here)."""
        row = self._row_of.pop(entry_id, None)
        if row is not None:
            self._ids[row] = None
            self._expires[row] = 0.0
            self._free.append(row)

    def expire(self, now: float) -> None:
        """Free the rows of entries whose time has passed."""
        used = self._expires > 0
        for row in np.flatnonzero(used & (self._expires <= now)):
            entry_id = self._ids[int(row)]
            if entry_id is not None:
                self.remove(entry_id)

    def nearest(self, query: FloatArray, now: float) -> Neighbour | None:
        """The live entry most similar to ``query`` (a unit vector), or None when empty."""
        if not self._row_of:
            return None
        high = self._high
        scores = self._vectors[:high] @ query
        scores[self._expires[:high] <= now] = -np.inf  # empty, removed and expired rows
        row = int(np.argmax(scores))
        best = float(scores[row])
        entry_id = self._ids[row]
        if entry_id is None or best == -np.inf:
            return None
        return Neighbour(entry_id, best)

    def _grow(self) -> None:
        old = len(self._ids)
        self._vectors = np.concatenate([self._vectors, np.zeros_like(self._vectors)])
        self._expires = np.concatenate([self._expires, np.zeros(old, dtype=np.float64)])
        self._ids.extend([None] * old)
        self._free = [*range(2 * old - 1, old - 1, -1), *self._free]
