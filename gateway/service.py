"""GatewayService servicer: authenticate, set the call context, delegate; proto <-> domain only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import grpc
from opentelemetry import trace
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

from gateway import access
from gateway.audit import Auditor
from gateway.auth import Authenticator
from gateway.clients import OrdersClient
from gateway.conversation import Conversations, session_not_found, start_turn_clock
from gateway.ratelimit import InProcessBuckets, RateLimiter, tokens_of
from gateway.ratelimit_config import RateLimitSettings
from gateway.sessions import SessionStore
from runtime import context as call_context
from runtime import telemetry
from runtime.principal import Principal


class GatewayServicer(pb_grpc.GatewayServiceServicer):
    """The public API of Waybill."""

    def __init__(
        self,
        *,
        auth: Authenticator,
        conversations: Conversations,
        sessions: SessionStore,
        orders: OrdersClient,
        limiter: RateLimiter | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self._auth = auth
        self._conversations = conversations
        self._sessions = sessions
        self._orders = orders
        self._limiter = limiter or RateLimiter(RateLimitSettings(), InProcessBuckets())
        self._auditor = auditor or Auditor(None)

    def _enter(
        self, context: grpc.aio.ServicerContext, *, user_id: str | None = None
    ) -> tuple[Principal, str]:
        """Authenticate, authorise acting for ``user_id`` (None: a tenant-wide call),
        and set the call's context, which every downstream hop then carries."""
        principal = self._auth.principal(context)
        if user_id is None:
            access.tenant_wide(principal)
        else:
            access.act_for(principal, user_id)
        request_id = call_context.request_id.get() or uuid.uuid4().hex
        call_context.request_id.set(request_id)
        call_context.tenant_id.set(principal.tenant_id)
        # Whatever principal the caller's metadata claimed, this one is authenticated.
        call_context.principal.set(principal)
        span = trace.get_current_span()  # the call's: whose it is is known from here on
        span.set_attribute(telemetry.ATTR_TENANT, principal.tenant_id)
        span.set_attribute(telemetry.ATTR_REQUEST_ID, request_id)
        return principal, request_id

    async def _turn(
        self,
        principal: Principal,
        request_id: str,
        request: pb.ConverseRequest | pb.ConfirmActionRequest,
        events: Callable[[], AsyncIterator[pb.TurnEvent]],
    ) -> AsyncIterator[pb.TurnEvent]:
        """A turn's events behind its rate limits, its tokens debited at ``Final``, and its
        audit record written however it ends (refused by a limit included)."""
        with self._auditor.turn(
            principal,
            user_id=request.user_id,
            session_id=request.session_id,
            request_id=request_id,
        ) as audit:
            await self._limiter.admit(principal, request.user_id)
            start_turn_clock(self._conversations.limits.turn_budget_s)
            async for event in events():
                audit.observe(event)
                if event.WhichOneof("kind") == "final":
                    await self._limiter.spend(principal, request.user_id, tokens_of(event))
                yield event

    async def Converse(
        self, request: pb.ConverseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConverseResponse]:
        principal, request_id = self._enter(context, user_id=request.user_id)
        turn = self._turn(
            principal,
            request_id,
            request,
            lambda: self._conversations.converse(principal, request, request_id),
        )
        async for event in turn:
            yield pb.ConverseResponse(event=event)

    async def ConfirmAction(
        self, request: pb.ConfirmActionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConfirmActionResponse]:
        principal, request_id = self._enter(context, user_id=request.user_id)
        turn = self._turn(
            principal,
            request_id,
            request,
            lambda: self._conversations.confirm(principal, request, request_id),
        )
        async for event in turn:
            yield pb.ConfirmActionResponse(event=event)

    async def GetSession(
        self, request: pb.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSessionResponse:
        principal, _ = self._enter(context, user_id=request.user_id)
        record = await self._sessions.get(principal.tenant_id, request.user_id, request.session_id)
        if record is None:
            raise session_not_found()
        session = pb.Session(
            session_id=record.session_id, user_id=record.user_id, state=record.state
        )
        session.expire_time.FromSeconds(int(record.expires_at))
        response = pb.GetSessionResponse(session=session)
        ticket = await self._conversations.hand_over(principal.tenant_id, record.state)
        if ticket is not None:
            response.ticket.CopyFrom(ticket)
        return response

    async def GetCustomerContext(
        self, request: pb.GetCustomerContextRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerContextResponse:
        principal, _ = self._enter(context, user_id=request.user_id)
        hydrated = await self._conversations.hydrate(principal.tenant_id, request.user_id)
        return pb.GetCustomerContextResponse(context=hydrated)

    async def ListCustomers(
        self, request: pb.ListCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCustomersResponse:
        principal, _ = self._enter(context)
        page = await self._orders.list_customers(
            tenant_id=principal.tenant_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListCustomersResponse(
            customers=[
                pb.CustomerSummary(
                    user_id=c.user_id, display_name=c.display_name, tier=c.tier, region=c.region
                )
                for c in page.customers
            ],
            next_page_token=page.next_page_token,
        )

    # -- the agents' queue ----------------------------------------------------------------

    async def ListTickets(
        self, request: pb.ListTicketsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTicketsResponse:
        principal, _ = self._enter(context)
        page = await self._orders.list_tickets(
            tenant_id=principal.tenant_id,
            state=request.state,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListTicketsResponse(tickets=page.tickets, next_page_token=page.next_page_token)

    async def ClaimTicket(
        self, request: pb.ClaimTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClaimTicketResponse:
        principal, _ = self._enter(context)
        ticket = await self._orders.claim_ticket(
            tenant_id=principal.tenant_id, ticket_id=request.ticket_id, agent_id=request.agent_id
        )
        return pb.ClaimTicketResponse(ticket=ticket)

    async def ResolveTicket(
        self, request: pb.ResolveTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveTicketResponse:
        principal, _ = self._enter(context)
        ticket = await self._orders.resolve_ticket(
            tenant_id=principal.tenant_id,
            ticket_id=request.ticket_id,
            agent_id=request.agent_id,
            resolution=request.resolution,
        )
        return pb.ResolveTicketResponse(ticket=ticket)
