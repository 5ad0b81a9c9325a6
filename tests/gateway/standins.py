"""Stand-ins for the gateway's peers, served on real aio servers with the real
runtime (interceptors, validation, error mapping), and the gateway wired to them.

Each stand-in answers from a small script the test sets, records what it was
asked, and can fail with any status: it raises a DomainError, so the status
and its ErrorInfo/RetryInfo are built exactly as a real service builds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from waybill.common.v1 import conversation_pb2, customer_pb2, events_pb2, intent_pb2, usage_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.router.v1 import router_service_pb2 as router
from waybill.router.v1 import router_service_pb2_grpc as router_grpc
from waybill.worker.v1 import worker_service_pb2 as worker
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from gateway.audit import Auditor
from gateway.auth import Authenticator
from gateway.budgets import Budgets
from gateway.clients import Clients, GuardrailsClient, OrdersClient, RouterClient, WorkerClient
from gateway.conversation import Conversations, Limits
from gateway.outcomes import InMemoryOutcomeStore, Outcome, OutcomeKey, OutcomeStore
from gateway.ratelimit import RateLimiter
from gateway.service import GatewayServicer
from gateway.sessions import InMemorySessionStore, SessionStore
from gateway.tokens import TokenVerifier
from gateway.turn_cache import TurnCache
from runtime import context as call_context
from runtime import mesh
from runtime.client import MeshChannel, channel
from runtime.deadlines import DeadlinePolicy
from runtime.errors import STATUS_DETAILS_KEY, DomainError
from runtime.peer_errors import PeerError
from runtime.principal import Principal
from runtime.server import Registration
from tests.support.keys import fixed_key, record, ring

ACME = fixed_key(1)
GLOBEX = fixed_key(2)
ACME_KEY = ACME[1]
GLOBEX_KEY = GLOBEX[1]
ACTION_ID = "act_0123456789abcdef"
LEAK_MARKERS = ("waybill.", "127.0.0.1", "localhost", "Service/", "Service.", ":50")
"""Substrings that would mean an internal name reached the caller."""


def fail(code: grpc.StatusCode, message: str, reason: str, **kw: Any) -> DomainError:
    """The error a stand-in raises to answer with ``code``."""
    return PeerError(code, message, reason=reason, domain="standin.waybill", **kw)


@dataclass
class Guardrails(guard_grpc.GuardrailsServiceServicer):
    """Allows everything (redacting nothing) unless told otherwise."""

    verdict: int = guard.VERDICT_ALLOW
    error: DomainError | None = None
    before: Callable[[], Any] | None = None
    """Awaited before answering (to order sibling calls)."""
    calls: int = 0

    screened: list[str] = field(default_factory=list)
    """Texts ScreenTexts was asked about."""
    canary: str = "wbc-00112233445566ff"
    findings: int = 0
    """PII findings each CheckInput reports (the text is returned as sent)."""

    async def CheckInput(self, request: Any, context: Any) -> guard.CheckInputResponse:
        self.calls += 1
        if self.before is not None:
            await self.before()
        if self.error is not None:
            raise self.error
        return guard.CheckInputResponse(
            verdict=self.verdict,  # type: ignore[arg-type]
            redacted_text=request.text,
            canary=self.canary if self.verdict == guard.VERDICT_ALLOW else "",
            checks=["pii", "injection"],
            findings=[guard.PiiFinding(entity_type="EMAIL_ADDRESS")] * self.findings,
        )

    async def ScreenTexts(self, request: Any, context: Any) -> guard.ScreenTextsResponse:
        """Flags every text that shouts SYSTEM (the real scorer is tested on its own)."""
        self.screened.extend(request.texts)
        return guard.ScreenTextsResponse(
            results=[
                guard.ScreenedText(score=0.99 if "SYSTEM" in t else 0.01, flagged="SYSTEM" in t)
                for t in request.texts
            ],
            threshold=0.7,
        )


@dataclass
class Router(router_grpc.RouterServiceServicer):
    """Classifies everything as one intent for one worker."""

    intent: int = intent_pb2.INTENT_TRACKING_STATUS
    worker: int = intent_pb2.WORKER_TRACKING
    low_confidence: bool = False
    error: DomainError | None = None
    remaining: list[float | None] = field(default_factory=list)
    calls: int = 0
    vectors: dict[str, Sequence[float]] = field(default_factory=dict)
    """Message -> the embedding sent back when asked for the worker (as the router does)."""
    model_version: str = "test"
    """The model those vectors claim to be from."""
    embedding_for: list[tuple[int, ...]] = field(default_factory=list)
    """Each request's ``embedding_for``."""

    async def Classify(self, request: Any, context: Any) -> router.ClassifyResponse:
        self.calls += 1
        self.remaining.append(context.time_remaining())
        self.embedding_for.append(tuple(request.embedding_for))
        if self.error is not None:
            raise self.error
        vector = self.vectors.get(request.text)
        return router.ClassifyResponse(
            embedding=router.Embedding(model_version=self.model_version, values=list(vector))
            if vector is not None and self.worker in request.embedding_for
            else None,
            intent=self.intent,  # type: ignore[arg-type]
            worker=self.worker,  # type: ignore[arg-type]
            confidence=0.4 if self.low_confidence else 0.93,
            low_confidence=self.low_confidence,
            clarifying_question="Do you mean the shoes or the laptop stand?"
            if self.low_confidence
            else "",
        )


