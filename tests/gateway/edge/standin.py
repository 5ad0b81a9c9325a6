"""A scripted stand-in for the gateway: a real grpc.aio GatewayService.

It speaks the real protocol through the production interceptor chain (tests
start it with the ``serve`` fixture), so every status it raises reaches the
edge exactly as the real gateway's would: code, message and rich details.
What it does is chosen by the request:

- Converse ``message``: ``fail:<CODE>`` raises before any event;
  ``midfail:<CODE>`` sends a delta and a TurnError event, then fails;
  ``leak:<CODE>`` and ``midleak:<CODE>`` do the same with a status naming
  internal methods and hosts; ``deadline-short`` fails as a service with too
  little time left for its next call;
  ``slow:<seconds>`` waits, then answers; ``confirm`` asks for a refund
  confirmation; ``incomplete`` ends OK without a final event; anything else
  answers with a delta and a final event.
- ListCustomers ``page_token`` ``fail:<CODE>`` (or ``leak:<CODE>``) raises;
  otherwise two customers.
- GetSession answers with an empty session of the requested ids.
- ConfirmAction answers with a delta naming the decision and a final event.
- ListTickets answers one open ticket; ClaimTicket and ResolveTicket answer the
  ticket claimed or resolved by the requesting agent.

Every call's metadata and remaining time are recorded in ``calls``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from waybill.common.v1 import conversation_pb2, customer_pb2, events_pb2, money_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from waybill.orders.v1 import orders_pb2

from runtime import status_codes
from runtime.deadlines import DeadlinePolicy, outgoing_timeout
from runtime.errors import DomainError
from runtime.server import Registration

ACTION_ID = "act_0123456789abcdef"
RETRY_AFTER_S = 2.5


@dataclass(slots=True)
class Seen:
    """One call as the stand-in saw it."""

    method: str
    metadata: dict[str, str]
    time_remaining: float | None
    request: object


@dataclass
class ScriptedGateway(pb_grpc.GatewayServiceServicer):
    """See the module docstring."""

    calls: list[Seen] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def _record(self, method: str, request: object, context: grpc.aio.ServicerContext) -> None:
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        self.calls.append(Seen(method, md, context.time_remaining(), request))

    def last(self, method: str) -> Seen:
        """The latest call of ``method``."""
        return next(c for c in reversed(self.calls) if c.method == method)

    async def Converse(
        self, request: pb.ConverseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConverseResponse]:
        self._record("Converse", request, context)
        text = request.message
        try:
            if text.startswith("fail:"):
                raise failure(text.removeprefix("fail:"))
            if text.startswith("leak:"):
                raise failure(text.removeprefix("leak:"), leaky=True)
            if text == "deadline-short":
                # The path of the original leak: too little time for a downstream call.
                outgoing_timeout(
                    DeadlinePolicy(min_s=1000.0),
                    target="/waybill.guardrails.v1.GuardrailsService/CheckInput",
                )
            if text.startswith(("midfail:", "midleak:")):
                code = text.partition(":")[2]
                yield delta("Let me check. ")
                yield pb.ConverseResponse(
                    event=pb.TurnEvent(
                        error=events_pb2.TurnError(
                            code=status_codes.to_proto(grpc.StatusCode[code]),
                            reason="TEST_" + code,
                            message="Sorry, something failed on our side.",
                            retryable=code == "UNAVAILABLE",
                        )
                    )
                )
                raise failure(code, leaky=text.startswith("midleak:"))
            if text.startswith("slow:"):
                await asyncio.sleep(float(text.removeprefix("slow:")))
            if text == "confirm":
                yield delta("I can refund this order. ")
                yield confirmation()
                yield final("I can refund this order.")
                return
            if text == "incomplete":
                yield delta("This answer stops short")
                return
            yield delta("Your order is out for delivery.")
            yield final("Your order is out for delivery.")
        except asyncio.CancelledError:
            self.cancelled.append("Converse")
            raise

    async def ConfirmAction(
        self, request: pb.ConfirmActionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConfirmActionResponse]:
        self._record("ConfirmAction", request, context)
        done = request.decision == conversation_pb2.DECISION_CONFIRM
        text = "Refund confirmed: 12.34 USD." if done else "Okay, no refund was made."
        yield pb.ConfirmActionResponse(event=pb.TurnEvent(delta=events_pb2.TextDelta(text=text)))
        yield pb.ConfirmActionResponse(event=pb.TurnEvent(final=pb.Final(answer=text)))

    async def ListCustomers(
        self, request: pb.ListCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCustomersResponse:
        self._record("ListCustomers", request, context)
        if request.page_token.startswith("fail:"):
            raise failure(request.page_token.removeprefix("fail:"))
        if request.page_token.startswith("leak:"):
            raise failure(request.page_token.removeprefix("leak:"), leaky=True)
        return pb.ListCustomersResponse(
            customers=[
                pb.CustomerSummary(user_id="acme-0001", display_name="Avery Stone", region="US"),
                pb.CustomerSummary(user_id="acme-0002", display_name="Blake Reed", region="US"),
            ]
        )

    async def GetSession(
        self, request: pb.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSessionResponse:
        self._record("GetSession", request, context)
        session = pb.Session(session_id=request.session_id, user_id=request.user_id)
        session.expire_time.FromSeconds(1_900_000_000)
        return pb.GetSessionResponse(session=session)

    async def GetCustomerContext(
        self, request: pb.GetCustomerContextRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerContextResponse:
        self._record("GetCustomerContext", request, context)
        response = pb.GetCustomerContextResponse()
        response.context.region = "US"
        brief = response.context.active_orders.add(
            order_id="ORD-20260001", awb="WB0000000001", title="Desk lamp"
        )
        brief.status = customer_pb2.SHIPMENT_STATUS_OUT_FOR_DELIVERY
        return response

    async def ListTickets(
        self, request: pb.ListTicketsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTicketsResponse:
        self._record("ListTickets", request, context)
        return pb.ListTicketsResponse(tickets=[_ticket("TCK-0123456789ABCDEF")])

    async def ClaimTicket(
        self, request: pb.ClaimTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClaimTicketResponse:
        self._record("ClaimTicket", request, context)
        ticket = _ticket(request.ticket_id)
        ticket.state = orders_pb2.TICKET_STATE_CLAIMED
        ticket.agent_id = request.agent_id
        return pb.ClaimTicketResponse(ticket=ticket)

    async def ResolveTicket(
        self, request: pb.ResolveTicketRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveTicketResponse:
        self._record("ResolveTicket", request, context)
        ticket = _ticket(request.ticket_id)
        ticket.state = orders_pb2.TICKET_STATE_RESOLVED
        ticket.agent_id = request.agent_id
        ticket.resolution = request.resolution
        return pb.ResolveTicketResponse(ticket=ticket)


def _ticket(ticket_id: str) -> orders_pb2.EscalationTicket:
    ticket = orders_pb2.EscalationTicket(
        ticket_id=ticket_id,
        queue="support-gold",
        priority=2,
        reason=orders_pb2.ESCALATION_REASON_CUSTOMER_REQUEST,
        state=orders_pb2.TICKET_STATE_OPEN,
        user_id="acme-0001",
        session_id="web-0123456789",
        summary="The customer asked for a person.",
    )
    ticket.create_time.FromSeconds(1_800_000_000)
    return ticket


LEAKY_MESSAGE = (
    "orders at 127.0.0.1:50051 failed: /waybill.orders.v1.OrdersService/ListCustomers"
    ' Traceback (most recent call last): File "orders/service.py", line 7'
)
"""What a careless service would put in a status: the edge must not pass it on."""


def failure(code_name: str, *, leaky: bool = False) -> DomainError:
    """A domain error with any status code (RetryInfo for RESOURCE_EXHAUSTED).

    ``leaky``: the message and ErrorInfo metadata name internal methods and hosts.
    """
    code = grpc.StatusCode[code_name]
    metadata = {"which": code_name}
    if leaky:
        metadata |= {
            "target": "/waybill.orders.v1.OrdersService/ListCustomers",
            "upstream": "127.0.0.1:50051",
        }
    error = DomainError(
        LEAKY_MESSAGE if leaky else f"stand-in failure {code_name}",
        reason="TEST_" + code_name,
        metadata=metadata,
        retry_after_s=RETRY_AFTER_S if code is grpc.StatusCode.RESOURCE_EXHAUSTED else None,
    )
    error.code = code
    return error


def delta(text: str) -> pb.ConverseResponse:
    """A text delta event."""
    return pb.ConverseResponse(event=pb.TurnEvent(delta=events_pb2.TextDelta(text=text)))


def final(answer: str) -> pb.ConverseResponse:
    """A final event."""
    return pb.ConverseResponse(event=pb.TurnEvent(final=pb.Final(answer=answer)))


def confirmation() -> pb.ConverseResponse:
    """A refund confirmation request."""
    action = conversation_pb2.PendingAction(
        action_id=ACTION_ID,
        kind=conversation_pb2.ACTION_KIND_REFUND,
        order_id="ORD-20260001",
        amount=money_pb2.Money(currency_code="USD", minor_units=1234),
        summary="Refund 12.34 USD for order ORD-20260001 to the original payment method?",
    )
    return pb.ConverseResponse(
        event=pb.TurnEvent(confirmation_request=events_pb2.ConfirmationRequest(action=action))
    )


def registration(servicer: ScriptedGateway) -> Registration:
    """How ``serve`` registers the stand-in."""
    return Registration(
        "waybill.gateway.v1.GatewayService", pb_grpc.add_GatewayServiceServicer_to_server, servicer
    )
