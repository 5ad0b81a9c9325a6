"""Answer cache entries in Redis, shared by every gateway replica.

Redis here has no search module, so the vectors are searched in each replica's memory
and Redis holds the truth (docs/caches.md says why):

- ``{p}cache:{tenant}:{use_case}:{digest}:e:{id}`` — a hash per entry: the payload
  (``p``), the vector (``v``, float32 bytes) and its expiry (``x``, ms); PX = the TTL.
  An exact lookup is one HGET.
- ``...:{digest}:idx`` — a sorted set of the partition's entry ids, scored by a write
  sequence (``...:{digest}:seq``, INCR). A replica keeps an in-process vector index per
  partition and the last sequence it read; a semantic lookup reads the sequence (one GET)
  and, when it moved, fetches only the entries written since (ZRANGEBYSCORE + HMGET).
  Writes on any replica are therefore searched on every replica from their next lookup.
- The entry that the local index finds is read back from Redis (HGET), so an entry that
  expired, was trimmed or vanished with a restarted Redis is never served.

All keys of one tenant share the ``{tenant}`` hash tag (one cluster slot per tenant), and
one Lua script writes an entry, its index row and the sequence together.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as redis
from redis import exceptions as redis_errors

from embeddings.pooling import FloatArray
from gateway.cache.core import CacheUnavailable, Found, Partition
from gateway.cache.index import VectorIndex

_FAILURES = (redis_errors.RedisError, OSError, TimeoutError)
_SYNC_BATCH = 500

# KEYS: entry hash, index zset, sequence. ARGV: entry id, payload, vector ("" for none),
# ttl ms, max entries in the index.
_PUT = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'p', ARGV[2], 'x', expires)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[3])
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], seq, ARGV[1])
  local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
  if extra > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return 1
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(slots=True)
class _Local:
    index: VectorIndex
    seq: int = 0


class RedisBackend:
    """Entries in Redis, vectors searched in this replica's memory (see the module doc)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        dim: int,
        entries: int = 10_000,
        partitions: int = 1_000,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._dim = dim
        self._entries = entries
        self._partitions = partitions
        self._wall = wall
        self._put = client.register_script(_PUT)
        self._local: OrderedDict[str, _Local] = OrderedDict()

    def _base(self, partition: Partition) -> str:
        return f"{self._prefix}cache:{{{partition.tenant}}}:{partition.use_case}:{partition.digest}"

    def entry_key(self, partition: Partition, entry_id: str) -> str:
        """The Redis key of one entry."""
        return f"{self._base(partition)}:e:{entry_id}"

    async def exact(self, partition: Partition, entry_id: str) -> bytes | None:
        """The payload stored under this exact key, if live."""
        try:
            payload = await self._redis.hget(self.entry_key(partition, entry_id), "p")
        except _FAILURES as exc:
            raise CacheUnavailable(type(exc).__name__) from None
        return payload if isinstance(payload, bytes) else None

    async def nearest(
        self, partition: Partition, vector: FloatArray, threshold: float
    ) -> Found | None:
        """The most similar live entry of the partition, if it reaches ``threshold``."""
        try:
            local = await self._synced(partition)
            best = local.index.nearest(vector, self._wall() * 1000)
            if best is None or best.similarity < threshold:
                return None
            payload = await self._redis.hget(self.entry_key(partition, best.entry_id), "p")
        except _FAILURES as exc:
            raise CacheUnavailable(type(exc).__name__) from None
        if not isinstance(payload, bytes):
            local.index.remove(best.entry_id)  # gone from Redis: expired, trimmed or lost
            return None
        return Found(payload, best.similarity, semantic=True)

    async def _synced(self, partition: Partition) -> _Local:
        """The partition's local index, with every entry written since the last look."""
        base = self._base(partition)
        local = self._local.get(base)
        if local is None:
            local = self._local[base] = _Local(VectorIndex(self._dim))
            while len(self._local) > self._partitions:
                self._local.popitem(last=False)
        self._local.move_to_end(base)
        raw = await self._redis.get(f"{base}:seq")
        seq = int(raw) if raw is not None else 0
        if seq < local.seq:  # the sequence started again (expired or a Redis without it)
            local.index = VectorIndex(self._dim)
            local.seq = 0
        if seq == local.seq:
            return local
        rows: list[Any] = await self._redis.zrangebyscore(
            f"{base}:idx", f"({local.seq}", "+inf", withscores=True
        )
        written = [(_text(row[0]), int(row[1])) for row in rows]
        for start in range(0, len(written), _SYNC_BATCH):
            batch = written[start : start + _SYNC_BATCH]
            async with self._redis.pipeline(transaction=False) as pipe:
                for member, _ in batch:
                    pipe.hmget(f"{base}:e:{member}", "v", "x")
                fields = await pipe.execute()
            for (member, _), (vec, expires) in zip(batch, fields, strict=True):
                if vec is None or expires is None or len(vec) != 4 * self._dim:
                    continue  # expired meanwhile, or written by a model of another size
                local.index.put(member, np.frombuffer(vec, dtype=np.float32), float(expires))
        local.seq = max([seq, *(score for _, score in written)])
        local.index.expire(self._wall() * 1000)
        return local

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
        base = self._base(partition)
        vec = b"" if vector is None else np.asarray(vector, dtype=np.float32).tobytes()
        try:
            await self._put(
                keys=[f"{base}:e:{entry_id}", f"{base}:idx", f"{base}:seq"],
                args=[entry_id, payload, vec, max(1, int(ttl_s * 1000)), self._entries],
            )
        except _FAILURES as exc:
            raise CacheUnavailable(type(exc).__name__) from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
