"""A small bounded key -> value cache with a TTL, for a process's hot lookups.

The gateway keeps hydrated contexts a few seconds per (tenant, customer) and delivery-note
verdicts by note text; a worker keeps the verdicts of the tool-returned text it screens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

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
