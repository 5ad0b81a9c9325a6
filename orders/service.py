"""OrdersService servicer: translate proto <-> store, scope every read."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import grpc
from google.protobuf.message import Message
from waybill.common.v1 import customer_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as pb
from waybill.orders.v1 import orders_service_pb2_grpc as pb_grpc

from orders import core
from orders.store import (
    NO_CUSTOMER,
    NO_ORDER,
    NO_TICKET,
    OrderStore,
    claim,
    recent_refunds,
    resolve,
)
from runtime.errors import FailedPrecondition, NotFound

# One message for "not yours" and "does not exist": existence never leaks.
_NO_SHIPMENT = "no shipment with this AWB for this customer"


class OrdersServicer(pb_grpc.OrdersServiceServicer):
    """Every call is scoped to (tenant, user); writes are exactly-once by idempotency key
    (``orders.store``)."""

    def __init__(self, store: OrderStore) -> None:
        self._store = store

    async def _shipment(self, tenant_id: str, user_id: str, awb: str) -> orders_pb2.Shipment:
        shipment = await self._store.shipment(tenant_id, user_id, awb)
        if shipment is None:
            raise NotFound(_NO_SHIPMENT, reason="SHIPMENT_NOT_FOUND")
        return shipment

    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerResponse:
        customer = await self._store.customer(request.tenant_id, request.user_id)
        if customer is None:
            raise NotFound(NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
        return pb.GetCustomerResponse(customer=customer)

    async def ListCustomers(
        self, request: pb.ListCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCustomersResponse:
        size = request.page_size or 20
        page = await self._store.customers(
            request.tenant_id, limit=size + 1, after=request.page_token
        )
        more = len(page) > size
        page = page[:size]
        return pb.ListCustomersResponse(
            customers=page, next_page_token=page[-1].user_id if more and page else ""
        )

    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrderResponse:
        order = await self._store.order(request.tenant_id, request.user_id, request.order_id)
        if order is None:
            raise NotFound(NO_ORDER, reason="ORDER_NOT_FOUND")
        return pb.GetOrderResponse(order=order)

    async def ListActiveOrders(
        self, request: pb.ListActiveOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListActiveOrdersResponse:
        customer = await self._store.customer(request.tenant_id, request.user_id)
        if customer is None:
            raise NotFound(NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
        pairs = await self._store.active_orders(
            request.tenant_id, request.user_id, limit=request.limit or 10, now=datetime.now(UTC)
        )
        briefs = []
        for order, shipment in pairs:
            brief = customer_pb2.OrderBrief(
                order_id=order.order_id,
                awb=order.awb,
                title=order.title,
                status=shipment.status,
                delivery_note=order.delivery_note,
            )
            if (eta := core.brief_eta(shipment)) is not None:
                brief.eta.CopyFrom(eta)
            briefs.append(brief)
        return pb.ListActiveOrdersResponse(
            orders=briefs, tier=customer.tier, region=customer.region
        )

    async def GetShipment(
        self, request: pb.GetShipmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetShipmentResponse:
        return pb.GetShipmentResponse(
            shipment=await self._shipment(request.tenant_id, request.user_id, request.awb)
        )

    async def GetEta(
        self, request: pb.GetEtaRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetEtaResponse:
        shipment = await self._shipment(request.tenant_id, request.user_id, request.awb)
        return pb.GetEtaResponse(eta=core.estimate_arrival(shipment, region=request.region))

    async def GetDeliveryPhoto(
        self, request: pb.GetDeliveryPhotoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDeliveryPhotoResponse:
        shipment = await self._shipment(request.tenant_id, request.user_id, request.awb)
        if shipment.status != customer_pb2.SHIPMENT_STATUS_DELIVERED:
            raise FailedPrecondition("the shipment has not been delivered", reason="NOT_DELIVERED")
        if not shipment.has_delivery_photo:
            raise FailedPrecondition(
                "no photo was taken for this delivery", reason="NO_DELIVERY_PHOTO"
            )
        photo = orders_pb2.DeliveryPhoto(
            awb=shipment.awb,
            photo_ref=f"pod/{shipment.awb}.jpg",
            capture_time=shipment.delivered_time,
            location=shipment.delivery_location,
        )
        return pb.GetDeliveryPhotoResponse(photo=photo)

    async def GetFraudScore(
        self, request: pb.GetFraudScoreRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFraudScoreResponse:
        order = await self._store.order(request.tenant_id, request.user_id, request.order_id)
        if order is None:
            raise NotFound(NO_ORDER, reason="ORDER_NOT_FOUND")
        shipment = await self._shipment(request.tenant_id, request.user_id, order.awb)
        refunds = await self._store.customer_refunds(request.tenant_id, request.user_id)
        return pb.GetFraudScoreResponse(
            score_bp=core.fraud_score_bp(order, shipment),
            model_version=core.FRAUD_MODEL_VERSION,
            recent_refunds=recent_refunds(refunds, now=datetime.now(UTC)),
        )

    async def CreateRefund(
        self, request: pb.CreateRefundRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRefundResponse:
        written = await self._store.create_refund(
            request.tenant_id,
            request.user_id,
            request.order_id,
            request.amount,
            request.reason,
            key=request.idempotency_key,
            digest=_digest(request),
            now=datetime.now(UTC),
        )
        return pb.CreateRefundResponse(refund=written.value, replayed=written.replayed)

    async def ListRefunds(
        self, request: pb.ListRefundsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRefundsResponse:
        if await self._store.order(request.tenant_id, request.user_id, request.order_id) is None:
            raise NotFound(NO_ORDER, reason="ORDER_NOT_FOUND")
        refunds = await self._store.refunds(request.tenant_id, request.user_id, request.order_id)
        return pb.ListRefundsResponse(refunds=refunds)

    async def SendNotification(
        self, request: pb.SendNotificationRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendNotificationResponse:
        written = await self._store.send_notification(
            request.tenant_id,
            request.user_id,
            request.channel,
            request.template,
            dict(request.params),
            key=request.idempotency_key,
            digest=_digest(request),
            now=datetime.now(UTC),
        )
        return pb.SendNotificationResponse(notification_id=written.value, replayed=written.replayed)

    async def CreateEscalationTicket(
        self, request: pb.CreateEscalationTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateEscalationTicketResponse:
        written = await self._store.create_ticket(
            request.tenant_id,
            request.user_id,
            session_id=request.session_id,
            order_id=request.order_id,
            reason=request.reason,
            summary=request.summary,
            key=request.idempotency_key,
            digest=_digest(request),
            now=datetime.now(UTC),
        )
        return pb.CreateEscalationTicketResponse(ticket=written.value, replayed=written.replayed)

    async def ListEscalationTickets(
        self, request: pb.ListEscalationTicketsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListEscalationTicketsResponse:
        size = request.page_size or 20
        offset = int(request.page_token or 0)
        page = await self._store.tickets(
            request.tenant_id, state=request.state, limit=size + 1, offset=offset
        )
        more = len(page) > size
        return pb.ListEscalationTicketsResponse(
            tickets=page[:size], next_page_token=str(offset + size) if more else ""
        )

    async def GetEscalationTicket(
        self, request: pb.GetEscalationTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetEscalationTicketResponse:
        ticket = await self._store.ticket(request.tenant_id, request.ticket_id)
        if ticket is None:
            raise NotFound(NO_TICKET, reason="TICKET_NOT_FOUND")
        return pb.GetEscalationTicketResponse(ticket=ticket)

    async def ClaimEscalationTicket(
        self, request: pb.ClaimEscalationTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClaimEscalationTicketResponse:
        change = claim(request.agent_id, now=datetime.now(UTC))
        ticket = await self._store.change_ticket(request.tenant_id, request.ticket_id, change)
        return pb.ClaimEscalationTicketResponse(ticket=ticket)

    async def ResolveEscalationTicket(
        self, request: pb.ResolveEscalationTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveEscalationTicketResponse:
        change = resolve(request.agent_id, request.resolution, now=datetime.now(UTC))
        ticket = await self._store.change_ticket(request.tenant_id, request.ticket_id, change)
        return pb.ResolveEscalationTicketResponse(ticket=ticket)


def _digest(request: Message) -> str:
    """What a write was asked, less its key: one key answers one request only."""
    bare = type(request)()
    bare.CopyFrom(request)
    bare.ClearField("idempotency_key")
    return hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()
