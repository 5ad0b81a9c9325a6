"""The answer cache: what a partition is, how a question finds its entry, and the
in-process backend. Callers decide *whether* an answer may be shared (the gateway's
``gateway.turn_cache`` for policy turns; the same API serves any other use case).

A lookup normalises the question (``gateway.cache.normalize``) and tries the exact key
first; on a miss, and when the use case allows it, it takes the nearest entry of the same
partition if its cosine reaches the use case's threshold. The question's vector is the
one the caller brings when the same model made it (a policy turn brings the router's,
which classified the message with it), else the normalised text is embedded here.
Questions with a digit in them (dates, amounts, days, codes) only ever match exactly: a
sentence embedding barely tells "14 days" from "30 days" or SKU-9942-A from SKU-9942-B,
and those differences change the answer.

Partitions are hard walls: an entry is only ever found under the partition it was
written in, and the partition's key holds the tenant, the use case, the intent, the
policy version, the caller's scope and the embedding model.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from embeddings.pooling import FloatArray
from gateway.cache.index import VectorIndex
from gateway.cache.normalize import normalise
from runtime.metrics import CACHE_EMBEDDINGS, CACHE_LOOKUP_SECONDS, CACHE_LOOKUPS, CACHE_STORES

log = logging.getLogger("waybill.gateway")
_DIGIT = re.compile(r"\d")
Embed = Callable[[str], Awaitable[FloatArray]]
"""A normalised question's unit vector (the platform's sentence embedder)."""


@dataclass(frozen=True, slots=True)
class Embedded:
    """A question's vector made elsewhere (the router's), and by which model."""

    model: str
    """The embedding model and variant (``Embedder.version``)."""
    vector: FloatArray


class CacheUnavailable(Exception):
    """The shared store did not answer; the caller treats it as a miss."""


@dataclass(frozen=True, slots=True)
class UseCase:
    """How one kind of answer is cached."""

    name: str
    """``policy``; the model edge adds its own."""
    ttl_s: float
    """How long an entry is served."""
    threshold: float = 0.95
    """Cosine at or above which a different question takes an entry; above 1: exact only."""
    normalise: bool = True
    """Whether questions are normalised (case, spacing, AWB and date spellings) before
    matching; off for direct model calls, whose prompts are matched byte for byte."""

    @property
    def semantic(self) -> bool:
        """Whether near-duplicates may match."""
        return self.threshold <= 1.0


@dataclass(frozen=True, slots=True)
class Partition:
    """Where an entry lives; entries never cross partitions."""

    tenant: str
    """Tenant id (a hard wall: also the Redis hash tag)."""
    use_case: str
    """Use case name."""
    intent: str
    """The intent (or, for direct model calls, the model) the answer is for."""
    version: str
    """The version of what the answer was drawn from (the published knowledge base)."""
    scope: tuple[str, ...] = ()
    """Whatever else the answer depends on (the customer's region and tier)."""

    @property
    def digest(self) -> str:
        """A digest of everything but the tenant and the use case."""
        rest = "\x1f".join((self.intent, self.version, *self.scope))
        return hashlib.sha256(rest.encode()).hexdigest()[:32]

    @property
    def key(self) -> str:
        """Stable, short, content-free: the tenant, the use case and the digest."""
        return f"{self.tenant}:{self.use_case}:{self.digest}"


@dataclass(frozen=True, slots=True)
class Found:
    """An entry a lookup found."""

    payload: bytes
    similarity: float
    """1.0 for an exact match."""
    semantic: bool


@dataclass(slots=True)
class Lookup:
    """One lookup's result; a miss is later offered back to :meth:`AnswerCache.store`."""

    partition: Partition
    normalised: str
    entry_id: str
    found: Found | None = None
    vector: FloatArray | None = field(default=None, repr=False)
    """The question's vector, once embedded (reused when the answer is stored)."""

    @property
    def hit(self) -> bool:
        """Whether an entry was found."""
        return self.found is not None


class CacheBackend(Protocol):
    """Where entries live: in this process or in Redis."""

    async def exact(self, partition: Partition, entry_id: str) -> bytes | None:
        """The payload stored under this exact key, if live."""

    async def nearest(
        self, partition: Partition, vector: FloatArray, threshold: float
    ) -> Found | None:
        """The most similar live entry of the partition, if it reaches ``threshold``."""

    async def put(
        self,
        partition: Partition,
        entry_id: str,
        payload: bytes,
        *,
        vector: FloatArray | None,
        ttl_s: float,
    ) -> None:
        """Store an entry (replacing one with the same id)."""

    async def aclose(self) -> None:
        """Release connections."""


def entry_id(normalised: str) -> str:
    """The exact key of a normalised question (a digest: no text in keys)."""
    return hashlib.sha256(normalised.encode()).hexdigest()[:32]


class AnswerCache:
    """Exact then semantic lookups over a backend, with metrics; never raises for the store."""

    def __init__(
        self,
        backend: CacheBackend,
        use_cases: Mapping[str, UseCase],
        *,
        embed: Embed | None = None,
        model_id: str = "",
    ) -> None:
        self._backend = backend
        self._use_cases = dict(use_cases)
        self._embed = embed
        self._model_id = model_id
        """Part of every partition: vectors of two models never meet."""

    @property
    def semantic(self) -> bool:
        """Whether near-duplicates can match at all (an embedding model is loaded)."""
        return self._embed is not None

    def use_case(self, name: str) -> UseCase | None:
        """The use case's settings, or None when it is not cached."""
        return self._use_cases.get(name)

    def placed(self, partition: Partition) -> Partition:
        """Where this cache keeps the entries of ``partition`` (its embedding model added)."""
        return replace(partition, scope=(*partition.scope, f"model={self._model_id}"))

    async def lookup(
        self, partition: Partition, text: str, *, embedded: Embedded | None = None
    ) -> Lookup:
        """Find the entry for ``text`` in ``partition`` (a miss on any store failure);
        ``embedded``, the question's vector made by this cache's model, spares a model run
        (one made by another model is ignored)."""
        use_case = self._use_cases.get(partition.use_case)
        normalised = normalise(text) if use_case is None or use_case.normalise else text
        found = Lookup(self.placed(partition), normalised, entry_id(normalised))
        if use_case is None:
            return found
        started = time.perf_counter()
        result, match = "miss", ""
        try:
            payload = await self._backend.exact(found.partition, found.entry_id)
            if payload is not None:
                found.found = Found(payload, 1.0, semantic=False)
                result, match = "hit", "exact"
            elif self._semantic(use_case, normalised):
                found.vector = await self._vector(use_case, normalised, embedded)
                found.found = await self._backend.nearest(
                    found.partition, found.vector, use_case.threshold
                )
                if found.found is not None:
                    result, match = "hit", "semantic"
        except CacheUnavailable as exc:
            result = "error"
            log.warning("answer cache unavailable: a miss", extra={"reason": str(exc)})
        CACHE_LOOKUPS.labels(use_case.name, result, match).inc()
        CACHE_LOOKUP_SECONDS.labels(use_case.name).observe(time.perf_counter() - started)
        return found

    async def _vector(
        self, use_case: UseCase, normalised: str, embedded: Embedded | None
    ) -> FloatArray:
        if embedded is not None and embedded.model == self._model_id:
            CACHE_EMBEDDINGS.labels(use_case.name, "reused").inc()
            return embedded.vector
        assert self._embed is not None
        CACHE_EMBEDDINGS.labels(use_case.name, "embedded").inc()
        return await self._embed(normalised)

    def _semantic(self, use_case: UseCase, normalised: str) -> bool:
        return use_case.semantic and self._embed is not None and not _DIGIT.search(normalised)

    async def store(self, lookup: Lookup, payload: bytes) -> bool:
        """Keep ``payload`` as the answer to the looked-up question; False when not kept."""
        use_case = self._use_cases.get(lookup.partition.use_case)
        if use_case is None or lookup.hit:
            return False
        try:
            if lookup.vector is None and self._semantic(use_case, lookup.normalised):
                assert self._embed is not None
                lookup.vector = await self._embed(lookup.normalised)
            await self._backend.put(
                lookup.partition,
                lookup.entry_id,
                payload,
                vector=lookup.vector,
                ttl_s=use_case.ttl_s,
            )
        except CacheUnavailable as exc:
            CACHE_STORES.labels(use_case.name, "error").inc()
            log.warning("answer not cached: the cache is unavailable", extra={"reason": str(exc)})
            return False
        CACHE_STORES.labels(use_case.name, "stored").inc()
        return True

    async def aclose(self) -> None:
        """Close the backend."""
        await self._backend.aclose()


def embedder_embed(embed_batch: Callable[[list[str]], FloatArray]) -> Embed:
    """An :data:`Embed` over a batch embedder, run off the event loop."""

    async def embed(text: str) -> FloatArray:
        vectors = await asyncio.to_thread(embed_batch, [text])
        row: FloatArray = vectors[0]
        return row

    return embed


@dataclass(slots=True)
class _Partition:
    exact: OrderedDict[str, tuple[bytes, float]]
    vectors: VectorIndex | None


class MemoryBackend:
    """Entries in this process (the embedded mode): bounded per partition and in partitions,
    the oldest entry out first."""

    def __init__(
        self,
        *,
        dim: int,
        entries: int = 10_000,
        partitions: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dim = dim
        self._entries = entries
        self._partitions = partitions
        self._clock = clock
        self._data: OrderedDict[str, _Partition] = OrderedDict()

    def _get(self, partition: Partition, *, create: bool = False) -> _Partition | None:
        key = partition.key
        found = self._data.get(key)
        if found is None and create:
            found = self._data[key] = _Partition(OrderedDict(), None)
            while len(self._data) > self._partitions:
                self._data.popitem(last=False)
        if found is not None:
            self._data.move_to_end(key)
        return found

    async def exact(self, partition: Partition, entry_id: str) -> bytes | None:
        """The payload stored under this exact key, if live."""
        part = self._get(partition)
        if part is None:
            return None
        stored = part.exact.get(entry_id)
        if stored is None:
            return None
        payload, expires_at = stored
        if expires_at <= self._clock():
            self._drop(part, entry_id)
            return None
        return payload

    async def nearest(
        self, partition: Partition, vector: FloatArray, threshold: float
    ) -> Found | None:
        """The most similar live entry of the partition, if it reaches ``threshold``."""
        part = self._get(partition)
        if part is None or part.vectors is None:
            return None
        best = part.vectors.nearest(vector, self._clock())
        if best is None or best.similarity < threshold:
            return None
        stored = part.exact.get(best.entry_id)
        if stored is None:
            return None
        return Found(stored[0], best.similarity, semantic=True)

    async def put(
        self,
        partition: Partition,
        entry_id: str,
        payload: bytes,
        *,
        vector: FloatArray | None,
        ttl_s: float,
    ) -> None:
        """Store an entry (replacing one with the same id)."""
        part = self._get(partition, create=True)
        assert part is not None
        now = self._clock()
        expires_at = now + ttl_s
        part.exact[entry_id] = (payload, expires_at)
        part.exact.move_to_end(entry_id)
        if vector is not None:
            if part.vectors is None:
                part.vectors = VectorIndex(self._dim)
            part.vectors.put(entry_id, vector, expires_at)
        if len(part.exact) > self._entries:
            if part.vectors is not None:
                part.vectors.expire(now)
            while len(part.exact) > self._entries:
                self._drop(part, next(iter(part.exact)))

    @staticmethod
    def _drop(part: _Partition, entry_id: str) -> None:
        part.exact.pop(entry_id, None)
        if part.vectors is not None:
            part.vectors.remove(entry_id)

    async def aclose(self) -> None:
        """Nothing to release."""
