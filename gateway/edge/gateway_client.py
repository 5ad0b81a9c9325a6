"""The edge's one client of the gateway: a channel, its stubs, and the health probe.

A plain channel without the mesh interceptor: the edge is not inside a gRPC
call, so it has no inbound deadline or tenant to pass on. Every call gets the
metadata and timeout the handler derived from the HTTP request. Idempotent
reads are retried on UNAVAILABLE through the service config; turns never are.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

from runtime import mesh
from runtime.client import service_config

Metadata = tuple[tuple[str, str], ...]

GATEWAY_SERVICE = mesh.spec("gateway").grpc_services[0]
_READS: list[tuple[str, str | None]] = [
    (GATEWAY_SERVICE, "GetSession"),
    (GATEWAY_SERVICE, "GetCustomerContext"),
    (GATEWAY_SERVICE, "ListCustomers"),
    (GATEWAY_SERVICE, "ListTickets"),
    # The same agent claiming or resolving again gets the ticket back unchanged.
    (GATEWAY_SERVICE, "ClaimTicket"),
    (GATEWAY_SERVICE, "ResolveTicket"),
]


class GatewayClient:
    """Calls to the gateway on behalf of HTTP requests."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.enable_retries", 1),
                ("grpc.service_config", service_config(_READS)),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.max_receive_message_length", 8 * 1024 * 1024),
                # Reconnect quickly after a gateway restart instead of backing off for seconds.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self._stub = pb_grpc.GatewayServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def converse(
        self, request: pb.ConverseRequest, *, metadata: Metadata, timeout_s: float
    ) -> grpc.aio.UnaryStreamCall:
        """Start a turn; the caller reads (or cancels) the stream."""
        call: grpc.aio.UnaryStreamCall = self._stub.Converse(
            request, metadata=metadata, timeout=timeout_s
        )
        return call

    def confirm_action(
        self, request: pb.ConfirmActionRequest, *, metadata: Metadata, timeout_s: float
    ) -> grpc.aio.UnaryStreamCall:
        """Carry a decision on a pending action; the caller reads (or cancels) the stream."""
        call: grpc.aio.UnaryStreamCall = self._stub.ConfirmAction(
            request, metadata=metadata, timeout=timeout_s
        )
        return call

    async def get_session(
        self, request: pb.GetSessionRequest, *, metadata: Metadata, timeout_s: float
    ) -> pb.GetSessionResponse:
        """GetSession."""
        response: pb.GetSessionResponse = await self._stub.GetSession(
            request, metadata=metadata, timeout=timeout_s
        )
        return response

    async def get_customer_context(
        self, request: pb.GetCustomerContextRequest, *, metadata: Metadata, timeout_s: float
    ) -> pb.GetCustomerContextResponse:
        """GetCustomerContext."""
        response: pb.GetCustomerContextResponse = await self._stub.GetCustomerContext(
            request, metadata=metadata, timeout=timeout_s
        )
        return response

    async def list_customers(
        self, request: pb.ListCustomersRequest, *, metadata: Metadata, timeout_s: float
    ) -> pb.ListCustomersResponse:
        """ListCustomers."""
        response: pb.ListCustomersResponse = await self._stub.ListCustomers(
            request, metadata=metadata, timeout=timeout_s
        )
        return response

    async def list_tickets(
        self, request: pb.ListTicketsRequest, *, metadata: Metadata, timeout_s: float
    ) -> pb.ListTicketsResponse:
        """ListTickets."""
        response: pb.ListTicketsResponse = await self._stub.ListTickets(
            request, metadata=metadata, timeout=timeout_s
        )
        return response

    async def claim_ticket(
        self, request: pb.ClaimTicketRequest, *, metadata: Metadata, timeout_s: float
    ) -> pb.ClaimTicketResponse:
        """ClaimTicket."""
        response: pb.ClaimTicketResponse = await self._stub.ClaimTicket(
            request, metadata=metadata, timeout=timeout_s
        )
        return response

    async def resolve_ticket(
        self, request: pb.ResolveTicketRequest, *, metadata: Metadata, timeout_s: float
    ) -> pb.ResolveTicketResponse:
        """ResolveTicket."""
        response: pb.ResolveTicketResponse = await self._stub.ResolveTicket(
            request, metadata=metadata, timeout=timeout_s
        )
        return response

    async def health(self, *, timeout_s: float) -> str:
        """GatewayService health: ``SERVING``, ``NOT_SERVING`` or ``UNREACHABLE: <code>``."""
        try:
            response = await self._health.Check(
                health_pb2.HealthCheckRequest(service=GATEWAY_SERVICE), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            return f"UNREACHABLE: {exc.code().name}"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def close(self) -> None:
        """Close the channel (cancels calls still running)."""
        await self._channel.close()
