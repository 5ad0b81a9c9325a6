"""The policy worker's calls: retrieval (search, return windows) and one orders read.

Each goes through the mesh channel (remaining deadline minus the margin, trace
context, tenant) and maps a failed call with ``from_peer`` once.
"""

from __future__ import annotations

from waybill.common.v1 import customer_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.retrieval.v1 import retrieval_service_pb2 as retrieval
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as retrieval_grpc

from runtime.peer_errors import unary
from workers.policy.answer import Passage, Window

TOP_K = 5


def passage(c: retrieval.Chunk) -> Passage:
    """A retrieved chunk as the worker uses it."""
    return Passage(
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        title=c.title,
        section=c.section,
        text=c.text,
        policy_version=c.policy_version,
        source_doc=c.source_doc,
        score=c.score,
        dense_score=c.scores.dense_score,
        lexical_score=c.scores.lexical_score,
    )


class RetrievalClient:
    """Search and GetReturnWindow."""

    __slots__ = ("_stub",)

    def __init__(self, stub: retrieval_grpc.RetrievalServiceStub) -> None:
        self._stub = stub

    async def search(
        self, *, tenant_id: str, query: str, region: str, product_category: str
    ) -> list[Passage]:
        """The best chunks of the tenant's policies in force now."""
        request = retrieval.SearchRequest(
            tenant_id=tenant_id,
            query=query[:1000],
            filters=retrieval.SearchFilters(region=region, product_category=product_category),
            top_k=TOP_K,
        )
        response: retrieval.SearchResponse = await unary(
            self._stub.Search, request, peer="retrieval"
        )
        return [passage(c) for c in response.chunks]

    async def return_window(
        self,
        *,
        tenant_id: str,
        sku: str,
        tier: customer_pb2.CustomerTier,
        region: str,
        product_category: str,
    ) -> Window:
        """The product's return window for this customer (NOT_FOUND when no rule covers it)."""
        request = retrieval.GetReturnWindowRequest(
            tenant_id=tenant_id,
            sku=sku,
            tier=tier,
            region=region,
            product_category=product_category,
        )
        response: retrieval.GetReturnWindowResponse = await unary(
            self._stub.GetReturnWindow, request, peer="retrieval"
        )
        return Window(
            returnable=response.returnable,
            days=response.days,
            base_days=response.base_days,
            tier_extra_days=response.tier_extra_days,
            sku_rule=response.sku_rule,
            passages=tuple(passage(c) for c in response.chunks),
        )


class OrdersClient:
    """The one orders read the policy worker makes: the customer's own order."""

    __slots__ = ("_stub",)

    def __init__(self, stub: orders_grpc.OrdersServiceStub) -> None:
        self._stub = stub

    async def order(self, *, tenant_id: str, user_id: str, order_id: str) -> orders_pb2.Order:
        """The order with its lines (NOT_FOUND for another customer's, as for none)."""
        request = orders.GetOrderRequest(tenant_id=tenant_id, user_id=user_id, order_id=order_id)
        response: orders.GetOrderResponse = await unary(self._stub.GetOrder, request, peer="orders")
        return response.order
