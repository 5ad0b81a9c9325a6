"""Typed wrappers over the stubs the gateway calls.

Every failure of a downstream call leaves here as a ``runtime.peer_errors.PeerError``
(one mapping: the codes a caller acts on survive with their ErrorInfo and RetryInfo,
internal names do not). Each call's deadline comes from the mesh channel, which
derives it from the turn's one budget in ``runtime.context.deadline``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from waybill.common.v1 import intent_pb2
from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.router.v1 import router_service_pb2 as router
from waybill.worker.v1 import worker_service_pb2 as worker

from runtime.errors import DeadlineExceeded
from runtime.peer_errors import PeerError, from_peer, unary
from runtime.text_screen import TextScreen

log = logging.getLogger("waybill.gateway")

NOTE_CHECK = "order_note_injection"


def _too_late(exc: DeadlineExceeded, peer: str) -> PeerError:
    """The channel refused to start a call for lack of time: one PeerError for the turn's
    failure mapping, like every other failed call."""
    log.warning("no time left for a call", extra={"peer": peer, "detail": exc.message})
    return PeerError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "the request ran out of time",
        reason="DEADLINE_TOO_SHORT",
    )


async def _unary(peer: str, method: Any, request: Any) -> Any:
    try:
        return await unary(method, request, peer=peer)
    except DeadlineExceeded as exc:
        raise _too_late(exc, peer) from exc


class GuardrailsClient:
    """Input checks before a message reaches a model."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub
        self.notes = TextScreen(stub, origin=guard.TEXT_ORIGIN_ORDER_NOTE, check=NOTE_CHECK)
        """Delivery notes a prompt would carry, screened for injected instructions."""

    async def check_input(
        self, *, tenant_id: str, session_id: str, text: str
    ) -> guard.CheckInputResponse:
        """Verdict and redacted text of a customer message."""
        request = guard.CheckInputRequest(tenant_id=tenant_id, session_id=session_id, text=text)
        response: guard.CheckInputResponse = await _unary(
            "guardrails", self._stub.CheckInput, request
        )
        return response


class RouterClient:
    """Intent classification."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    async def classify(
        self,
        *,
        tenant_id: str,
        text: str,
        previous_intent: intent_pb2.Intent,
        embedding_for: Sequence[intent_pb2.Worker] = (),
    ) -> router.ClassifyResponse:
        """The intent, worker and confidence of a (redacted) message, and its embedding
        when the worker picked is one of ``embedding_for``."""
        request = router.ClassifyRequest(
            tenant_id=tenant_id,
            text=text,
            previous_intent=previous_intent,
            embedding_for=embedding_for,
        )
        response: router.ClassifyResponse = await _unary("router", self._stub.Classify, request)
        return response


class OrdersClient:
    """Customer data for hydration and support tooling."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    async def list_active_orders(
        self, *, tenant_id: str, user_id: str, limit: int
    ) -> orders.ListActiveOrdersResponse:
        """Tier, region and the customer's active orders."""
        request = orders.ListActiveOrdersRequest(tenant_id=tenant_id, user_id=user_id, limit=limit)
        response: orders.ListActiveOrdersResponse = await _unary(
            "orders", self._stub.ListActiveOrders, request
        )
        return response

    async def list_customers(
        self, *, tenant_id: str, page_size: int, page_token: str
    ) -> orders.ListCustomersResponse:
        """One page of the tenant's customers."""
        request = orders.ListCustomersRequest(
            tenant_id=tenant_id, page_size=page_size, page_token=page_token
        )
        response: orders.ListCustomersResponse = await _unary(
            "orders", self._stub.ListCustomers, request
        )
        return response

    async def list_tickets(
        self,
        *,
        tenant_id: str,
        state: orders_pb2.TicketState,
        page_size: int,
        page_token: str,
    ) -> orders.ListEscalationTicketsResponse:
        """One page of the tenant's hand-over tickets, most urgent first."""
        request = orders.ListEscalationTicketsRequest(
            tenant_id=tenant_id, state=state, page_size=page_size, page_token=page_token
        )
        response: orders.ListEscalationTicketsResponse = await _unary(
            "orders", self._stub.ListEscalationTickets, request
        )
        return response

    async def ticket(self, *, tenant_id: str, ticket_id: str) -> orders_pb2.EscalationTicket:
        """One ticket of the tenant as it stands."""
        request = orders.GetEscalationTicketRequest(tenant_id=tenant_id, ticket_id=ticket_id)
        response: orders.GetEscalationTicketResponse = await _unary(
            "orders", self._stub.GetEscalationTicket, request
        )
        return response.ticket

    async def claim_ticket(
        self, *, tenant_id: str, ticket_id: str, agent_id: str
    ) -> orders_pb2.EscalationTicket:
        """An agent takes a ticket."""
        request = orders.ClaimEscalationTicketRequest(
            tenant_id=tenant_id, ticket_id=ticket_id, agent_id=agent_id
        )
        response: orders.ClaimEscalationTicketResponse = await _unary(
            "orders", self._stub.ClaimEscalationTicket, request
        )
        return response.ticket

    async def resolve_ticket(
        self, *, tenant_id: str, ticket_id: str, agent_id: str, resolution: str
    ) -> orders_pb2.EscalationTicket:
        """The agent who has a ticket closes it."""
        request = orders.ResolveEscalationTicketRequest(
            tenant_id=tenant_id, ticket_id=ticket_id, agent_id=agent_id, resolution=resolution
        )
        response: orders.ResolveEscalationTicketResponse = await _unary(
            "orders", self._stub.ResolveEscalationTicket, request
        )
        return response.ticket


class WorkerClient:
    """One worker's RunTurn stream."""

    def __init__(self, stub: Any, *, peer: str) -> None:
        self._stub = stub
        self.peer = peer
        """Name of the worker in logs (never in what a caller sees)."""

    async def run_turn(
        self, request: worker.RunTurnRequest
    ) -> AsyncIterator[worker.RunTurnResponse]:
        """The worker's events; a failure before or during the stream raises PeerError."""
        try:
            call = self._stub.RunTurn(request)
        except DeadlineExceeded as exc:
            raise _too_late(exc, self.peer) from exc
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise from_peer(exc, peer=self.peer) from exc
        finally:
            # Stopping early (the caller went away) must not leave the stream open.
            call.cancel()


@dataclass(frozen=True, slots=True)
class Clients:
    """Everything a turn calls."""

    guardrails: GuardrailsClient
    """Input checks."""
    router: RouterClient
    """Classification."""
    orders: OrdersClient
    """Hydration, customer lists and the agents' ticket queue."""
    workers: Mapping[intent_pb2.Worker, WorkerClient]
    """Worker enum value -> client; WORKER_HUMAN is served by the negotiation worker."""
