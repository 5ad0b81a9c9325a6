"""A small driver for scripted conversations against the real gateway."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
from waybill.common.v1 import conversation_pb2, customer_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from cli.launcher import Mesh
from orders import core, seed
from tests.mesh.conftest import api_key
from workers.negotiation.machine import DEFAULT_AUTO_REFUND, Limits

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


# -- refund conversations --------------------------------------------------------------

DATA = seed.generate()
"""The demo data the mesh is seeded with (the same generator, the same rows)."""
TENANT = {c.user_id: c.tenant_id for c in DATA.customers}
TIER = {c.user_id: c.tier for c in DATA.customers}
SHIPMENT = {s.awb: s for s in DATA.shipments}


def refundable_without_a_person(order: orders_pb2.Order) -> bool:
    """Whether the worker refunds ``order`` without a person (delivered lately, low risk,
    within the tier's limit)."""
    shipment = SHIPMENT[order.awb]
    recent = datetime.now(UTC) - timedelta(days=20)
    return (
        shipment.status == S.SHIPMENT_STATUS_DELIVERED
        and shipment.delivered_time.ToDatetime(UTC) > recent
        and core.fraud_score_bp(order, shipment) < Limits().fraud_escalate_bp
        and order.total.minor_units <= DEFAULT_AUTO_REFUND[TIER[order.user_id]]
    )


def orders_where(match: object) -> Iterator[orders_pb2.Order]:
    """Orders ``match`` accepts, one per customer."""
    seen: set[str] = set()
    for order in DATA.orders:
        if order.user_id not in seen and match(order):  # type: ignore[operator]
            seen.add(order.user_id)  # one case per customer: sessions stay apart
            yield order


class Chat:
    """One customer's session with the gateway."""

    def __init__(self, m: Mesh, order: orders_pb2.Order, session: str) -> None:
        self.m, self.order, self.session = m, order, session
        self.tenant = TENANT[order.user_id]
        self.md = [("x-api-key", api_key(m, self.tenant))]

    def _stub(self, ch: grpc.Channel) -> gw_grpc.GatewayServiceStub:
        return gw_grpc.GatewayServiceStub(ch)

    def say(self, message: str) -> list[gw.TurnEvent]:
        with grpc.insecure_channel(self.m.addresses["gateway"]) as ch:
            request = gw.ConverseRequest(
                session_id=self.session, user_id=self.order.user_id, message=message
            )
            return [r.event for r in self._stub(ch).Converse(request, metadata=self.md, timeout=10)]

    def confirmation(
        self, action_id: str, decision: conversation_pb2.Decision, key: str
    ) -> gw.ConfirmActionRequest:
        """The ConfirmAction request of this session."""
        return gw.ConfirmActionRequest(
            session_id=self.session,
            user_id=self.order.user_id,
            action_id=action_id,
            decision=decision,
            idempotency_key=key,
        )

    def decide(
        self, action_id: str, decision: conversation_pb2.Decision, key: str
    ) -> list[gw.TurnEvent]:
        with grpc.insecure_channel(self.m.addresses["gateway"]) as ch:
            request = self.confirmation(action_id, decision, key)
            return [
                r.event for r in self._stub(ch).ConfirmAction(request, metadata=self.md, timeout=10)
            ]

    def refunded(self) -> int:
        with grpc.insecure_channel(self.m.addresses["orders"]) as ch:
            response = orders_grpc.OrdersServiceStub(ch).GetOrder(
                orders.GetOrderRequest(
                    tenant_id=self.tenant, user_id=self.order.user_id, order_id=self.order.order_id
                ),
                timeout=5,
            )
        return int(response.order.refunded.minor_units)


def kinds(events: list[gw.TurnEvent]) -> list[str | None]:
    return [e.WhichOneof("kind") for e in events]


def text_of(events: list[gw.TurnEvent]) -> str:
    return "".join(e.delta.text for e in events if e.WhichOneof("kind") == "delta")


def action_of(events: list[gw.TurnEvent]) -> conversation_pb2.PendingAction:
    (request,) = [
        e.confirmation_request for e in events if e.WhichOneof("kind") == "confirmation_request"
    ]
    return request.action
