"""Small bounded caches of the gateway.

Hydrated contexts are reused for a few seconds per customer: tools read live data on
every call; the context block only frames the turn, and a few seconds of staleness there
stays far inside the 60 s freshness goal for features while saving an orders round trip
on most turns. Delivery-note verdicts are kept by note text: a note is written once and
read on every turn.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from waybill.common.v1 import customer_pb2

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """key -> value with a TTL (``math.inf``: kept until evicted) and a bound on entries;
    the oldest entry goes first when full."""

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
        self._data: dict[K, tuple[float, V]] = {}  # oldest first, for eviction

    def get(self, key: K) -> V | None:
        """The cached value, or None when absent or expired."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._data[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for the TTL (never, when the TTL is 0)."""
        if self._ttl_s <= 0:
            return
        self._data.pop(key, None)
        if len(self._data) >= self._entries:
            self._data.pop(next(iter(self._data)))
        expires = math.inf if math.isinf(self._ttl_s) else self._clock() + self._ttl_s
        self._data[key] = (expires, value)


class ContextCache:
    """(tenant, customer) -> hydrated context."""

    def __init__(
        self,
        *,
        ttl_s: float,
        entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache: BoundedCache[tuple[str, str], customer_pb2.HydratedContext] = BoundedCache(
            ttl_s=ttl_s, entries=entries, clock=clock
        )

    def get(self, tenant_id: str, user_id: str) -> customer_pb2.HydratedContext | None:
        """The cached context, or None when absent or expired."""
        return self._cache.get((tenant_id, user_id))

    def put(self, tenant_id: str, user_id: str, context: customer_pb2.HydratedContext) -> None:
        """Keep ``context`` for the TTL (never, when the TTL is 0)."""
        self._cache.put((tenant_id, user_id), context)
