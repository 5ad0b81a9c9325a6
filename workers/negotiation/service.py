"""The WorkerService servicer of the negotiation worker: refunds, disputes and the
hand-over to a person, one turn at a time (the decisions are in ``machine.py``).

A message turn identifies the order, reads it and its shipment, checks eligibility and
the fraud score, and either proposes a refund (a ``confirmation_request`` event, the
action pending in the returned state), answers why not, or opens a ticket for a
person (an ``escalation`` event). A decision turn (ConfirmAction through the gateway)
carries the customer's answer on the pending action: a decline closes the case; a
confirm makes the refund (keyed by the action id, so a retry of the confirmation
returns the same refund) and sends its notification. A failure before the refund is
made keeps the action pending: the customer's retry either makes it or finds it made.
A cancellation of an order that has not shipped goes to a person (orders has no
cancellation call yet); one that has shipped is answered with what to do instead.

The LLM pool writes what the machine decided: each write's payload (checked against the
decision before the call runs, ``workers.tool_payloads``; asked of a shadow candidate too
when one is set, ``workers.shadow``) and the answer (the composer says the machine's
sentence; a model writes its own from the same facts), through the output checks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import message
from prometheus_client import Counter
from waybill.common.v1 import conversation_pb2, events_pb2, intent_pb2, money_pb2, usage_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import tools_pb2
from waybill.worker.v1 import worker_service_pb2 as pb
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool.composer import Composer
from llm_pool.config import COMPOSER
from llm_pool.generation import AnswerPlan, GenerationRequest, Prompt
from llm_pool.pool import LLMPool
from runtime.errors import DomainError, FailedPrecondition
from workers import turn_errors
from workers.compose import compose, history
from workers.negotiation import machine
from workers.negotiation.clients import Customer, OrdersClient
from workers.negotiation.machine import Limits, Why
from workers.negotiation.templates import ANSWER_TEMPLATE, TEMPLATES
from workers.shadow import Shadow
from workers.tool_payloads import Payloads
from workers.tools import ToolLog
from workers.tracking.resolve import resolve

log = logging.getLogger("waybill.negotiation")

Stage = conversation_pb2.NegotiationStage
I = intent_pb2  # noqa: E741 - the intent enum's module, read as I.INTENT_...
MAX_TOOL_CALLS = 6
"""Reads and writes one turn may make (order, shipment, fraud score, refund, notification,
ticket)."""
_CLOSED = frozenset(
    {
        Stage.NEGOTIATION_STAGE_UNSPECIFIED,
        Stage.NEGOTIATION_STAGE_COMPLETED,
        Stage.NEGOTIATION_STAGE_DECLINED,
        Stage.NEGOTIATION_STAGE_ESCALATED,
        Stage.NEGOTIATION_STAGE_REFUNDED,
    }
)
"""Stages after which a new message opens a new case."""
USE_CASE = "negotiation"
"""The pool's chain for this worker (``WAYBILL_LLM_CHAIN_NEGOTIATION``)."""
SHADOW_USE_CASE = "negotiation_shadow"
"""The chain of a shadow candidate (``WAYBILL_SHADOW_CHAIN``)."""
INSTRUCTIONS = (
    "You are Waybill's refunds assistant. Answer from the facts only: the order, the "
    "amount, the refund and the ticket are decided, never change or add one; the facts' "
    "answer says it correctly. Asked for a tool's arguments, write them from the facts. "
    "Be brief and kind."
)
M = TypeVar("M", bound=message.Message)
OUTCOMES = Counter(
    "waybill_negotiation_turns_total",
    "Negotiation turns answered, by what the answer did (proposal, refunded, handed_over, ...).",
    ["outcome"],
)
ESCALATIONS = Counter(
    "waybill_escalations_total",
    "Cases handed over to a person, by reason (asked, fraud, scope, stuck, lost, frequent).",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class Work:
    """What one turn accumulates: its tool calls, its generations' usage, its prompt."""

    tools: ToolLog
    usage: usage_pb2.Usage
    prompt: Prompt


def _prompt(request: pb.RunTurnRequest) -> Prompt:
    """The prompt a model writes this turn's payloads from."""
    if request.WhichOneof("input") == "decision":
        decided = conversation_pb2.Decision.Name(request.decision.decision)
        message = f"(the customer answered {decided} to action {request.decision.action_id})"
    else:
        message = request.message
    return Prompt(
        instructions=INSTRUCTIONS,
        context_block=request.context.block,
        canary=request.canary,
        history=history(request.state.turns),
        message=message,
    )


@dataclass(slots=True)
class Outcome:
    """What a turn answers: its text, the new state, and events beside the text.

    ``answer`` is the machine's sentence, which the composer says; a model writes its own
    answer from ``kind``, ``facts`` and that sentence (``plan``)."""

    answer: str
    state: conversation_pb2.ConversationState
    events: list[pb.RunTurnResponse] = field(default_factory=list)
    kind: str = "reply"
    """What the answer does (``proposal``, ``refunded``, ``handed_over``, ...)."""
    facts: dict[str, Any] = field(default_factory=dict)
    """Ids, amounts and codes the answer states."""
    screened: bool = True
    """Whether every fact is the machine's own words (ids, amounts, dates): no PII scan."""

    def plan(self) -> AnswerPlan:
        """The answer plan the pool writes the answer from."""
        facts = {"kind": self.kind, **self.facts, "answer": self.answer}
        return AnswerPlan(ANSWER_TEMPLATE, facts, screened=self.screened)


def _order(order: orders_pb2.Order) -> dict[str, Any]:
    return {"order_id": order.order_id}


def _offer(action: conversation_pb2.PendingAction) -> dict[str, Any]:
    return {
        "order_id": action.order_id,
        "amount": machine.money(action.amount),
        "action_id": action.action_id,
    }


class NegotiationServicer(pb_grpc.WorkerServiceServicer):
    """Refunds and disputes by the state machine; writes only from a confirmed action."""

    def __init__(
        self,
        orders: OrdersClient | orders_grpc.OrdersServiceStub,
        limits: Limits | None = None,
        *,
        clock: Callable[[], datetime] = machine.now_utc,
        pool: LLMPool | None = None,
        shadow: Shadow | None = None,
    ) -> None:
        self._orders = orders if isinstance(orders, OrdersClient) else OrdersClient(orders)
        self._limits = limits or Limits()
        self._clock = clock
        # Without a pool (tests that build the worker by hand) the composer writes.
        self._pool = pool or LLMPool([Composer(TEMPLATES)], {USE_CASE: [COMPOSER]})
        self._payloads = Payloads(self._pool, use_case=USE_CASE, shadow=shadow)

    async def _write(self, turn: Work, tool: str, decided: M) -> M:
        """The payload of a write, from the pool, checked against what was decided."""
        return await self._payloads.write(tool, decided, prompt=turn.prompt, usage=turn.usage)

    async def RunTurn(
        self, request: pb.RunTurnRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RunTurnResponse]:
        turn = Work(ToolLog(max_calls=MAX_TOOL_CALLS), usage_pb2.Usage(), _prompt(request))
        state = conversation_pb2.ConversationState()
        state.CopyFrom(request.state)
        try:
            if request.WhichOneof("input") == "decision":
                outcome = await self._decide(request, state, turn)
            else:
                outcome = await self._message(request, state, turn)
        except DomainError as exc:
            for call in turn.tools.calls:
                yield pb.RunTurnResponse(tool_call=call)
            yield pb.RunTurnResponse(error=turn_errors.error_event(exc, message=_said(exc)))
            raise
        for call in turn.tools.calls:
            yield pb.RunTurnResponse(tool_call=call)
        OUTCOMES.labels(outcome.kind).inc()
        generation = GenerationRequest(use_case=USE_CASE, prompt=turn.prompt, plan=outcome.plan())
        async for response in compose(
            self._pool,
            generation,
            state=outcome.state,
            tool_calls=len(turn.tools.calls),
            canary=request.canary,
            usage=turn.usage,
            events=outcome.events,
        ):
            yield response

    # -- a message ------------------------------------------------------------------------

    async def _message(
        self, request: pb.RunTurnRequest, state: conversation_pb2.ConversationState, turn: Work
    ) -> Outcome:
        who = Customer(request.tenant_id, request.user_id)
        neg = state.negotiation
        if neg.stage in _CLOSED:
            neg.Clear()
            neg.stage = Stage.NEGOTIATION_STAGE_GATHERING
            neg.case_intent = request.intent
            state.ClearField("pending_action")
        neg.case_turns += 1
        if request.intent == I.INTENT_HUMAN_HANDOFF:
            return await self._escalate(Why.ASKED, request, state, turn)
        if request.intent not in machine.REFUND_INTENTS | {I.INTENT_NEGOTIATION_CANCELLATION}:
            raise FailedPrecondition(
                "the negotiation worker handles refunds, disputes and hand-overs",
                reason="INTENT_NOT_SUPPORTED",
            )
        if state.HasField("pending_action"):
            # A confirmation whose reply was lost (a crash, a dropped reply, a deadline)
            # may have made the refund: the customer hears what happened, not the offer.
            action = state.pending_action
            made = await turn.tools.call(
                "list_refunds",
                tools_pb2.ListRefundsArgs(order_id=action.order_id),
                lambda: self._orders.refund_made_by(who, action),
            )
            if made is not None:
                return await self._refunded(who, made, state, turn)
        if neg.case_turns > machine.MAX_TURNS:
            return await self._escalate(Why.STUCK, request, state, turn)
        if state.HasField("pending_action") and machine.expired(
            state.pending_action, now=self._clock()
        ):
            # An offer nobody answered in time is gone; the case goes on from its order.
            state.ClearField("pending_action")
            neg.stage = Stage.NEGOTIATION_STAGE_GATHERING
        if state.HasField("pending_action"):
            # One proposal at a time: it is asked again, not replaced by chat.
            action = state.pending_action
            return Outcome(
                "There's a refund waiting for your answer: "
                f"{action.summary} Please confirm or cancel it first.",
                state,
                kind="offer_pending",
                facts=_offer(action),
                events=[
                    pb.RunTurnResponse(
                        confirmation_request=events_pb2.ConfirmationRequest(action=action)
                    )
                ],
            )
        target = resolve(request.message, state, request.context.active_orders)
        if target.choices:
            del state.offered_order_ids[:]
            state.offered_order_ids.extend(o.order_id for o in target.choices)
            listed = "; ".join(f"{o.title} ({o.order_id})" for o in target.choices)
            # Titles are the shop's words, not ours: this answer gets the output's PII scan.
            return Outcome(
                f"Which order is this about? {listed}.", state, kind="which_order", screened=False
            )
        if not target.order_id and not target.awb:
            return Outcome(
                "I couldn't find an order to refund on your account. Could you give me the "
                "order number (it starts with ORD-)?",
                state,
                kind="ask_order",
            )
        order, shipment = await self._facts(who, target.order_id, target.awb, turn)
        neg.order_id = order.order_id
        state.focus_order_id = order.order_id
        state.focus_awb = order.awb
        if request.intent == I.INTENT_NEGOTIATION_CANCELLATION:
            # Orders has no cancellation call yet: a person cancels what has not shipped.
            refusal = machine.cancellable(order, shipment)
            if refusal is not None:
                return Outcome(refusal, state, kind="not_cancellable", facts=_order(order))
            return await self._escalate(Why.SCOPE, request, state, turn)
        verdict = machine.eligibility(
            neg.case_intent or request.intent, request.message, order, shipment, now=self._clock()
        )
        if isinstance(verdict, machine.Ineligible):
            return Outcome(verdict.answer, state, kind="not_refundable", facts=_order(order))
        risk = await turn.tools.call(
            "check_fraud_score",
            tools_pb2.CheckFraudScoreArgs(order_id=order.order_id),
            lambda: self._orders.fraud_score(who, order.order_id),
        )
        neg.fraud_score_bp = risk.score_bp
        neg.recent_refunds = risk.recent_refunds
        neg.stage = Stage.NEGOTIATION_STAGE_FRAUD_CHECKED
        why = machine.escalation_needed(verdict, neg, request.context.tier, self._limits)
        if why is not None:
            return await self._escalate(why, request, state, turn, amount=verdict.amount)
        action = machine.propose(order, verdict, now=self._clock(), limits=self._limits)
        state.pending_action.CopyFrom(action)
        neg.stage = Stage.NEGOTIATION_STAGE_AWAITING_CONFIRMATION
        neg.refund_reason = orders_pb2.RefundReason.Name(verdict.reason)
        return Outcome(
            machine.proposal_answer(action),
            state,
            kind="proposal",
            facts=_offer(action),
            events=[
                pb.RunTurnResponse(
                    confirmation_request=events_pb2.ConfirmationRequest(action=action)
                )
            ],
        )

    async def _facts(
        self, who: Customer, order_id: str, awb: str, turn: Work
    ) -> tuple[orders_pb2.Order, orders_pb2.Shipment]:
        """The order and its shipment, from whichever of the two ids is known: the one
        known is read first and names the other."""

        async def order(order_id: str) -> orders_pb2.Order:
            return await turn.tools.call(
                "get_order",
                tools_pb2.GetOrderArgs(order_id=order_id),
                lambda: self._orders.order(who, order_id),
            )

        async def shipment(awb: str) -> orders_pb2.Shipment:
            return await turn.tools.call(
                "get_order_status",
                tools_pb2.GetOrderStatusArgs(awb=awb),
                lambda: self._orders.shipment(who, awb),
            )

        if order_id:
            found = await order(order_id)
            return found, await shipment(found.awb)
        parcel = await shipment(awb)
        return await order(parcel.order_id), parcel

    # -- a decision -----------------------------------------------------------------------

    async def _decide(
        self, request: pb.RunTurnRequest, state: conversation_pb2.ConversationState, turn: Work
    ) -> Outcome:
        who = Customer(request.tenant_id, request.user_id)
        decision = request.decision
        confirmed = machine.confirmed(
            state, decision.action_id, decision.decision, now=self._clock()
        )
        neg = state.negotiation
        if confirmed is None:
            state.ClearField("pending_action")
            neg.stage = Stage.NEGOTIATION_STAGE_DECLINED
            return Outcome(machine.DECLINED_ANSWER, state, kind="declined")
        order = await turn.tools.call(
            "get_order",
            tools_pb2.GetOrderArgs(order_id=confirmed.order_id),
            lambda: self._orders.order(who, confirmed.order_id),
        )
        args = await self._write(
            turn,
            "initiate_refund",
            tools_pb2.InitiateRefundArgs(
                order_id=confirmed.order_id,
                amount=confirmed.amount,
                reason_code=confirmed.reason,
                order_total=order.total,
            ),
        )
        try:
            made = await turn.tools.call(
                "initiate_refund", args, lambda: self._orders.refund(who, confirmed)
            )
        except DomainError as exc:
            if exc.reason != "REFUND_EXCEEDS_BALANCE":
                raise  # the action stays pending: a retry makes the refund or finds it
            state.ClearField("pending_action")
            neg.stage = Stage.NEGOTIATION_STAGE_COMPLETED
            left = machine.refundable(order)
            return Outcome(
                f"That refund can't be made any more: order {order.order_id} has "
                f"{machine.money(left)} left to refund"
                + (" (it was refunded in the meantime)." if left.minor_units == 0 else "."),
                state,
                kind="balance_left",
                facts={**_order(order), "left": machine.money(left)},
            )
        return await self._refunded(who, made.refund, state, turn)

    async def _refunded(
        self,
        who: Customer,
        refund: orders_pb2.Refund,
        state: conversation_pb2.ConversationState,
        turn: Work,
    ) -> Outcome:
        """The confirmed refund is made: the case records it, the customer is e-mailed
        (once per refund) and told."""
        neg = state.negotiation
        state.ClearField("pending_action")
        neg.refund_id = refund.refund_id
        neg.stage = Stage.NEGOTIATION_STAGE_REFUNDED
        notified = False
        try:
            notice = await self._write(
                turn,
                "send_notification",
                tools_pb2.SendNotificationArgs(
                    channel=orders_pb2.NOTIFICATION_CHANNEL_EMAIL,
                    template=orders_pb2.NOTIFICATION_TEMPLATE_REFUND_APPROVED,
                ),
            )
            await turn.tools.call(
                "send_notification", notice, lambda: self._orders.notify_refund(who, refund)
            )
            notified = True
            neg.stage = Stage.NEGOTIATION_STAGE_COMPLETED
        except DomainError as exc:
            # The refund is made whatever happens to its e-mail; the answer says so.
            log.warning(
                "refund notification not sent",
                extra={"refund_id": refund.refund_id, "reason": exc.reason},
            )
        return Outcome(
            machine.refund_answer(refund, notified=notified),
            state,
            kind="refunded",
            facts={
                "order_id": refund.order_id,
                "refund_id": refund.refund_id,
                "amount": machine.money(refund.amount),
                "emailed": notified,
            },
        )

    # -- a person takes over --------------------------------------------------------------

    async def _escalate(
        self,
        why: Why,
        request: pb.RunTurnRequest,
        state: conversation_pb2.ConversationState,
        turn: Work,
        *,
        amount: money_pb2.Money | None = None,
    ) -> Outcome:
        neg = state.negotiation
        summary = machine.summary(neg.case_intent or request.intent, why, neg, amount=amount)
        args = await self._write(
            turn, "escalate_to_human", tools_pb2.EscalateArgs(reason=why.value, summary=summary)
        )
        ticket = await turn.tools.call(
            "escalate_to_human",
            args,
            lambda: self._orders.ticket(
                Customer(request.tenant_id, request.user_id),
                session_id=request.session_id,
                order_id=neg.order_id,
                reason=why.value,
                summary=summary,
                key=machine.escalation_key(request.session_id, len(state.turns)),
            ),
        )
        ESCALATIONS.labels(why.name.lower()).inc()
        state.ClearField("pending_action")
        neg.stage = Stage.NEGOTIATION_STAGE_ESCALATED
        state.hand_over.ticket_id = ticket.ticket_id
        state.hand_over.queue = ticket.queue
        event = events_pb2.Escalation(
            ticket_id=ticket.ticket_id, queue=ticket.queue, reason=why.name.lower()
        )
        return Outcome(
            machine.escalation_answer(ticket, why),
            state,
            kind="handed_over",
            facts={"ticket_id": ticket.ticket_id, "why": why.name.lower()},
            events=[pb.RunTurnResponse(escalation=event)],
        )


def _said(error: DomainError) -> str:
    """The customer's words for a failed refund turn ('' : the usual ones)."""
    if error.reason == "ACTION_NOT_FOUND":
        return "That offer is no longer open. Ask me again and I'll check the order afresh."
    if error.reason == "ORDER_NOT_FOUND":
        return "I couldn't find that order on your account."
    return ""
