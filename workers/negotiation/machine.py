"""The negotiation state machine: refunds and disputes, decided without I/O.

    identify the order -> check eligibility (delivery facts, refundable balance)
    -> check_fraud_score -> propose (amount, reason code) -> the customer confirms
    -> initiate_refund -> send_notification -> done
    (or: declined; or escalated to a person from any stage)

The service (``service.py``) makes the reads and writes; every decision is here.
``initiate_refund`` is reachable only through :func:`confirmed`, which needs the
customer's CONFIRM of the action pending in this session, in time: there is no other
way to get a :class:`Confirmed`, and the orders client's refund call takes nothing
else. Every answer is worded here, a fixed sentence filled with facts (ids, amounts,
dates); a model may write its own answer from them (through the pool), but no customer
text and no model output decides a refund.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import cast

from google.protobuf import timestamp_pb2
from waybill.common.v1 import conversation_pb2, customer_pb2, intent_pb2, money_pb2
from waybill.orders.v1 import orders_pb2

from runtime.errors import FailedPrecondition, NotFound

Stage = conversation_pb2.NegotiationStage
I = intent_pb2  # noqa: E741 - the intent enum's module, read as I.INTENT_...
S = customer_pb2.ShipmentStatus

MAX_TURNS = 5
"""Customer turns one case may take before a person takes over."""
DISPUTE_WINDOW = timedelta(days=30)
"""How long after delivery a dispute or a damaged item may be refunded automatically."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What may be refunded without a person (``NegotiationSettings``)."""

    fraud_escalate_bp: int = 5000
    """A fraud score at or above this (basis points) goes to a person."""
    auto_refund_minor: dict[int, int] | None = None
    """Largest automatic refund per customer tier, in minor units (None: the defaults)."""
    confirm_window: timedelta = timedelta(minutes=15)
    """How long a proposal may be confirmed."""
    refunds_per_period: int = 3
    """Refunds a customer gets without a person in 30 days; the next goes to a person."""

    def refund_limit(self, tier: customer_pb2.CustomerTier) -> int:
        """The largest refund made without a person for ``tier``."""
        limits = self.auto_refund_minor or DEFAULT_AUTO_REFUND
        return limits.get(int(tier), limits[customer_pb2.CUSTOMER_TIER_STANDARD])


DEFAULT_AUTO_REFUND: dict[int, int] = {
    customer_pb2.CUSTOMER_TIER_STANDARD: 20_000,
    customer_pb2.CUSTOMER_TIER_SILVER: 30_000,
    customer_pb2.CUSTOMER_TIER_GOLD: 50_000,
    customer_pb2.CUSTOMER_TIER_PLATINUM: 100_000,
}
"""Largest automatic refund by tier (minor units: $200, $300, $500, $1,000)."""

REFUND_INTENTS = frozenset(
    {
        I.INTENT_NEGOTIATION_REFUND_REQUEST,
        I.INTENT_NEGOTIATION_DELIVERY_DISPUTE,
        I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM,
    }
)


class Why(Enum):
    """Why a case goes to a person (its ticket's reason)."""

    ASKED = orders_pb2.ESCALATION_REASON_CUSTOMER_REQUEST
    FRAUD = orders_pb2.ESCALATION_REASON_FRAUD_RISK
    SCOPE = orders_pb2.ESCALATION_REASON_OUT_OF_SCOPE
    STUCK = orders_pb2.ESCALATION_REASON_LOW_CONFIDENCE
    LOST = orders_pb2.ESCALATION_REASON_LOST_SHIPMENT
    FREQUENT = orders_pb2.ESCALATION_REASON_REFUND_FREQUENCY


@dataclass(frozen=True, slots=True)
class Eligible:
    """The order may be refunded: how much at most and why."""

    amount: money_pb2.Money
    reason: orders_pb2.RefundReason


