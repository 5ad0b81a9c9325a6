"""Session storage behind one small contract, with two implementations: an
in-process store for the embedded default and Redis for the fleet.

Both keep a conversation bound to its tenant and customer, trim its history to
the last N exchanges and slide a TTL (30 minutes by default) on every write.
A session of one tenant is invisible to every other tenant: the tenant is part
of the key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from waybill.common.v1 import conversation_pb2

DEFAULT_TTL_S = 1800.0
DEFAULT_TURNS = 10


@dataclass(slots=True)
class SessionRecord:
    """A stored conversation, bound to its tenant and customer."""

    tenant_id: str
    user_id: str
    session_id: str
    state: conversation_pb2.ConversationState
    expires_at: float = 0.0
    """Wall-clock expiry (epoch seconds), set by the store on put."""


class SessionStore(Protocol):
    """Where the gateway keeps conversations between turns."""

    async def get(self, tenant_id: str, session_id: str) -> SessionRecord | None:
        """The live session, or None (never another tenant's)."""
        ...

    async def put(self, record: SessionRecord) -> None:
        """Store the session, trimmed to the last N exchanges, and slide its TTL."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def trim(state: conversation_pb2.ConversationState, turns: int) -> None:
    """Keep the last ``turns`` exchanges (a customer message and its answer each)."""
    keep = turns * 2
    if len(state.turns) > keep:
        del state.turns[: len(state.turns) - keep]


class InMemorySessionStore:
    """Process-local sessions with a sliding TTL, for the embedded default."""

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        turns: int = DEFAULT_TURNS,
        max_sessions: int = 100_000,
    ) -> None:
        self._ttl_s = ttl_s
        self._turns = turns
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
        """Store and slide the TTL; the least recently written session goes when full."""
        trim(record.state, self._turns)
        key = (record.tenant_id, record.session_id)
        if key not in self._data and len(self._data) >= self._max:
            self._data.pop(next(iter(self._data)))
        record.expires_at = time.time() + self._ttl_s
        self._data.pop(key, None)  # re-insert: iteration order is least recently written first
        self._data[key] = (record.expires_at, record.state.SerializeToString(), record.user_id)

    async def close(self) -> None:
        """Nothing to release."""