@dataclass
class Orders(orders_grpc.OrdersServiceServicer):
    """One customer tier; can hang until cancelled (and say so)."""

    error: DomainError | None = None
    hang: bool = False
    before: Callable[[], Any] | None = None
    """Awaited before answering ListActiveOrders (to order sibling calls)."""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0
    active: list[customer_pb2.OrderBrief] = field(default_factory=list)
    """The active orders answered."""

    async def ListActiveOrders(self, request: Any, context: Any) -> orders.ListActiveOrdersResponse:
        self.calls += 1
        self.started.set()
        if self.before is not None:
            await self.before()
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if self.error is not None:
            raise self.error
        return orders.ListActiveOrdersResponse(
            tier=customer_pb2.CUSTOMER_TIER_GOLD, region="US-NY", orders=self.active
        )

    async def ListCustomers(self, request: Any, context: Any) -> orders.ListCustomersResponse:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return orders.ListCustomersResponse(
            customers=[
                orders_pb2.Customer(
                    user_id="acme-0001",
                    display_name="Ada Example",
                    tier=customer_pb2.CUSTOMER_TIER_GOLD,
                    region="US-NY",
                )
            ],
            next_page_token="",
        )


Script = Callable[[worker.RunTurnRequest], Sequence[worker.RunTurnResponse]]


def answer(text: str, state: conversation_pb2.ConversationState | None = None) -> Script:
    """A worker script: one delta, then the result with ``state`` (else the input's)."""

    def script(request: worker.RunTurnRequest) -> list[worker.RunTurnResponse]:
        result = worker.TurnResult(
            answer=text,
            state=state if state is not None else request.state,
            usage=usage_pb2.Usage(input_tokens=12, output_tokens=5),
        )
        return [
            worker.RunTurnResponse(delta=events_pb2.TextDelta(text=text)),
            worker.RunTurnResponse(result=result),
        ]

    return script


def negotiation(request: worker.RunTurnRequest) -> list[worker.RunTurnResponse]:
    """Proposes a refund on a message; carries it out (or not) on a decision."""
    state = conversation_pb2.ConversationState()
    state.CopyFrom(request.state)
    if request.WhichOneof("input") == "decision":
        confirmed = request.decision.decision == conversation_pb2.DECISION_CONFIRM
        state.ClearField("pending_action")
        state.negotiation.stage = (
            conversation_pb2.NEGOTIATION_STAGE_REFUNDED
            if confirmed
            else conversation_pb2.NEGOTIATION_STAGE_DECLINED
        )
        text = "Refund issued." if confirmed else "Okay, nothing was refunded."
        return [
            worker.RunTurnResponse(delta=events_pb2.TextDelta(text=text)),
            worker.RunTurnResponse(result=worker.TurnResult(answer=text, state=state)),
        ]
    action = conversation_pb2.PendingAction(
        action_id=ACTION_ID,
        kind=conversation_pb2.ACTION_KIND_REFUND,
        order_id="ORD-20260001",
        summary="Refund the running shoes",
    )
    state.pending_action.CopyFrom(action)
    state.negotiation.stage = conversation_pb2.NEGOTIATION_STAGE_AWAITING_CONFIRMATION
    text = "Shall I refund the running shoes?"
    return [
        worker.RunTurnResponse(confirmation_request=events_pb2.ConfirmationRequest(action=action)),
        worker.RunTurnResponse(result=worker.TurnResult(answer=text, state=state)),
    ]