@dataclass(frozen=True, slots=True)
class Ineligible:
    """No refund now; ``answer`` says why in the customer's words."""

    answer: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The customer confirmed the pending refund in time: the only way to a refund."""

    action_id: str
    order_id: str
    amount: money_pb2.Money
    reason: orders_pb2.RefundReason


# -- money and words -----------------------------------------------------------------------

_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: money_pb2.Money) -> str:
    """``$12.50``, ``€7.00``; other currencies by code."""
    value = f"{amount.minor_units // 100:,}.{amount.minor_units % 100:02d}"
    symbol = _SYMBOL.get(amount.currency_code)
    return f"{symbol}{value}" if symbol else f"{value} {amount.currency_code}"


_REASON_WORDS = {
    orders_pb2.REFUND_REASON_DELIVERY_FAILED: "the carrier lost the parcel",
    orders_pb2.REFUND_REASON_WRONG_ITEM: "a different item arrived",
    orders_pb2.REFUND_REASON_DELIVERY_DISPUTE: "it shows as delivered but did not reach you",
    orders_pb2.REFUND_REASON_CUSTOMER_REQUEST: "you asked within the 30-day window",
    orders_pb2.REFUND_REASON_DAMAGED_ITEM: "it arrived damaged",
}


# -- eligibility ---------------------------------------------------------------------------


def refundable(order: orders_pb2.Order) -> money_pb2.Money:
    """What may still be refunded: the total less every refund so far."""
    left = max(0, order.total.minor_units - order.refunded.minor_units)
    return money_pb2.Money(currency_code=order.total.currency_code, minor_units=left)


_WORD = re.compile(r"[a-z]+")
_WRONG = frozenset({"wrong", "different", "incorrect"})
_DAMAGED = frozenset({"damaged", "broken", "smashed", "cracked", "faulty", "defective"})


def eligibility(
    intent: intent_pb2.Intent,
    message: str,
    order: orders_pb2.Order,
    shipment: orders_pb2.Shipment,
    *,
    now: datetime,
) -> Eligible | Ineligible:
    """Whether and how ``order`` may be refunded for a case of ``intent``."""
    left = refundable(order)
    if left.minor_units == 0:
        return Ineligible(
            f"Order {order.order_id} has already been refunded in full "
            f"({money(order.refunded)}), so there is nothing more to refund."
        )
    status = shipment.status
    delivered_recently = status == S.SHIPMENT_STATUS_DELIVERED and (
        now - shipment.delivered_time.ToDatetime(UTC) <= DISPUTE_WINDOW
    )
    if status == S.SHIPMENT_STATUS_LOST:
        return Eligible(left, orders_pb2.REFUND_REASON_DELIVERY_FAILED)
    if status == S.SHIPMENT_STATUS_DELIVERED and not delivered_recently:
        return Ineligible(
            f"Order {order.order_id} was delivered more than 30 days ago, which is past the "
            "window for an automatic refund. I can pass it to a colleague if you like."
        )
    if status != S.SHIPMENT_STATUS_DELIVERED:
        if intent == I.INTENT_NEGOTIATION_REFUND_REQUEST and status == S.SHIPMENT_STATUS_RETURNED:
            return Eligible(left, orders_pb2.REFUND_REASON_CUSTOMER_REQUEST)
        return Ineligible(
            f"Order {order.order_id} is still on its way, so it can't be refunded yet. "
            "If it doesn't arrive by its delivery window, ask me again."
        )
    if intent == I.INTENT_NEGOTIATION_DELIVERY_DISPUTE:
        return Eligible(left, orders_pb2.REFUND_REASON_DELIVERY_DISPUTE)
    # What the customer says about the item names the reason, whichever refund intent
    # the router chose; a damaged-or-wrong case that says neither counts as damaged.
    words = set(_WORD.findall(message.lower()))
    if words & _WRONG:
        return Eligible(left, orders_pb2.REFUND_REASON_WRONG_ITEM)
    if words & _DAMAGED or intent == I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM:
        return Eligible(left, orders_pb2.REFUND_REASON_DAMAGED_ITEM)
    return Eligible(left, orders_pb2.REFUND_REASON_CUSTOMER_REQUEST)


def cancellable(order: orders_pb2.Order, shipment: orders_pb2.Shipment) -> str | None:
    """None when ``order`` may still be cancelled (its label is made, nothing shipped),
    else what the customer is told instead."""
    if shipment.status == S.SHIPMENT_STATUS_LABEL_CREATED:
        return None
    if shipment.status == S.SHIPMENT_STATUS_DELIVERED:
        return (
            f"Order {order.order_id} has already been delivered, so it can't be cancelled. "
            "You can return it within the return window instead."
        )
    return (
        f"Order {order.order_id} has already shipped, so it can't be cancelled any more. "
        "Once it arrives you can return it within the return window."
    )


def escalation_needed(
    eligible: Eligible,
    checked: conversation_pb2.NegotiationState,
    tier: customer_pb2.CustomerTier,
    limits: Limits,
) -> Why | None:
    """Whether a person must decide this refund: its fraud score, the customer's refunds
    in the period (this one would be one too many), or above the tier's limit."""
    if checked.fraud_score_bp >= limits.fraud_escalate_bp:
        return Why.FRAUD
    if checked.recent_refunds >= limits.refunds_per_period:
        return Why.FREQUENT
    if eligible.amount.minor_units > limits.refund_limit(tier):
        return Why.SCOPE
    return None


# -- proposal and confirmation -------------------------------------------------------------


def propose(
    order: orders_pb2.Order, eligible: Eligible, *, now: datetime, limits: Limits
) -> conversation_pb2.PendingAction:
    """The refund the customer is asked to confirm."""
    expire = timestamp_pb2.Timestamp()
    expire.FromDatetime(now + limits.confirm_window)
    return conversation_pb2.PendingAction(
        action_id=f"act_{secrets.token_hex(12)}",
        kind=conversation_pb2.ACTION_KIND_REFUND,
        order_id=order.order_id,
        amount=eligible.amount,
        summary=(
            f"Refund {money(eligible.amount)} for order {order.order_id} "
            f"because {_REASON_WORDS[eligible.reason]}."
        ),
        expire_time=expire,
    )


