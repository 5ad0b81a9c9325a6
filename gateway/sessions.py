"""Session storage behind one small contract, with two implementations: an
in-process store for the embedded default and Redis for the fleet.

A session is keyed by (tenant, customer, session id): another customer's or
another tenant's session id is simply a different session, so no answer can
tell whether it exists elsewhere. Both stores trim the history to the last N
exchanges and slide a TTL (30 minutes by default) on every write.

Writes are compare-and-set: a record carries the version it was read at (0 for
a session that did not exist) and ``put`` fails with ``SessionConflict`` when
another write came first; the gateway then re-reads and re-applies its turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from waybill.common.v1 import conversation_pb2

DEFAULT_TTL_S = 1800.0
DEFAULT_TURNS = 10

Clock = Callable[[], float]
"""Wall-clock seconds since the epoch (``time.time``); injected in tests."""


class SessionConflict(Exception):
    """The session changed since it was read: re-read and re-apply."""


@dataclass(slots=True)
class SessionRecord:
    """A stored conversation, bound to its tenant and customer."""

    tenant_id: str
    user_id: str
    session_id: str
    state: conversation_pb2.ConversationState
    expires_at: float = 0.0
    """Wall-clock expiry (epoch seconds), set by the store on get and put."""
    version: int = 0
    """Version the record was read at (0: not stored yet); ``put`` bumps it."""


class SessionStore(Protocol):
    """Where the gateway keeps conversations between turns."""

    async def get(self, tenant_id: str, user_id: str, session_id: str) -> SessionRecord | None:
        """The customer's live session, or None (also when it belongs to someone else)."""
        ...

    async def put(self, record: SessionRecord) -> None:
        """Store the session if it is still at ``record.version``, trimmed to the last N
        exchanges, slide its TTL and bump ``record.version``; else ``SessionConflict``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def trim(state: conversation_pb2.ConversationState, turns: int) -> None:
    """Keep the last ``turns`` exchanges (a customer message and its answer each)."""
    keep = turns * 2
    if len(state.turns) > keep:
        del state.turns[: len(state.turns) - keep]


@dataclass(slots=True)
class _Entry:
    expires: float
    version: int
    blob: bytes


class InMemorySessionStore:
    """Process-local sessions with a sliding TTL, for the embedded default."""

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        turns: int = DEFAULT_TURNS,
        max_sessions: int = 100_000,
        clock: Clock = time.time,
    ) -> None:
        self._ttl_s = ttl_s
        self._turns = turns
        self._max = max_sessions
        self._clock = clock
        self._data: dict[tuple[str, str, str], _Entry] = {}

    def _live(self, key: tuple[str, str, str]) -> _Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry.expires <= self._clock():
            del self._data[key]
            return None
        return entry

    async def get(self, tenant_id: str, user_id: str, session_id: str) -> SessionRecord | None:
        """The live session, or None."""
        entry = self._live((tenant_id, user_id, session_id))
        if entry is None:
            return None
        state = conversation_pb2.ConversationState.FromString(entry.blob)
        return SessionRecord(
            tenant_id, user_id, session_id, state, entry.expires, version=entry.version
        )

    async def put(self, record: SessionRecord) -> None:
        """Compare-and-set, slide the TTL; the least recently written session goes when full."""
        key = (record.tenant_id, record.user_id, record.session_id)
        # No await between the check and the write: atomic on the event loop.
        entry = self._live(key)
        current = 0 if entry is None else entry.version
        if current != record.version:
            raise SessionConflict(f"stored version {current}, written from {record.version}")
        trim(record.state, self._turns)
        if entry is None and len(self._data) >= self._max:
            self._data.pop(next(iter(self._data)))
        record.expires_at = self._clock() + self._ttl_s
        record.version = current + 1
        self._data.pop(key, None)  # re-insert: iteration order is least recently written first
        self._data[key] = _Entry(
            record.expires_at, record.version, record.state.SerializeToString()
        )

    async def close(self) -> None:
        """Nothing to release."""
