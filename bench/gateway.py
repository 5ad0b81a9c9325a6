"""Talking to the gateway: a small pool of channels and the customer pool.

Several channels, each with its own subchannel pool, give several TCP
connections; one HTTP/2 connection would otherwise serialise every stream
through one socket and one completion queue and become the bottleneck being
measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import grpc
from waybill.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc

API_KEY_HEADER = "x-api-key"

_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    # Without this, channels to the same target share one subchannel (one
    # connection) through the global pool, defeating the point of the pool.
    ("grpc.use_local_subchannel_pool", 1),
    # The bench must see every failure as it happens, not a retried success.
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
)

# Paging through ListCustomers stops here: the bench needs a varied pool, not
# a full export of a large tenant.
MAX_CUSTOMERS_PER_TENANT = 500
_PAGE_SIZE = 100


def metadata(api_key: str) -> tuple[tuple[str, str], ...]:
    """Call metadata authenticating as ``api_key``."""
    return ((API_KEY_HEADER, api_key),)


class ChannelPool:
    """``size`` insecure channels to one target, used round-robin."""

    def __init__(
        self, target: str, size: int = 4, *, options: Sequence[tuple[str, int]] = ()
    ) -> None:
        """``options`` are added to the pool's own channel options (later ones win)."""
        if size < 1:
            raise ValueError(f"need at least one channel, got {size}")
        self.target = target
        merged = dict(_CHANNEL_OPTIONS) | dict(options)
        self._channels = [
            grpc.aio.insecure_channel(target, options=list(merged.items())) for _ in range(size)
        ]
        self.stubs: tuple[Any, ...] = tuple(
            gateway_service_pb2_grpc.GatewayServiceStub(ch) for ch in self._channels
        )

    def stub(self, index: int) -> Any:
        """The stub for call ``index`` (round-robin)."""
        return self.stubs[index % len(self.stubs)]

    async def close(self) -> None:
        """Close every channel (cancels whatever is still running on them)."""
        await asyncio.gather(*(ch.close() for ch in self._channels))

    async def __aenter__(self) -> ChannelPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@dataclass(frozen=True, slots=True)
class Customer:
    """A demo customer and the key of the tenant that owns it."""

    tenant: str
    """Label of the key (the tenant id, or ``cli`` for a key given on the command line)."""
    api_key: str
    """Key that authenticates turns for this customer."""
    user_id: str
    """End customer id."""
    awbs: tuple[str, ...] = ()
    """AWBs of the customer's active orders, when fetched."""


async def list_customers(
    stub: Any, tenant: str, api_key: str, *, timeout_s: float
) -> list[Customer]:
    """The tenant's customers via ListCustomers (paged, capped)."""
    customers: list[Customer] = []
    token = ""
    while len(customers) < MAX_CUSTOMERS_PER_TENANT:
        request = gateway_service_pb2.ListCustomersRequest(page_size=_PAGE_SIZE, page_token=token)
        response = await stub.ListCustomers(request, metadata=metadata(api_key), timeout=timeout_s)
        customers.extend(Customer(tenant, api_key, c.user_id) for c in response.customers)
        token = response.next_page_token
        if not token or not response.customers:
            break
    return customers[:MAX_CUSTOMERS_PER_TENANT]


async def customer_pool(stub: Any, keys: dict[str, str], *, timeout_s: float) -> list[Customer]:
    """Customers of every tenant in ``keys``, sorted so a seeded pick is repeatable."""
    per_tenant = await asyncio.gather(
        *(list_customers(stub, tenant, key, timeout_s=timeout_s) for tenant, key in keys.items())
    )
    pool = [c for customers in per_tenant for c in customers]
    return sorted(pool, key=lambda c: (c.tenant, c.user_id))


async def with_awbs(
    stub: Any, customers: Sequence[Customer], *, timeout_s: float, parallel: int = 16
) -> list[Customer]:
    """The customers with their active orders' AWBs (GetCustomerContext).

    Best effort: a customer whose context cannot be read keeps no AWBs and is
    simply asked AWB-free questions.
    """
    gate = asyncio.Semaphore(parallel)

    async def one(customer: Customer) -> Customer:
        request = gateway_service_pb2.GetCustomerContextRequest(user_id=customer.user_id)
        async with gate:
            try:
                response = await stub.GetCustomerContext(
                    request, metadata=metadata(customer.api_key), timeout=timeout_s
                )
            except grpc.aio.AioRpcError:
                return customer
        awbs = tuple(o.awb for o in response.context.active_orders if o.awb)
        return replace(customer, awbs=awbs)

    return list(await asyncio.gather(*(one(c) for c in customers)))