def expired(action: conversation_pb2.PendingAction, *, now: datetime) -> bool:
    """Whether ``action`` can no longer be confirmed."""
    return action.expire_time.ToDatetime(UTC) < now


def proposal_answer(action: conversation_pb2.PendingAction) -> str:
    """What the customer reads with the confirmation request."""
    return f"I can {action.summary[0].lower()}{action.summary[1:]} Please confirm or cancel."


def confirmed(
    state: conversation_pb2.ConversationState,
    action_id: str,
    decision: conversation_pb2.Decision,
    *,
    now: datetime,
) -> Confirmed | None:
    """The confirmed refund, or None when the customer declined. FAILED_PRECONDITION when
    nothing waits for confirmation (a refund before its proposal); NOT_FOUND when the
    action is another one or its time ran out (the same answer for both)."""
    pending = state.pending_action
    if (
        not state.HasField("pending_action")
        or state.negotiation.stage != Stage.NEGOTIATION_STAGE_AWAITING_CONFIRMATION
    ):
        raise FailedPrecondition("nothing is waiting for confirmation", reason="NO_PENDING_ACTION")
    if pending.action_id != action_id or expired(pending, now=now):
        raise NotFound("no such action is waiting for confirmation", reason="ACTION_NOT_FOUND")
    if decision != conversation_pb2.DECISION_CONFIRM:
        return None
    reason = cast(
        orders_pb2.RefundReason, orders_pb2.RefundReason.Value(state.negotiation.refund_reason)
    )
    return Confirmed(action_id, pending.order_id, pending.amount, reason)


def refund_answer(refund: orders_pb2.Refund, *, notified: bool) -> str:
    """What the customer reads once the refund is made."""
    told = " You'll get an e-mail confirming it." if notified else ""
    return (
        f"Done: I've refunded {money(refund.amount)} for order {refund.order_id} "
        f"(refund {refund.refund_id}). It reaches your original payment method in 3-5 "
        f"business days.{told}"
    )


DECLINED_ANSWER = "Okay, I haven't refunded anything. Is there anything else I can help with?"


# -- hand-over -----------------------------------------------------------------------------

_STAGE_WORDS = {
    Stage.NEGOTIATION_STAGE_UNSPECIFIED: "before an order was identified",
    Stage.NEGOTIATION_STAGE_GATHERING: "while identifying the order",
    Stage.NEGOTIATION_STAGE_FRAUD_CHECKED: "after the fraud check",
    Stage.NEGOTIATION_STAGE_AWAITING_CONFIRMATION: "while a refund awaited confirmation",
    Stage.NEGOTIATION_STAGE_REFUNDED: "after a refund was made",
    Stage.NEGOTIATION_STAGE_COMPLETED: "after the case was closed",
    Stage.NEGOTIATION_STAGE_DECLINED: "after the customer declined a refund",
    Stage.NEGOTIATION_STAGE_ESCALATED: "after an earlier hand-over",
}


def summary(
    intent: intent_pb2.Intent,
    why: Why,
    negotiation: conversation_pb2.NegotiationState,
    *,
    amount: money_pb2.Money | None = None,
) -> str:
    """The agent's summary of the case: built from ids, codes and amounts only, so it
    holds no PII by construction (the customer's own words are not in it)."""
    parts = [
        f"Case: {intent_pb2.Intent.Name(intent).removeprefix('INTENT_').lower()}.",
        f"Handed over {_STAGE_WORDS[negotiation.stage]}: {why.name.lower()}.",
    ]
    if negotiation.order_id:
        parts.append(f"Order {negotiation.order_id}.")
    if amount is not None and amount.minor_units:
        parts.append(f"Refundable {money(amount)}.")
    if negotiation.fraud_score_bp:
        parts.append(f"Fraud score {negotiation.fraud_score_bp} bp.")
    if negotiation.recent_refunds:
        parts.append(f"Refunds in the last 30 days: {negotiation.recent_refunds}.")
    if negotiation.refund_id:
        parts.append(f"Refund {negotiation.refund_id} made.")
    return " ".join(parts)


_WHY_WORDS = {
    Why.ASKED: "as you asked",
    Why.FRAUD: "because this refund needs a manual review",
    Why.SCOPE: "because this refund is above what I can approve",
    Why.STUCK: "because we haven't been able to settle this here",
    Why.LOST: "to open a claim with the carrier",
    Why.FREQUENT: "because several refunds were made on your account recently",
}


def escalation_answer(ticket: orders_pb2.EscalationTicket, why: Why) -> str:
    """What the customer reads when a person takes over."""
    return (
        f"I've passed this to a colleague {_WHY_WORDS[why]} (ticket {ticket.ticket_id}). "
        "They'll pick it up within one business day and reply here; you don't need to "
        "repeat anything."
    )


def escalation_key(session_id: str, turns: int) -> str:
    """The ticket's idempotency key: a retried turn opens the same ticket, a later turn
    its own."""
    return f"esc_{session_id}_{turns}"


def now_utc() -> datetime:
    """The time decisions are made at."""
    return datetime.now(UTC)
