"""Sessions in Redis (``redis.asyncio``) for the fleet: every gateway replica
sees the same conversations, and Redis expires them by itself.

One hash per session, ``<prefix>session:{<tenant>}:<user>:<session_id>``, with
the version (``v``) and the serialized state (``s``). A read is one pipelined
round trip (HMGET + PTTL); a write is one script call that compares the version
and writes with a fresh TTL (the sliding 30 minutes) atomically. The hash tag
keeps a tenant's sessions on one cluster slot.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import redis.asyncio as redis
from redis import exceptions as redis_errors
from waybill.common.v1 import conversation_pb2

from gateway.sessions import DEFAULT_TTL_S, DEFAULT_TURNS, SessionConflict, SessionRecord, trim
from runtime.errors import Unavailable

log = logging.getLogger("waybill.gateway")


@contextlib.contextmanager
def reachable(what: str) -> Iterator[None]:
    """A Redis that does not answer is a dependency that is down (UNAVAILABLE, retryable),
    not a bug; its address stays in the log."""
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        log.warning("redis not answering", extra={"store": what, "detail": str(exc)})
        raise Unavailable(
            "conversations are not available right now; try again",
            reason="SESSION_STORE_UNAVAILABLE",
        ) from exc


# KEYS[1] session; ARGV: expected version, state, ttl ms. Returns the new version,
# or -1 (stale) with nothing written. An expired or absent session is version 0.
_CAS = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then
  return -1
end
redis.call('HSET', KEYS[1], 'v', current + 1, 's', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return current + 1
"""


class RedisSessionStore:
    """Sessions shared by every gateway replica."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "waybill:",
        ttl_s: float = DEFAULT_TTL_S,
        turns: int = DEFAULT_TURNS,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._turns = turns
        self._cas = client.register_script(_CAS)

    @classmethod
    def from_url(cls, url: str, **options: object) -> RedisSessionStore:
        """A store on the Redis at ``url`` (``redis://host:port/db``)."""
        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, **options)  # type: ignore[arg-type]

    @property
    def client(self) -> redis.Redis:
        """The connection pool (shared with the outcome store)."""
        return self._redis

    def key(self, tenant_id: str, user_id: str, session_id: str) -> str:
        """The Redis key of a session."""
        return f"{self._prefix}session:{{{tenant_id}}}:{user_id}:{session_id}"

    async def get(self, tenant_id: str, user_id: str, session_id: str) -> SessionRecord | None:
        """The live session, or None."""
        key = self.key(tenant_id, user_id, session_id)
        with reachable("sessions"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(key, ["v", "s"])
                pipe.pttl(key)
                (version, blob), ttl_ms = await pipe.execute()
        if version is None or blob is None:
            return None
        return SessionRecord(
            tenant_id,
            user_id,
            session_id,
            conversation_pb2.ConversationState.FromString(bytes(blob)),
            time.time() + max(int(ttl_ms), 0) / 1000,
            version=int(version),
        )

    async def put(self, record: SessionRecord) -> None:
        """Compare-and-set the trimmed state with a fresh TTL."""
        trim(record.state, self._turns)
        with reachable("sessions"):
            written = int(
                await self._cas(
                    keys=[self.key(record.tenant_id, record.user_id, record.session_id)],
                    args=[record.version, record.state.SerializeToString(), self._ttl_ms],
                )
            )
        if written < 0:
            raise SessionConflict(f"session changed since version {record.version}")
        record.version = written
        record.expires_at = time.time() + self._ttl_ms / 1000

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
