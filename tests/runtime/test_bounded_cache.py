"""BoundedCache: a TTL per entry, a bound on entries, the oldest out first (injected clock)."""

from __future__ import annotations

import math

from waybill.common.v1 import customer_pb2

from runtime.bounded_cache import BoundedCache
from tests.gateway.clock import FakeClock

Contexts = BoundedCache[tuple[str, str], customer_pb2.HydratedContext]


def _context(tier: customer_pb2.CustomerTier) -> customer_pb2.HydratedContext:
    return customer_pb2.HydratedContext(tier=tier, region="US-NY")


def test_context_is_reused_within_the_ttl_then_dropped() -> None:
    clock = FakeClock()
    cache = Contexts(ttl_s=5.0, clock=clock)
    cache.put(("acme-retail", "acme-0001"), _context(customer_pb2.CUSTOMER_TIER_GOLD))
    clock.advance(4.9)
    hit = cache.get(("acme-retail", "acme-0001"))
    assert hit is not None
    assert hit.tier == customer_pb2.CUSTOMER_TIER_GOLD
    assert cache.get(("globex-home", "acme-0001")) is None  # another tenant: its own entry
    clock.advance(0.1)
    assert cache.get(("acme-retail", "acme-0001")) is None


def test_ttl_zero_never_keeps_anything() -> None:
    cache = Contexts(ttl_s=0.0, clock=FakeClock())
    cache.put(("acme-retail", "acme-0001"), _context(customer_pb2.CUSTOMER_TIER_GOLD))
    assert cache.get(("acme-retail", "acme-0001")) is None


def test_the_oldest_entry_goes_when_full() -> None:
    cache = Contexts(ttl_s=60.0, entries=2, clock=FakeClock())
    for user in ("acme-0001", "acme-0002", "acme-0003"):
        cache.put(("acme-retail", user), _context(customer_pb2.CUSTOMER_TIER_SILVER))
    assert cache.get(("acme-retail", "acme-0001")) is None
    assert cache.get(("acme-retail", "acme-0003")) is not None


def test_an_entry_without_a_ttl_stays_until_evicted() -> None:
    clock = FakeClock()
    cache: BoundedCache[str, bool] = BoundedCache(ttl_s=math.inf, entries=2, clock=clock)
    cache.put("note one", True)
    clock.advance(1e9)
    assert cache.get("note one") is True
    cache.put("note two", False)
    cache.put("note three", False)
    assert cache.get("note one") is None
    assert cache.get("note two") is False