@dataclass
class Worker(worker_grpc.WorkerServiceServicer):
    """Streams a script; can fail after some events, or wait at a gate first."""

    script: Script = field(default_factory=lambda: answer("It is in transit."))
    error: DomainError | None = None
    fail_after: int = 0
    """Events streamed before ``error`` is raised."""
    gate: Callable[[], Any] | None = None
    """Awaited before streaming anything."""
    requests: list[worker.RunTurnRequest] = field(default_factory=list)
    remaining: list[float | None] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    principals: list[Principal | None] = field(default_factory=list)
    """The principal each call carried (runtime.context, set by the interceptor)."""

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def RunTurn(
        self, request: worker.RunTurnRequest, context: Any
    ) -> AsyncIterator[worker.RunTurnResponse]:
        self.requests.append(request)
        self.remaining.append(context.time_remaining())
        self.principals.append(call_context.principal.get())
        self.arrived.set()
        if self.gate is not None:
            await self.gate()
        for i, response in enumerate(self.script(request)):
            if self.error is not None and i >= self.fail_after:
                break
            yield response
        if self.error is not None:
            raise self.error


class SpyOutcomes(InMemoryOutcomeStore):
    """The real in-process store, telling the test when a claim arrives."""

    def __init__(self) -> None:
        super().__init__(ttl_s=60)
        self.claims = 0
        self.claimed = asyncio.Condition()

    async def claim(self, key: OutcomeKey, *, wait_s: float) -> Outcome | None:
        async with self.claimed:
            self.claims += 1
            self.claimed.notify_all()
        return await super().claim(key, wait_s=wait_s)


@dataclass
class Harness:
    """The gateway on a real server, wired to the stand-ins."""

    stub: Any
    guardrails: Guardrails
    router: Router
    orders: Orders
    workers: dict[intent_pb2.Worker, Worker]
    sessions: SessionStore
    outcomes: OutcomeStore

    @property
    def tracking(self) -> Worker:
        return self.workers[intent_pb2.WORKER_TRACKING]

    @property
    def negotiation(self) -> Worker:
        return self.workers[intent_pb2.WORKER_NEGOTIATION]

    async def converse(
        self,
        message: str = "where is my order?",
        *,
        session_id: str = "session-aaaa1",
        user_id: str = "acme-0001",
        key: str = ACME_KEY,
        deadline_s: float | None = 10.0,
    ) -> tuple[list[pb.TurnEvent], grpc.aio.AioRpcError | None]:
        """The events of one Converse and the error it ended with, if any."""
        request = pb.ConverseRequest(session_id=session_id, user_id=user_id, message=message)
        return await _drain(self.stub.Converse(request, metadata=_md(key), timeout=deadline_s))

    async def confirm(
        self,
        *,
        idempotency_key: str = "idem-0123456789abcdef",
        decision: int = conversation_pb2.DECISION_CONFIRM,
        session_id: str = "session-aaaa1",
        user_id: str = "acme-0001",
        key: str = ACME_KEY,
        action_id: str = ACTION_ID,
        deadline_s: float | None = 10.0,
    ) -> tuple[list[pb.TurnEvent], grpc.aio.AioRpcError | None]:
        """The events of one ConfirmAction and the error it ended with, if any."""
        request = pb.ConfirmActionRequest(
            session_id=session_id,
            user_id=user_id,
            action_id=action_id,
            decision=decision,  # type: ignore[arg-type]
            idempotency_key=idempotency_key,
        )
        return await _drain(self.stub.ConfirmAction(request, metadata=_md(key), timeout=deadline_s))

    async def get_session(
        self, *, session_id: str = "session-aaaa1", user_id: str = "acme-0001", key: str = ACME_KEY
    ) -> pb.GetSessionResponse:
        """GetSession (raises AioRpcError)."""
        request = pb.GetSessionRequest(session_id=session_id, user_id=user_id)
        response: pb.GetSessionResponse = await self.stub.GetSession(
            request, metadata=_md(key), timeout=10
        )
        return response


def _md(key: str) -> list[tuple[str, str]]:
    """An API key as ``x-api-key``; ``"Bearer <jwt>"`` as ``authorization``."""
    if key.startswith("Bearer "):
        return [("authorization", key)]
    return [("x-api-key", key)]


async def _drain(call: Any) -> tuple[list[pb.TurnEvent], grpc.aio.AioRpcError | None]:
    events: list[pb.TurnEvent] = []
    try:
        async for response in call:
            events.append(response.event)
    except grpc.aio.AioRpcError as exc:
        return events, exc
    return events, None


