"""The negotiation worker's calls to orders: typed, errors mapped once (``PeerError``
with orders' status, ErrorInfo and RetryInfo), each write keyed for exactly-once.

The refund call takes a :class:`workers.negotiation.machine.Confirmed` and nothing
else: a refund cannot be asked for without the customer's confirmation, and its
idempotency key is the confirmed action's id.
"""

from __future__ import annotations

from dataclasses import dataclass

from waybill.common.v1 import conversation_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from runtime.peer_errors import unary
from workers.negotiation.machine import Confirmed

PEER = "orders"


@dataclass(frozen=True, slots=True)
class Customer:
    """Whose case it is; every call names both."""

    tenant_id: str
    user_id: str


class OrdersClient:
    """The orders RPCs a refund case needs."""

    __slots__ = ("_stub",)

    def __init__(self, stub: orders_grpc.OrdersServiceStub) -> None:
        self._stub = stub

    async def order(self, who: Customer, order_id: str) -> orders_pb2.Order:
        """The order with its refunded amount so far."""
        request = orders.GetOrderRequest(
            tenant_id=who.tenant_id, user_id=who.user_id, order_id=order_id
        )
        response: orders.GetOrderResponse = await unary(self._stub.GetOrder, request, peer=PEER)
        return response.order

    async def shipment(self, who: Customer, awb: str) -> orders_pb2.Shipment:
        """The order's shipment."""
        request = orders.GetShipmentRequest(tenant_id=who.tenant_id, user_id=who.user_id, awb=awb)
        response: orders.GetShipmentResponse = await unary(
            self._stub.GetShipment, request, peer=PEER
        )
        return response.shipment

    async def fraud_score(self, who: Customer, order_id: str) -> orders.GetFraudScoreResponse:
        """The fraud risk of refunding the order (basis points) and the customer's refunds
        in the last 30 days."""
        request = orders.GetFraudScoreRequest(
            tenant_id=who.tenant_id, user_id=who.user_id, order_id=order_id
        )
        response: orders.GetFraudScoreResponse = await unary(
            self._stub.GetFraudScore, request, peer=PEER
        )
        return response

    async def refund(self, who: Customer, confirmed: Confirmed) -> orders.CreateRefundResponse:
        """The confirmed refund, exactly once (keyed by the action id)."""
        request = orders.CreateRefundRequest(
            tenant_id=who.tenant_id,
            user_id=who.user_id,
            order_id=confirmed.order_id,
            amount=confirmed.amount,
            reason=confirmed.reason,
            idempotency_key=confirmed.action_id,
        )
        response: orders.CreateRefundResponse = await unary(
            self._stub.CreateRefund, request, peer=PEER
        )
        return response

    async def refund_made_by(
        self, who: Customer, action: conversation_pb2.PendingAction
    ) -> orders_pb2.Refund | None:
        """The refund the action's confirmation made, if one was made (its key is the action
        id): what a turn whose reply was lost left behind."""
        request = orders.ListRefundsRequest(
            tenant_id=who.tenant_id, user_id=who.user_id, order_id=action.order_id
        )
        response: orders.ListRefundsResponse = await unary(
            self._stub.ListRefunds, request, peer=PEER
        )
        return next((r for r in response.refunds if r.idempotency_key == action.action_id), None)

    async def notify_refund(self, who: Customer, refund: orders_pb2.Refund) -> str:
        """The refund's confirmation e-mail, once per refund; its id."""
        request = orders.SendNotificationRequest(
            tenant_id=who.tenant_id,
            user_id=who.user_id,
            channel=orders_pb2.NOTIFICATION_CHANNEL_EMAIL,
            template=orders_pb2.NOTIFICATION_TEMPLATE_REFUND_APPROVED,
            params={"refund_id": refund.refund_id, "order_id": refund.order_id},
            idempotency_key=f"notify_{refund.idempotency_key}",
        )
        response: orders.SendNotificationResponse = await unary(
            self._stub.SendNotification, request, peer=PEER
        )
        return response.notification_id

    async def ticket(
        self,
        who: Customer,
        *,
        session_id: str,
        order_id: str,
        reason: orders_pb2.EscalationReason,
        summary: str,
        key: str,
    ) -> orders_pb2.EscalationTicket:
        """A ticket in the human queue, once per key."""
        request = orders.CreateEscalationTicketRequest(
            tenant_id=who.tenant_id,
            user_id=who.user_id,
            session_id=session_id,
            order_id=order_id,
            reason=reason,
            summary=summary,
            idempotency_key=key,
        )
        response: orders.CreateEscalationTicketResponse = await unary(
            self._stub.CreateEscalationTicket, request, peer=PEER
        )
        return response.ticket
