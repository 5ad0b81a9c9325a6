"""Hydrated contexts reused for a few seconds per customer.

Tools read live data on every call; the context block only frames the turn, and
a few seconds of staleness there stays far inside the 60 s freshness goal for
features while saving an orders round trip on most turns.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from waybill.common.v1 import customer_pb2


class ContextCache:
    """(tenant, customer) -> hydrated context, with a TTL and a bound on entries."""

    def __init__(
        self,
        *,
        ttl_s: float,
        entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._entries = entries
        self._clock = clock
        # Oldest first, for eviction.
        self._data: dict[tuple[str, str], tuple[float, customer_pb2.HydratedContext]] = {}

    def get(self, tenant_id: str, user_id: str) -> customer_pb2.HydratedContext | None:
        """The cached context, or None when absent or expired."""
        entry = self._data.get((tenant_id, user_id))
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._data[(tenant_id, user_id)]
            return None
        return entry[1]

    def put(self, tenant_id: str, user_id: str, context: customer_pb2.HydratedContext) -> None:
        """Keep ``context`` for the TTL (never, when the TTL is 0)."""
        if self._ttl_s <= 0:
            return
        key = (tenant_id, user_id)
        self._data.pop(key, None)
        if len(self._data) >= self._entries:
            self._data.pop(next(iter(self._data)))
        self._data[key] = (self._clock() + self._ttl_s, context)