def full_status(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, bytes]:
    """Everything a caller can see of a failed call: code, message, detail bytes."""
    details = b""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            details = value
    return error.code(), error.details() or "", details


@dataclass
class Built:
    """What ``build`` started, to close after the test."""

    harness: Harness
    channels: list[MeshChannel]


async def build(
    serve: Callable[..., Any],
    open_channel: Callable[[str], grpc.aio.Channel],
    *,
    limits: Limits | None = None,
    sessions: SessionStore | None = None,
    outcomes: OutcomeStore | None = None,
    budgets: Budgets | None = None,
    limiter: RateLimiter | None = None,
    tokens: TokenVerifier | None = None,
    auditor: Auditor | None = None,
    turn_cache: TurnCache | None = None,
) -> Built:
    """Start the stand-ins and the gateway in front of them."""
    guardrails, routing, customers = Guardrails(), Router(), Orders()
    workers: dict[intent_pb2.Worker, Worker] = {
        intent_pb2.WORKER_TRACKING: Worker(),
        intent_pb2.WORKER_NEGOTIATION: Worker(script=negotiation),
        intent_pb2.WORKER_POLICY: Worker(script=answer("Returns are accepted within 30 days.")),
    }
    addresses = {
        "guardrails": await serve(
            "guardrails",
            [
                Registration(
                    "waybill.guardrails.v1.GuardrailsService",
                    guard_grpc.add_GuardrailsServiceServicer_to_server,
                    guardrails,
                )
            ],
        ),
        "router": await serve(
            "router",
            [
                Registration(
                    "waybill.router.v1.RouterService",
                    router_grpc.add_RouterServiceServicer_to_server,
                    routing,
                )
            ],
        ),
        "orders": await serve(
            "orders",
            [
                Registration(
                    "waybill.orders.v1.OrdersService",
                    orders_grpc.add_OrdersServiceServicer_to_server,
                    customers,
                )
            ],
        ),
    }
    for kind, standin in workers.items():
        name = intent_pb2.Worker.Name(kind).removeprefix("WORKER_").lower()
        addresses[name] = await serve(
            name,
            [
                Registration(
                    mesh.WORKER_SERVICE, worker_grpc.add_WorkerServiceServicer_to_server, standin
                )
            ],
        )
    policy = DeadlinePolicy()
    chans = {name: channel(address, policy=policy) for name, address in addresses.items()}
    clients = Clients(
        guardrails=GuardrailsClient(guard_grpc.GuardrailsServiceStub(chans["guardrails"])),
        router=RouterClient(router_grpc.RouterServiceStub(chans["router"])),
        orders=OrdersClient(orders_grpc.OrdersServiceStub(chans["orders"])),
        workers={
            intent_pb2.WORKER_TRACKING: WorkerClient(
                worker_grpc.WorkerServiceStub(chans["tracking"]), peer="tracking"
            ),
            intent_pb2.WORKER_NEGOTIATION: WorkerClient(
                worker_grpc.WorkerServiceStub(chans["negotiation"]), peer="negotiation"
            ),
            intent_pb2.WORKER_POLICY: WorkerClient(
                worker_grpc.WorkerServiceStub(chans["policy"]), peer="policy"
            ),
        },
    )
    store = sessions if sessions is not None else InMemorySessionStore(ttl_s=600)
    recorded = outcomes if outcomes is not None else InMemoryOutcomeStore(ttl_s=600)
    auth = Authenticator(ring(record(ACME, "acme-retail"), record(GLOBEX, "globex-home")), tokens)
    conversations = Conversations(
        clients,
        store,
        recorded,
        limits or Limits(hydration_ttl_s=60.0),
        budgets=budgets,
        turn_cache=turn_cache,
    )
    servicer = GatewayServicer(
        auth=auth,
        conversations=conversations,
        sessions=store,
        orders=clients.orders,
        limiter=limiter,
        auditor=auditor,
    )
    gateway = await serve(
        "gateway",
        [
            Registration(
                mesh.spec("gateway").grpc_services[0],
                pb_grpc.add_GatewayServiceServicer_to_server,
                servicer,
            )
        ],
    )
    harness = Harness(
        stub=pb_grpc.GatewayServiceStub(open_channel(gateway)),
        guardrails=guardrails,
        router=routing,
        orders=customers,
        workers=workers,
        sessions=store,
        outcomes=recorded,
    )
    return Built(harness, list(chans.values()))
