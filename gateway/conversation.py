"""One conversation turn, end to end: session, hydration, guardrails, routing,
the worker's stream, and the stored result. The servicer only translates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import grpc
from waybill.common.v1 import conversation_pb2, customer_pb2, events_pb2, intent_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.router.v1 import router_service_pb2 as router
from waybill.router.v1 import router_service_pb2_grpc as router_grpc
from waybill.worker.v1 import worker_service_pb2 as worker
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from gateway.hydration import hydrated
from gateway.sessions import SessionRecord, SessionStore
from runtime import status_codes
from runtime.credentials import Principal
from runtime.errors import (
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
    Unimplemented,
)

W = intent_pb2
_TOPIC: dict[intent_pb2.Worker, str] = {
    W.WORKER_POLICY: "policy questions",
    W.WORKER_NEGOTIATION: "refunds, disputes and cancellations",
    W.WORKER_HUMAN: "handing over to a person",
}


@dataclass(frozen=True, slots=True)
class Dependencies:
    """The stubs a turn calls."""

    guardrails: guard_grpc.GuardrailsServiceStub
    router: router_grpc.RouterServiceStub
    orders: orders_grpc.OrdersServiceStub
    workers: Mapping[intent_pb2.Worker, worker_grpc.WorkerServiceStub]
    """Worker enum value -> stub; WORKER_HUMAN is served by the negotiation worker."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Conversation limits (the session store trims history)."""

    active_orders: int = 10
    """Active orders hydrated into the context block."""
    hydration_ttl_s: float = 5.0
    """How long a hydrated context is reused for the same customer (0 = never). Tools
    read live data on every call; the context block only frames the turn, and a few
    seconds of staleness there stays far inside the 60 s freshness goal for features."""
    hydration_entries: int = 10_000
    """Customers whose context is kept at once."""


def _event(**kind: object) -> pb.TurnEvent:
    return pb.TurnEvent(**kind)  # type: ignore[arg-type]


def _failure(
    exc: grpc.aio.AioRpcError, worker_kind: intent_pb2.Worker
) -> tuple[pb.TurnEvent, DomainError]:
    """The error event a customer sees and the status the call ends with."""
    code = exc.code()
    if code == grpc.StatusCode.UNIMPLEMENTED:
        topic = _TOPIC.get(worker_kind, "that request")
        message = f"Sorry, I can't help with {topic} yet. I can track your shipments."
        error: DomainError = Unimplemented(message, reason="WORKER_NOT_AVAILABLE")
        retryable = False
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        message = "Sorry, that took too long. Please try again."
        error = DeadlineExceeded(message, reason="WORKER_DEADLINE_EXCEEDED")
        retryable = True
    elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        message = "Sorry, part of our system is not answering right now. Please try again."
        error = Unavailable(message, reason="WORKER_UNAVAILABLE")
        retryable = True
    else:
        message = "Sorry, something went wrong on our side. Please try again."
        error = DomainError(message, reason="WORKER_FAILED", metadata={"status": code.name})
        error.code = grpc.StatusCode.INTERNAL
        retryable = False
    event = _event(
        error=events_pb2.TurnError(
            code=status_codes.to_proto(error.code),
            reason=error.reason,
            message=message,
            retryable=retryable,
        )
    )
    return event, error


def _dependency_error(exc: grpc.aio.AioRpcError, what: str) -> DomainError:
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{what} did not answer in time", reason="DEPENDENCY_DEADLINE")
    return Unavailable(
        f"{what} is not available",
        reason="DEPENDENCY_UNAVAILABLE",
        metadata={"dependency": what, "status": exc.code().name},
    )


