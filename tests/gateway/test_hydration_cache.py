"""The gateway reuses a customer's hydrated context for a few seconds."""

from __future__ import annotations

import time
from typing import Any

import pytest
from waybill.common.v1 import customer_pb2
from waybill.orders.v1 import orders_service_pb2 as orders

from gateway.conversation import Conversations, Dependencies, Limits
from gateway.sessions import InMemorySessionStore


class CountingOrders:
    """Answers ListActiveOrders with a tier that changes on every call."""

    def __init__(self) -> None:
        self.calls = 0

    async def ListActiveOrders(self, request: Any) -> orders.ListActiveOrdersResponse:
        self.calls += 1
        tier = (
            customer_pb2.CUSTOMER_TIER_GOLD
            if self.calls == 1
            else customer_pb2.CUSTOMER_TIER_SILVER
        )
        return orders.ListActiveOrdersResponse(tier=tier, region="US-NY")


def _conversations(ttl: float) -> tuple[Conversations, CountingOrders]:
    stub = CountingOrders()
    deps = Dependencies(guardrails=None, router=None, orders=stub, workers={})  # type: ignore[arg-type]
    return Conversations(deps, InMemorySessionStore(), Limits(hydration_ttl_s=ttl)), stub


async def test_context_is_reused_within_the_ttl_then_refreshed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    convs, stub = _conversations(ttl=5.0)
    first = await convs.hydrate("acme-retail", "acme-0001")
    again = await convs.hydrate("acme-retail", "acme-0001")
    assert stub.calls == 1
    assert again.block == first.block
    await convs.hydrate("globex-home", "acme-0001")  # another tenant: its own entry
    assert stub.calls == 2
    now[0] += 5.1
    fresh = await convs.hydrate("acme-retail", "acme-0001")
    assert stub.calls == 3
    assert "Tier: Silver" in fresh.block


async def test_ttl_zero_always_asks_orders() -> None:
    convs, stub = _conversations(ttl=0.0)
    await convs.hydrate("acme-retail", "acme-0001")
    await convs.hydrate("acme-retail", "acme-0001")
    assert stub.calls == 2
