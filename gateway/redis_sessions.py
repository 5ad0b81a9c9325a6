"""Sessions in Redis (``redis.asyncio``) for the fleet: every gateway replica
sees the same conversations, and Redis expires them by itself.

One key per session, ``<prefix>session:{<tenant>}:<session_id>``, holding the
owner and the serialized state; every put rewrites it with a fresh TTL (the
sliding 30 minutes). The hash tag keeps a tenant's sessions on one cluster slot.
"""

from __future__ import annotations

import time

import redis.asyncio as redis
from waybill.common.v1 import conversation_pb2

from gateway.sessions import DEFAULT_TTL_S, DEFAULT_TURNS, SessionRecord, trim

_SEP = b"\x00"


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

    @classmethod
    def from_url(cls, url: str, **options: object) -> RedisSessionStore:
        """A store on the Redis at ``url`` (``redis://host:port/db``)."""
        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, **options)  # type: ignore[arg-type]

    def _key(self, tenant_id: str, session_id: str) -> str:
        return f"{self._prefix}session:{{{tenant_id}}}:{session_id}"

    async def get(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The live session, or None."""
        key = self._key(tenant_id, session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            blob, ttl_ms = await pipe.execute()
        if blob is None:
            return None
        user, _, state = bytes(blob).partition(_SEP)
        return SessionRecord(
            tenant_id,
            user.decode(),
            session_id,
            conversation_pb2.ConversationState.FromString(state),
            time.time() + max(int(ttl_ms), 0) / 1000,
        )

    async def put(self, record: SessionRecord) -> None:
        """Write the trimmed state with a fresh TTL."""
        trim(record.state, self._turns)
        payload = record.user_id.encode() + _SEP + record.state.SerializeToString()
        await self._redis.set(
            self._key(record.tenant_id, record.session_id), payload, px=self._ttl_ms
        )
        record.expires_at = time.time() + self._ttl_ms / 1000

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