class Conversations:
    """Runs turns."""

    def __init__(self, deps: Dependencies, sessions: SessionStore, limits: Limits) -> None:
        self._deps = deps
        self._sessions = sessions
        self._limits = limits
        # (tenant, user) -> (expiry, context); oldest first for eviction.
        self._hydrated: dict[tuple[str, str], tuple[float, customer_pb2.HydratedContext]] = {}

    async def session(self, principal: Principal, session_id: str, user_id: str) -> SessionRecord:
        """The caller's session, or a new empty one; never another customer's."""
        record = await self._sessions.get(principal.tenant_id, session_id)
        if record is None:
            return SessionRecord(
                principal.tenant_id, user_id, session_id, conversation_pb2.ConversationState()
            )
        if record.user_id != user_id:
            raise PermissionDenied(
                "this session belongs to another customer", reason="SESSION_OWNER_MISMATCH"
            )
        return record

    async def hydrate(self, tenant_id: str, user_id: str) -> customer_pb2.HydratedContext:
        """The customer's context block from orders (reused for a few seconds)."""
        key = (tenant_id, user_id)
        now = time.monotonic()
        entry = self._hydrated.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        context = await self._hydrate(tenant_id, user_id)
        if self._limits.hydration_ttl_s > 0:
            if len(self._hydrated) >= self._limits.hydration_entries:
                self._hydrated.pop(next(iter(self._hydrated)))
            self._hydrated.pop(key, None)
            self._hydrated[key] = (now + self._limits.hydration_ttl_s, context)
        return context

    async def _hydrate(self, tenant_id: str, user_id: str) -> customer_pb2.HydratedContext:
        try:
            active = await self._deps.orders.ListActiveOrders(
                orders.ListActiveOrdersRequest(
                    tenant_id=tenant_id, user_id=user_id, limit=self._limits.active_orders
                )
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("no such customer", reason="CUSTOMER_NOT_FOUND") from exc
            raise _dependency_error(exc, "orders") from exc
        return hydrated(active.tier, active.region, list(active.orders))

    async def converse(
        self, principal: Principal, request: pb.ConverseRequest, request_id: str
    ) -> AsyncIterator[pb.TurnEvent]:
        """One turn from a customer message."""
        record = await self.session(principal, request.session_id, request.user_id)
        try:
            context, check = await asyncio.gather(
                self.hydrate(principal.tenant_id, request.user_id),
                self._deps.guardrails.CheckInput(
                    guard.CheckInputRequest(
                        tenant_id=principal.tenant_id,
                        session_id=request.session_id,
                        text=request.message,
                    )
                ),
            )
        except grpc.aio.AioRpcError as exc:
            raise _dependency_error(exc, "guardrails") from exc
        if check.verdict == guard.VERDICT_BLOCK:
            yield _event(
                refusal=events_pb2.Refusal(
                    reason=events_pb2.REFUSAL_REASON_PROMPT_INJECTION,
                    message="Sorry, I can't help with that request.",
                )
            )
            return
        text = check.redacted_text
        previous = next(
            (
                t.intent
                for t in reversed(record.state.turns)
                if t.role == conversation_pb2.ROLE_CUSTOMER
            ),
            W.INTENT_UNSPECIFIED,
        )
        try:
            decision = await self._deps.router.Classify(
                router.ClassifyRequest(
                    tenant_id=principal.tenant_id, text=text, previous_intent=previous
                )
            )
        except grpc.aio.AioRpcError as exc:
            raise _dependency_error(exc, "router") from exc
        if decision.low_confidence:
            answer = decision.clarifying_question
            yield _event(delta=events_pb2.TextDelta(text=answer))
            await self._store(record, text, decision.intent, answer, record.state)
            yield _event(
                final=pb.Final(
                    intent=decision.intent,
                    worker=W.WORKER_UNSPECIFIED,
                    answer=answer,
                    request_id=request_id,
                )
            )
            return
        turn = worker.RunTurnRequest(
            tenant_id=principal.tenant_id,
            user_id=request.user_id,
            session_id=request.session_id,
            message=text,
            intent=decision.intent,
            confidence=decision.confidence,
            state=record.state,
            context=context,
        )
        async for event in self._run_worker(decision.worker, turn, record, text, request_id):
            yield event

    async def confirm(
        self, principal: Principal, request: pb.ConfirmActionRequest, request_id: str
    ) -> AsyncIterator[pb.TurnEvent]:
        """Carry the customer's decision on the pending action to the negotiation worker."""
        record = await self._sessions.get(principal.tenant_id, request.session_id)
        if record is None or record.user_id != request.user_id:
            raise NotFound("no such session for this customer", reason="SESSION_NOT_FOUND")
        pending = record.state.pending_action
        if not record.state.HasField("pending_action"):
            raise FailedPrecondition(
                "nothing is waiting for confirmation", reason="NO_PENDING_ACTION"
            )
        if pending.action_id != request.action_id:
            raise FailedPrecondition("that action is no longer pending", reason="ACTION_MISMATCH")
        context = await self.hydrate(principal.tenant_id, request.user_id)
        turn = worker.RunTurnRequest(
            tenant_id=principal.tenant_id,
            user_id=request.user_id,
            session_id=request.session_id,
            decision=worker.ActionDecision(action_id=request.action_id, decision=request.decision),
            intent=W.INTENT_NEGOTIATION_REFUND_REQUEST,
            state=record.state,
            context=context,
        )
        label = "confirm" if request.decision == conversation_pb2.DECISION_CONFIRM else "decline"
        async for event in self._run_worker(W.WORKER_NEGOTIATION, turn, record, label, request_id):
            yield event

    async def _run_worker(
        self,
        kind: intent_pb2.Worker,
        turn: worker.RunTurnRequest,
        record: SessionRecord,
        customer_text: str,
        request_id: str,
    ) -> AsyncIterator[pb.TurnEvent]:
        stub = self._deps.workers.get(kind)
        if stub is None:
            raise Unimplemented(f"no worker serves {W.Worker.Name(kind)}", reason="NO_WORKER")
        try:
            async for response in stub.RunTurn(turn):
                which = response.WhichOneof("event")
                if which == "result":
                    result = response.result
                    await self._store(
                        record, customer_text, turn.intent, result.answer, result.state
                    )
                    yield _event(
                        final=pb.Final(
                            intent=turn.intent,
                            worker=kind,
                            usage=result.usage,
                            answer=result.answer,
                            request_id=request_id,
                        )
                    )
                    return
                if which == "error":
                    yield _event(error=response.error)
                    failed = DomainError(response.error.message, reason=response.error.reason)
                    failed.code = status_codes.from_proto(response.error.code)
                    raise failed
                if which is not None:
                    yield _event(**{which: getattr(response, which)})
        except grpc.aio.AioRpcError as exc:
            event, error = _failure(exc, kind)
            yield event
            raise error from exc
        event, error = _failure(_NoResult(), kind)
        yield event
        raise error

    async def _store(
        self,
        record: SessionRecord,
        customer_text: str,
        intent: intent_pb2.Intent,
        answer: str,
        state: conversation_pb2.ConversationState,
    ) -> None:
        new = conversation_pb2.ConversationState()
        new.CopyFrom(state)
        del new.turns[:]
        new.turns.extend(record.state.turns)
        stamp = conversation_pb2.Turn(
            role=conversation_pb2.ROLE_CUSTOMER, text=customer_text, intent=intent
        )
        stamp.create_time.GetCurrentTime()
        reply = conversation_pb2.Turn(role=conversation_pb2.ROLE_ASSISTANT, text=answer)
        reply.create_time.CopyFrom(stamp.create_time)
        new.turns.extend([stamp, reply])
        record.state = new
        await self._sessions.put(record)


class _NoResult(grpc.aio.AioRpcError):  # type: ignore[misc]
    """A worker stream that ended without a result: treated as an internal failure."""

    def __init__(self) -> None:
        super().__init__(
            grpc.StatusCode.INTERNAL,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="worker stream ended without a result",
        )
