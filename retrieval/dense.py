"""Dense search with faiss: one inner-product index per tenant over window vectors.

Each chunk is embedded as one or more windows (``chunking.windows``) and scores
by its best window. A tenant's windows live in their own index, so a search
cannot reach another tenant's vectors at all; the metadata filter becomes an id
selector that faiss applies while it scans, before anything is ranked.

The index is exact (``IndexFlatIP``): a tenant's policy base is thousands of
windows, and an exact scan of 100k takes milliseconds. Above ``hnsw_min``
windows a tenant gets an HNSW graph instead (approximate; the selector still
filters inside the search).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from embeddings.pooling import FloatArray

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DenseHit:
    """One dense result: a chunk row, its best window's cosine, its rank."""

    row: int
    score: float
    rank: int


@dataclass(slots=True)
class _Tenant:
    index: faiss.Index
    windows: IntArray
    """Global window rows of this tenant (the ids in ``index``)."""
    hnsw: bool
    """Whether ``index`` is an HNSW graph (else an exact scan)."""


class DenseIndex:
    """Window vectors of every tenant, searchable one tenant at a time."""

    def __init__(
        self,
        vectors: FloatArray,
        window_chunk: IntArray,
        chunk_tenants: Sequence[str],
        *,
        hnsw_min: int = 200_000,
    ) -> None:
        self._window_chunk = np.asarray(window_chunk, dtype=np.int64)
        self._tenants: dict[str, _Tenant] = {}
        self._hnsw_min = hnsw_min
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        tenant_of_window = np.asarray(chunk_tenants, dtype=object)[self._window_chunk]
        for tenant in sorted(set(chunk_tenants)):
            rows = np.flatnonzero(tenant_of_window == tenant).astype(np.int64)
            if rows.size == 0:
                continue
            inner: faiss.Index
            if rows.size >= hnsw_min:
                inner = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
                inner.hnsw.efSearch = 128
            else:
                inner = faiss.IndexFlatIP(dim)
            index = faiss.IndexIDMap2(inner)
            index.add_with_ids(np.ascontiguousarray(vectors[rows], dtype=np.float32), rows)
            self._tenants[tenant] = _Tenant(index=index, windows=rows, hnsw=rows.size >= hnsw_min)

    def windows_of(self, tenant_id: str) -> int:
        """Windows indexed for a tenant."""
        found = self._tenants.get(tenant_id)
        return 0 if found is None else int(found.windows.size)

    def search(
        self,
        tenant_id: str,
        query: FloatArray,
        *,
        allowed: BoolArray | None,
        limit: int,
    ) -> list[DenseHit]:
        """The ``limit`` best chunks of the tenant among ``allowed`` chunk rows (None: all)."""
        tenant = self._tenants.get(tenant_id)
        if tenant is None or limit <= 0:
            return []
        params = None
        candidates = int(tenant.windows.size)
        if allowed is not None:
            admitted = tenant.windows[allowed[self._window_chunk[tenant.windows]]]
            if admitted.size == 0:
                return []
            candidates = int(admitted.size)
            selector = faiss.IDSelectorBatch(admitted)
            # faiss's generated stubs do not know the SWIG keyword constructors.
            params = (
                faiss.SearchParametersHNSW(sel=selector, efSearch=128)  # type: ignore[attr-defined]
                if tenant.hnsw
                else faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
            )
        # Several windows of one chunk may come first: ask for more windows than chunks.
        k = min(candidates, limit * 4)
        scores, ids = tenant.index.search(
            np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params
        )
        best: dict[int, float] = {}
        for score, window in zip(scores[0], ids[0], strict=True):
            if window < 0:
                continue
            row = int(self._window_chunk[window])
            if row not in best:
                best[row] = float(score)
            if len(best) >= limit:
                break
        return [
            DenseHit(row=row, score=score, rank=rank)
            for rank, (row, score) in enumerate(best.items(), start=1)
        ]
