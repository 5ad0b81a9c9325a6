"""A small driver for scripted conversations against the real gateway."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from waybill.common.v1 import customer_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from cli.launcher import Mesh
from tests.mesh.conftest import api_key

S = customer_pb2.ShipmentStatus
# What the answer says for each status (the tracking worker's composer templates).
STATUS_PHRASE = {
    S.SHIPMENT_STATUS_LABEL_CREATED: "has a shipping label",
    S.SHIPMENT_STATUS_IN_TRANSIT: "is in transit",
    S.SHIPMENT_STATUS_OUT_FOR_DELIVERY: "is out for delivery",
    S.SHIPMENT_STATUS_DELIVERED: "was delivered",
    S.SHIPMENT_STATUS_DELAYED: "is delayed",
    S.SHIPMENT_STATUS_DELIVERY_ATTEMPTED: "delivery attempt",
    S.SHIPMENT_STATUS_LOST: "reported lost",
    S.SHIPMENT_STATUS_RETURNED: "returned to the sender",
}


@dataclass
class Reply:
    """What one turn produced."""

    answer: str
    tools: list[str]
    focus_awb: str
    final: gw.Final | None
    error: str = ""
    citations: list[str] = field(default_factory=list)
    """Chunk ids of the citation events, in order."""


@dataclass
class Conversation:
    """One customer's session with the gateway."""

    mesh: Mesh
    tenant: str
    user_id: str
    session_id: str
    replies: list[Reply] = field(default_factory=list)

    def say(self, message: str, *, timeout: float = 5.0) -> Reply:
        """Send one message and collect the turn."""
        md = [("x-api-key", api_key(self.mesh, self.tenant))]
        with grpc.insecure_channel(self.mesh.addresses["gateway"]) as ch:
            stub = gw_grpc.GatewayServiceStub(ch)
            request = gw.ConverseRequest(
                session_id=self.session_id, user_id=self.user_id, message=message
            )
            events = [r.event for r in stub.Converse(request, metadata=md, timeout=timeout)]
            refused = [e.refusal.message for e in events if e.WhichOneof("kind") == "refusal"]
            if refused and not self.replies:
                # A refused first turn (the guardrails blocked it) writes no session.
                reply = Reply(refused[0], [], "", None)
                self.replies.append(reply)
                return reply
            session = stub.GetSession(
                gw.GetSessionRequest(session_id=self.session_id, user_id=self.user_id),
                metadata=md,
                timeout=timeout,
            ).session
        answer = "".join(e.delta.text for e in events if e.WhichOneof("kind") == "delta")
        final = events[-1].final if events[-1].WhichOneof("kind") == "final" else None
        tools = [e.tool_call.name for e in events if e.WhichOneof("kind") == "tool_call"]
        cited = [e.citation.chunk_id for e in events if e.WhichOneof("kind") == "citation"]
        reply = Reply(answer, tools, session.state.focus_awb, final, citations=cited)
        self.replies.append(reply)
        return reply


def customers(m: Mesh, tenant: str) -> dict[str, list[customer_pb2.OrderBrief]]:
    """Every customer of ``tenant`` with their active orders, read from orders directly."""
    found: dict[str, list[customer_pb2.OrderBrief]] = {}
    with grpc.insecure_channel(m.addresses["orders"]) as ch:
        stub = orders_grpc.OrdersServiceStub(ch)
        token = ""
        while True:
            page = stub.ListCustomers(
                orders.ListCustomersRequest(tenant_id=tenant, page_size=100, page_token=token),
                timeout=5,
            )
            for c in page.customers:
                active = stub.ListActiveOrders(
                    orders.ListActiveOrdersRequest(tenant_id=tenant, user_id=c.user_id),
                    timeout=5,
                )
                found[c.user_id] = list(active.orders)
            token = page.next_page_token
            if not token:
                return found


def shipment(m: Mesh, tenant: str, user_id: str, awb: str) -> orders.GetShipmentResponse:
    """A shipment read from orders directly (the ground truth)."""
    with grpc.insecure_channel(m.addresses["orders"]) as ch:
        response: orders.GetShipmentResponse = orders_grpc.OrdersServiceStub(ch).GetShipment(
            orders.GetShipmentRequest(tenant_id=tenant, user_id=user_id, awb=awb), timeout=5
        )
        return response
