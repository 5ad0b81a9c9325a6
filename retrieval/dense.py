"""Dense search with faiss: one inner-product index per tenant over window vectors.

Each chunk is embedded as one or more windows (``chunking.windows``) and scores
by its best window. A tenant's windows live in their own index, so a search
cannot reach another tenant's vectors at all; the metadata filter becomes an id
selector that faiss applies while it scans, before anything is ranked.

The scan is exhaustive: every admitted window is scored, so a filter never
starves the search (as it can an HNSW graph's). A tenant's policy base is
thousands of windows, scanned exactly (``IndexFlatIP``). Above ``compress_min``
windows a tenant's vectors are scanned as 8-bit codes (``IndexScalarQuantizer``,
one byte per dimension): four times less memory to read, 2.5 times faster at 100k
windows, still every window scored.
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
    compressed: bool
    """Whether ``index`` scans 8-bit codes (else float32 vectors)."""


class DenseIndex:
    """Window vectors of every tenant, searchable one tenant at a time."""

    def __init__(
        self,
        vectors: FloatArray,
        window_chunk: IntArray,
        chunk_tenants: Sequence[str],
        *,
        compress_min: int = 50_000,
    ) -> None:
        # One thread per scan: a second OpenMP thread did not make a 100k scan faster here,
        # and the service runs BM25 and the model on other threads at the same time.
        faiss.omp_set_num_threads(1)
        self._window_chunk = np.asarray(window_chunk, dtype=np.int64)
        self._tenants: dict[str, _Tenant] = {}
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        tenant_of_window = np.asarray(chunk_tenants, dtype=object)[self._window_chunk]
        for tenant in sorted(set(chunk_tenants)):
            rows = np.flatnonzero(tenant_of_window == tenant).astype(np.int64)
            if rows.size == 0:
                continue
            inner: faiss.Index
            own = np.ascontiguousarray(vectors[rows], dtype=np.float32)
            compressed = rows.size >= compress_min
            if compressed:
                inner = faiss.IndexScalarQuantizer(
                    dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
                )
                inner.train(own)
            else:
                inner = faiss.IndexFlatIP(dim)
            index = faiss.IndexIDMap2(inner)
            index.add_with_ids(own, rows)
            self._tenants[tenant] = _Tenant(index=index, windows=rows, compressed=compressed)

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
        bitmap = None
        if allowed is not None:
            admitted = allowed[self._window_chunk]
            candidates = int(np.count_nonzero(admitted[tenant.windows]))
            if candidates == 0:
                return []
            # One bit per window id: faiss tests it while it scans (a hash set of the
            # admitted ids costs twice the scan itself at 100k windows).
            bitmap = np.packbits(admitted, bitorder="little")
            selector = faiss.IDSelectorBitmap(admitted.size, faiss.swig_ptr(bitmap))
            # faiss's generated stubs do not know the SWIG keyword constructor.
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        # Several windows of one chunk may come first: ask for more windows than chunks.
        k = min(candidates, limit * 4)
        scores, ids = tenant.index.search(
            np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params
        )
        del bitmap  # kept alive until the search above has returned
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
