"""One conversation turn, end to end: session, hydration, guardrails, routing,
the worker's stream, and the stored result. The servicer only translates.

Failures of dependencies arrive already mapped (``gateway.clients`` ->
``runtime.peer_errors.from_peer``); ``gateway.failures`` decides what the customer
sees. Sessions are written compare-and-set (``gateway.turns`` re-applies a turn
onto a state another turn wrote first), and ConfirmAction outcomes are recorded
per idempotency key (``gateway.outcomes``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2
from opentelemetry import trace
from waybill.common.v1 import conversation_pb2, customer_pb2, events_pb2, intent_pb2, usage_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.ledger.v1 import ledger_service_pb2 as ledger
from waybill.orders.v1 import orders_pb2
from waybill.router.v1 import router_service_pb2 as router
from waybill.worker.v1 import worker_service_pb2 as worker

from gateway import turns
from gateway.budgets import Budgets, Hold, charge, charge_soon
from gateway.cache.core import Lookup, Partition
from gateway.clients import Clients
from gateway.failures import RETRYABLE, TurnFailure, no_result, turn_failure, worker_error
from gateway.hydration import hydrated
from gateway.outcomes import Outcome, OutcomeKey, OutcomeStore
from gateway.sessions import SessionConflict, SessionRecord, SessionStore
from gateway.turn_cache import CachedTurn, TurnCache, state_after
from runtime import context as call_context
from runtime import telemetry
from runtime.bounded_cache import BoundedCache
from runtime.deadlines import time_remaining
from runtime.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unimplemented,
)
from runtime.metrics import GUARDRAIL_VERDICTS
from runtime.peer_errors import PeerError
from runtime.pii import redact_for_prompt
from runtime.principal import Principal

W = intent_pb2
log = logging.getLogger("waybill.gateway")
INPUTS_BLOCKED = GUARDRAIL_VERDICTS.labels("input_injection", "blocked")
A = TypeVar("A")
B = TypeVar("B")


@dataclass(frozen=True, slots=True)
class Limits:
    """Conversation limits (the session store trims history)."""

    active_orders: int = 10
    """Active orders hydrated into the context block."""
    hydration_ttl_s: float = 5.0
    """How long a hydrated context is reused for the same customer (0 = never)."""
    hydration_entries: int = 10_000
    """Customers whose context is kept at once."""
    turn_budget_s: float = 30.0
    """The one deadline of a turn whose caller sent none."""
    write_attempts: int = 5
    """Compare-and-set attempts of a session write before the turn answers ABORTED."""


def start_turn_clock(budget_s: float) -> None:
    """Give a turn that arrived without a deadline one budget for all its hops.

    Each RPC runs in its own task with its own copy of the context, so this only
    affects the current call; the server interceptor restores the variable when
    the call ends.
    """
    if call_context.deadline.get() is None:
        call_context.deadline.set(time.monotonic() + budget_s)


async def both(first: Coroutine[Any, Any, A], second: Coroutine[Any, Any, B]) -> tuple[A, B]:
    """Run two sibling calls; when one fails the other is cancelled and its error raised."""
    try:
        async with asyncio.TaskGroup() as group:
            a = group.create_task(first)
            b = group.create_task(second)
    except BaseExceptionGroup as failed:
        errors = failed.exceptions
        raise next((e for e in errors if isinstance(e, DomainError)), errors[0]) from None
    return a.result(), b.result()


def _final(
    *,
    intent: intent_pb2.Intent,
    kind: intent_pb2.Worker,
    answer: str,
    request_id: str,
    usage: usage_pb2.Usage | None = None,
    budget_state: ledger.BudgetState = ledger.BUDGET_STATE_UNSPECIFIED,
) -> pb.TurnEvent:
    final = pb.Final(
        intent=intent,
        worker=kind,
        answer=answer,
        request_id=request_id,
        budget_state=budget_state,
    )
    span = trace.get_current_span()  # the turn's: what it was and who answered it
    span.set_attribute(telemetry.ATTR_INTENT, intent_pb2.Intent.Name(intent))
    span.set_attribute(telemetry.ATTR_WORKER, intent_pb2.Worker.Name(kind))
    known = budget_state in ledger.BudgetState.values()  # a newer ledger's state: its number
    budget = ledger.BudgetState.Name(budget_state) if known else str(int(budget_state))
    span.set_attribute(telemetry.ATTR_BUDGET_STATE, budget)
    if usage is not None:
        final.usage.CopyFrom(usage)
    return pb.TurnEvent(final=final)


class Conversations:
    """Runs turns."""

    def __init__(
        self,
        clients: Clients,
        sessions: SessionStore,
        outcomes: OutcomeStore,
        limits: Limits,
        *,
        budgets: Budgets | None = None,
        turn_cache: TurnCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._cache = turn_cache
        self._budgets = budgets or Budgets.off()
        self._sessions = sessions
        self._outcomes = outcomes
        self._limits = limits
        # Hydrated contexts are reused for a few seconds per (tenant, customer): tools read
        # live data on every call; the context block only frames the turn, and a few
        # seconds of staleness stays far inside the 60 s freshness goal for features while
        # saving an orders round trip on most turns.
        self._contexts: BoundedCache[tuple[str, str], customer_pb2.HydratedContext] = BoundedCache(
            ttl_s=limits.hydration_ttl_s, entries=limits.hydration_entries, clock=clock
        )

    @property
    def limits(self) -> Limits:
        """The limits turns run under."""
        return self._limits

    async def session(self, tenant_id: str, user_id: str, session_id: str) -> SessionRecord:
        """The customer's session, or a new empty one (also when the id is used by
        another customer or tenant: theirs is a different session)."""
        record = await self._sessions.get(tenant_id, user_id, session_id)
        if record is None:
            return SessionRecord(
                tenant_id, user_id, session_id, conversation_pb2.ConversationState()
            )
        return record

    async def hydrate(self, tenant_id: str, user_id: str) -> customer_pb2.HydratedContext:
        """The customer's context block from orders (reused for a few seconds)."""
        cached = self._contexts.get((tenant_id, user_id))
        if cached is not None:
            return cached
        active = await self._clients.orders.list_active_orders(
            tenant_id=tenant_id, user_id=user_id, limit=self._limits.active_orders
        )
        orders = await self._screened_notes(tenant_id, list(active.orders))
        context = hydrated(active.tier, active.region, orders)
        self._contexts.put((tenant_id, user_id), context)
        return context

    async def _screened_notes(
        self, tenant_id: str, orders: list[customer_pb2.OrderBrief]
    ) -> list[customer_pb2.OrderBrief]:
        """Delivery notes are customer-written text that goes into prompts: a note that
        carries injected instructions is left out of the context (``runtime.text_screen``:
        verdicts kept by text, every unknown note left out when the guardrails fail); the
        others go in with PII replaced."""
        noted = [o for o in orders if o.delivery_note]
        if not noted:
            return orders
        flagged = await self._clients.guardrails.notes.flagged(
            tenant_id, (o.delivery_note for o in noted)
        )
        for order in noted:
            if order.delivery_note in flagged:
                log.warning(
                    "delivery note left out of the context", extra={"order_id": order.order_id}
                )
                order.delivery_note = ""
            else:
                order.delivery_note = redact_for_prompt(order.delivery_note)
        return orders

    # -- Converse ---------------------------------------------------------------------------

    def _reserve(self, principal: Principal, user_id: str) -> asyncio.Task[Hold | None] | None:
        """Start reserving the turn's worst case (None when budgets are off); it runs beside
        the turn's first steps and is awaited before anything that costs money."""
        if not self._budgets.enabled:
            return None
        return asyncio.ensure_future(self._budgets.hold(principal, user_id))

    async def converse(
        self, principal: Principal, request: pb.ConverseRequest, request_id: str
    ) -> AsyncIterator[pb.TurnEvent]:
        """One turn from a customer message, inside its reservation."""
        reserving = self._reserve(principal, request.user_id)
        try:
            async for event in self._converse(principal, request, request_id, reserving):
                yield event
        finally:
            _settle(reserving)

    async def _converse(
        self,
        principal: Principal,
        request: pb.ConverseRequest,
        request_id: str,
        reserving: asyncio.Task[Hold | None] | None,
    ) -> AsyncIterator[pb.TurnEvent]:
        tenant = principal.tenant_id
        record = await self.session(tenant, request.user_id, request.session_id)
        try:
            context, check = await both(
                self.hydrate(tenant, request.user_id),
                self._clients.guardrails.check_input(
                    tenant_id=tenant, session_id=request.session_id, text=request.message
                ),
            )
            if check.verdict == guard.VERDICT_BLOCK:
                INPUTS_BLOCKED.inc()
                yield pb.TurnEvent(
                    refusal=events_pb2.Refusal(
                        reason=events_pb2.REFUSAL_REASON_PROMPT_INJECTION,
                        message="Sorry, I can't help with that request.",
                    )
                )
                return
            hold = await _held(reserving)
            text = check.redacted_text
            ticket = await self.hand_over(tenant, record.state)
            if ticket is not None and ticket.state == orders_pb2.TICKET_STATE_CLAIMED:
                async for event in self._with_agent(record, text, ticket, request_id, hold):
                    yield event
                return
            decision = await self._clients.router.classify(
                tenant_id=tenant,
                text=text,
                previous_intent=turns.previous_intent(record.state),
                embedding_for=() if self._cache is None else self._cache.embedding_for,
            )
        except PeerError as exc:
            failure = turn_failure(exc)
            yield failure.event
            raise failure.error from exc
        if decision.low_confidence:
            answer = decision.clarifying_question
            yield pb.TurnEvent(delta=events_pb2.TextDelta(text=answer))
            unwritten = await self._write(record, text, decision.intent, answer, record.state)
            if unwritten is not None:
                yield unwritten.event
                raise unwritten.error
            usage = usage_pb2.Usage()
            yield _final(
                intent=decision.intent,
                kind=W.WORKER_UNSPECIFIED,
                answer=answer,
                request_id=request_id,
                usage=usage,
                budget_state=await charge(hold, usage),
            )
            return
        turn = worker.RunTurnRequest(
            tenant_id=tenant,
            user_id=request.user_id,
            session_id=request.session_id,
            message=text,
            intent=decision.intent,
            confidence=decision.confidence,
            state=record.state,
            context=context,
            canary=check.canary,
        )
        shared = (
            None
            if self._cache is None
            else self._cache.partition(
                tenant_id=tenant,
                kind=decision.worker,
                intent=decision.intent,
                check=check,
                context=context,
                state=record.state,
            )
        )
        async for event in self._run_worker(
            decision.worker,
            turn,
            record,
            text,
            request_id,
            hold=hold,
            shared=shared,
            embedding=decision.embedding if decision.HasField("embedding") else None,
        ):
            yield event

    # -- the hand-over to a person ---------------------------------------------------------

    async def hand_over(
        self, tenant_id: str, state: conversation_pb2.ConversationState
    ) -> orders_pb2.EscalationTicket | None:
        """The ticket the conversation was handed over with, as it stands now: None when it
        never was, or when the ticket cannot be read (the assistant answers meanwhile)."""
        if not state.hand_over.ticket_id:
            return None
        try:
            return await self._clients.orders.ticket(
                tenant_id=tenant_id, ticket_id=state.hand_over.ticket_id
            )
        except PeerError as exc:
            log.warning(
                "hand-over ticket unreadable",
                extra={"ticket_id": state.hand_over.ticket_id, "reason": exc.reason},
            )
            return None

    async def _with_agent(
        self,
        record: SessionRecord,
        text: str,
        ticket: orders_pb2.EscalationTicket,
        request_id: str,
        hold: Hold | None,
    ) -> AsyncIterator[pb.TurnEvent]:
        """A turn of a conversation an agent has claimed: the assistant steps aside; the
        message is kept in the conversation for the agent."""
        answer = (
            f"A member of our support team has your case ({ticket.ticket_id}) and will "
            "answer you here; I'll stay out of the way until it is resolved."
        )
        yield pb.TurnEvent(delta=events_pb2.TextDelta(text=answer))
        unwritten = await self._write(record, text, W.INTENT_HUMAN_HANDOFF, answer, record.state)
        if unwritten is not None:
            yield unwritten.event
            raise unwritten.error
        usage = usage_pb2.Usage()
        yield _final(
            intent=W.INTENT_HUMAN_HANDOFF,
            kind=W.WORKER_HUMAN,
            answer=answer,
            request_id=request_id,
            usage=usage,
            budget_state=await charge(hold, usage),
        )

    # -- ConfirmAction ----------------------------------------------------------------------

    async def confirm(
        self, principal: Principal, request: pb.ConfirmActionRequest, request_id: str
    ) -> AsyncIterator[pb.TurnEvent]:
        """Carry the customer's decision on the pending action to the negotiation worker,
        once per idempotency key: a duplicate replays the first attempt's events."""
        key = OutcomeKey(
            principal.tenant_id, request.user_id, request.session_id, request.idempotency_key
        )
        fingerprint = f"{request.action_id}:{request.decision}"
        remaining = time_remaining()
        recorded = await self._outcomes.claim(
            key, wait_s=self._limits.turn_budget_s if remaining is None else remaining
        )
        if recorded is not None:
            if recorded.fingerprint != fingerprint:
                raise InvalidArgument(
                    "this idempotency key was already used for another decision; send a new key",
                    reason="IDEMPOTENCY_KEY_REUSED",
                )
            for event in recorded.events:
                yield event
            if recorded.error is not None:
                raise recorded.error
            return
        events: list[pb.TurnEvent] = []
        called_worker = False
        finished = False
        reserving = self._reserve(principal, request.user_id)
        try:
            record = await self._pending(principal.tenant_id, request)
            try:
                context = await self.hydrate(principal.tenant_id, request.user_id)
                hold = await _held(reserving)
            except PeerError as exc:
                failure = turn_failure(exc)
                yield failure.event
                raise failure.error from exc
            turn = worker.RunTurnRequest(
                tenant_id=principal.tenant_id,
                user_id=request.user_id,
                session_id=request.session_id,
                decision=worker.ActionDecision(
                    action_id=request.action_id, decision=request.decision
                ),
                intent=W.INTENT_NEGOTIATION_REFUND_REQUEST,
                state=record.state,
                context=context,
            )
            label = (
                "confirm" if request.decision == conversation_pb2.DECISION_CONFIRM else "decline"
            )
            called_worker = True
            async for event in self._run_worker(
                W.WORKER_NEGOTIATION, turn, record, label, request_id, hold=hold
            ):
                events.append(event)
                if event.WhichOneof("kind") == "final":
                    # Recorded before the customer sees it: a retry after this point
                    # replays, whatever happens to this call's stream.
                    await self._outcomes.finish(key, Outcome(fingerprint, tuple(events)))
                    finished = True
                yield event
        except DomainError as exc:
            if called_worker and not finished and exc.code not in RETRYABLE:
                await self._outcomes.finish(key, Outcome(fingerprint, tuple(events), exc))
                finished = True
            elif not finished:
                await self._outcomes.release(key)
            raise
        except BaseException:
            # Cancelled (the caller went away) or a bug: nothing recorded, the key may retry.
            if not finished:
                await self._outcomes.release(key)
            raise
        finally:
            _settle(reserving)
        if not finished:
            await self._outcomes.release(key)

    async def _pending(self, tenant_id: str, request: pb.ConfirmActionRequest) -> SessionRecord:
        record = await self._sessions.get(tenant_id, request.user_id, request.session_id)
        if record is None:
            raise session_not_found()
        if not record.state.HasField("pending_action"):
            raise FailedPrecondition(
                "nothing is waiting for confirmation", reason="NO_PENDING_ACTION"
            )
        pending = record.state.pending_action
        if pending.action_id != request.action_id or (
            pending.HasField("expire_time") and pending.expire_time.ToSeconds() < time.time()
        ):
            # Another action, a stale one or one whose time ran out: the same answer.
            raise NotFound("no such action is waiting for confirmation", reason="ACTION_NOT_FOUND")
        return record

    # -- the worker -------------------------------------------------------------------------

    async def _run_worker(
        self,
        kind: intent_pb2.Worker,
        turn: worker.RunTurnRequest,
        record: SessionRecord,
        customer_text: str,
        request_id: str,
        *,
        hold: Hold | None,
        shared: Partition | None = None,
        embedding: router.Embedding | None = None,
    ) -> AsyncIterator[pb.TurnEvent]:
        """The worker's turn; with ``shared``, an answer the cache has is served instead, and
        a shareable answer is kept (``gateway.turn_cache``); ``embedding`` is the router's
        vector of the message, which a semantic lookup reuses."""
        lookup: Lookup | None = None
        if self._cache is not None and shared is not None:
            lookup, cached = await self._cache.lookup(shared, turn.message, embedding)
            if cached is not None:
                async for event in self._served(
                    cached, kind=kind, turn=turn, record=record, request_id=request_id, hold=hold
                ):
                    yield event
                return
        seen: list[worker.RunTurnResponse] = []
        client = self._clients.workers.get(kind)
        if client is None:
            missing = turn_failure(
                Unimplemented("no worker serves this", reason="NO_WORKER"), worker=kind
            )
            yield missing.event
            raise missing.error
        result: worker.TurnResult | None = None
        failure: TurnFailure | None = None
        try:
            async for response in client.run_turn(turn):
                which = response.WhichOneof("event")
                if failure is not None or result is not None:
                    continue  # nothing counts after a worker's error event or its result
                if which == "result":
                    # Read on to the stream's end: it closes with OK right after. Stopping
                    # here cancelled a finished stream, a CANCELLED in the worker's log.
                    result = response.result
                    continue
                if which == "error":
                    # The status that follows carries the details (RetryInfo, ErrorInfo):
                    # keep reading for it; this event stands if the stream ends cleanly.
                    failure = worker_error(response.error)
                    continue
                if which is not None:
                    seen.append(response)
                    yield pb.TurnEvent(**{which: getattr(response, which)})
        except PeerError as exc:
            failure = turn_failure(exc, worker=kind)
        if failure is None and result is None:
            failure = no_result()
        charging: asyncio.Task[ledger.BudgetState] | None = None
        if failure is None and result is not None:
            # The answer was generated: its usage is charged whatever happens to the
            # session write, and the commit's round trip runs beside the write's.
            charging = charge_soon(hold, result.usage)
            failure = await self._write(
                record, customer_text, turn.intent, result.answer, result.state
            )
        if failure is not None:
            yield failure.event
            raise failure.error
        assert result is not None
        assert charging is not None
        if lookup is not None and self._cache is not None:
            await self._cache.keep(lookup, seen, result)
        yield _final(
            intent=turn.intent,
            kind=kind,
            answer=result.answer,
            request_id=request_id,
            usage=result.usage,
            budget_state=await asyncio.shield(charging),
        )

    async def _served(
        self,
        cached: CachedTurn,
        *,
        kind: intent_pb2.Worker,
        turn: worker.RunTurnRequest,
        record: SessionRecord,
        request_id: str,
        hold: Hold | None,
    ) -> AsyncIterator[pb.TurnEvent]:
        """A turn answered from the cache: the same events, the session written as the
        worker would have left it, zero usage committed against the turn's reservation."""
        for event in cached.events:
            yield event
        failure = await self._write(
            record, turn.message, turn.intent, cached.answer, state_after(record.state, cached)
        )
        if failure is not None:
            yield failure.event
            raise failure.error
        usage = usage_pb2.Usage()
        final = _final(
            intent=turn.intent,
            kind=kind,
            answer=cached.answer,
            request_id=request_id,
            usage=usage,
            budget_state=await charge(hold, usage),
        )
        final.final.cache_hit = True
        yield final

    # -- the session write ------------------------------------------------------------------

    async def _write(
        self,
        record: SessionRecord,
        customer_text: str,
        intent: intent_pb2.Intent,
        answer: str,
        result: conversation_pb2.ConversationState,
    ) -> TurnFailure | None:
        """Append the exchange and this turn's changes; on a conflict re-read and
        re-apply onto the latest state. A failure to write ends the turn."""
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        exchange = turns.exchange(customer_text, intent, answer, now)
        base = record.state
        latest = record
        try:
            for _ in range(self._limits.write_attempts):
                new = turns.apply_turn(
                    base=base, result=result, latest=latest.state, turns=exchange
                )
                candidate = SessionRecord(
                    record.tenant_id,
                    record.user_id,
                    record.session_id,
                    new,
                    version=latest.version,
                )
                try:
                    await self._sessions.put(candidate)
                except SessionConflict:
                    latest = await self.session(record.tenant_id, record.user_id, record.session_id)
                    continue
                record.state = candidate.state
                record.version = candidate.version
                record.expires_at = candidate.expires_at
                return None
        except DomainError as exc:
            return turn_failure(exc)
        return turn_failure(
            Aborted("the conversation changed too often; try again", reason="SESSION_CONFLICT")
        )


async def _held(reserving: asyncio.Task[Hold | None] | None) -> Hold | None:
    """The turn's reservation once the ledger granted it (a refusal raises its PeerError)."""
    return None if reserving is None else await reserving


def _settle(reserving: asyncio.Task[Hold | None] | None) -> None:
    """Whatever happened to the turn, leave no reservation held: release one that was not
    committed, now or as soon as a reservation still being made is granted."""
    if reserving is None:
        return
    if reserving.done():
        _release_unsettled(reserving)
    else:
        reserving.add_done_callback(_release_unsettled)


def _release_unsettled(reserving: asyncio.Task[Hold | None]) -> None:
    if reserving.cancelled() or reserving.exception() is not None:
        return  # nothing was held (a refusal already ended the turn, or the ledger failed)
    hold = reserving.result()
    if hold is not None:
        hold.release_soon()  # a no-op once committed


def session_not_found() -> NotFound:
    """The one answer for a session that is not this customer's: nonexistent, expired,
    another customer's and another tenant's look the same."""
    return NotFound("no such session for this customer", reason="SESSION_NOT_FOUND")
