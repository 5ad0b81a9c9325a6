"""The tracking worker's calls to orders: typed, read-only, errors mapped once.

Each call goes through the mesh channel (deadline = the turn's remaining time
minus the margin, trace context, tenant) and turns a failed call into a
``PeerError`` with ``from_peer``, so orders' status, ErrorInfo and RetryInfo
reach the worker's caller as orders sent them.
"""

from __future__ import annotations

from dataclasses import dataclass

from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from runtime.peer_errors import unary

PEER = "orders"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose shipment a read is about; every orders read names all three."""

    tenant_id: str
    """The tenant the turn acts for."""
    user_id: str
    """The customer."""
    awb: str
    """The shipment."""


class OrdersClient:
    """The read RPCs of orders the tracking worker uses, and nothing else."""

    __slots__ = ("_stub",)

    def __init__(self, stub: orders_grpc.OrdersServiceStub) -> None:
        self._stub = stub

    async def shipment(self, scope: Scope) -> orders_pb2.Shipment:
        """The shipment with its scan history."""
        request = orders.GetShipmentRequest(
            tenant_id=scope.tenant_id, user_id=scope.user_id, awb=scope.awb
        )
        response: orders.GetShipmentResponse = await unary(
            self._stub.GetShipment, request, peer=PEER
        )
        return response.shipment

    async def eta(self, scope: Scope) -> orders_pb2.Eta:
        """The arrival window (FAILED_PRECONDITION for a lost or returned shipment)."""
        request = orders.GetEtaRequest(
            tenant_id=scope.tenant_id, user_id=scope.user_id, awb=scope.awb
        )
        response: orders.GetEtaResponse = await unary(self._stub.GetEta, request, peer=PEER)
        return response.eta

    async def delivery_photo(self, scope: Scope) -> orders_pb2.DeliveryPhoto:
        """The proof-of-delivery photo (FAILED_PRECONDITION when there is none)."""
        request = orders.GetDeliveryPhotoRequest(
            tenant_id=scope.tenant_id, user_id=scope.user_id, awb=scope.awb
        )
        response: orders.GetDeliveryPhotoResponse = await unary(
            self._stub.GetDeliveryPhoto, request, peer=PEER
        )
        return response.photo
