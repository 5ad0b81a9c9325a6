"""Session storage behind one small interface; this module has the in-process
store of the embedded default (a Redis store for the fleet shares the contract)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from waybill.common.v1 import conversation_pb2


@dataclass(slots=True)
class SessionRecord:
    """A stored conversation, bound to its tenant and customer."""

    tenant_id: str
    user_id: str
    session_id: str
    state: conversation_pb2.ConversationState
    expires_at: float = 0.0
    """Wall-clock expiry (epoch seconds)."""


class SessionStore(Protocol):
    """Where the gateway keeps conversations between turns."""

    async def get(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The live session, or None (never another tenant's)."""
        ...

    async def put(self, record: SessionRecord) -> None:
        """Store the session and slide its TTL."""
        ...


class InMemorySessionStore:
    """Process-local sessions with a sliding TTL, for the embedded default."""

    def __init__(self, *, ttl_s: float = 1800.0, max_sessions: int = 100_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_sessions
        self._data: dict[tuple[str, str], tuple[float, bytes, str]] = {}

    async def get(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The live session, or None."""
        entry = self._data.get((tenant_id, session_id))
        if entry is None:
            return None
        expires, blob, user_id = entry
        if expires <= time.time():
            del self._data[(tenant_id, session_id)]
            return None
        state = conversation_pb2.ConversationState.FromString(blob)
        return SessionRecord(tenant_id, user_id, session_id, state, expires)

    async def put(self, record: SessionRecord) -> None:
        """Store and slide the TTL; the oldest session goes when the store is full."""
        key = (record.tenant_id, record.session_id)
        if key not in self._data and len(self._data) >= self._max:
            self._data.pop(next(iter(self._data)))
        record.expires_at = time.time() + self._ttl_s
        self._data.pop(key, None)  # re-insert so iteration order is least recently used first
        self._data[key] = (record.expires_at, record.state.SerializeToString(), record.user_id)
