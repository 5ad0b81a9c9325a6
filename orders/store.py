"""What every orders store is: the contract the servicer calls, and the rules both
stores (SQLite embedded, PostgreSQL in the fleet) apply the same way.

Every read names tenant and customer. Writes (refunds, notifications, tickets) are
exactly-once by idempotency key: each is one transaction that serialises the
customer's writers, looks the key up, checks the rules and inserts the row with the
key and a digest of the request, so a retry, a double click or a replay after a crash
between the write and the reply finds the row and gets the same answer back
(``Written.replayed``), never a second write. A key used again for a different
request is refused. Reloading the demo data replaces customers, orders and shipments
only: what was written stays.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2, money_pb2
from waybill.orders.v1 import orders_pb2

from orders.seed import Dataset
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound

ACTIVE_WINDOW = timedelta(days=14)
RECENT_REFUNDS_WINDOW = timedelta(days=30)
"""The period ``recent_refunds`` counts over."""
Status = customer_pb2.ShipmentStatus
Ticket = orders_pb2.TicketState

NO_CUSTOMER = "no such customer in this tenant"
NO_ORDER = "no order with this id for this customer"
"""One message for "not yours" and "does not exist": existence never leaks."""

T = TypeVar("T")

NO_TICKET = "no ticket with this id in this tenant"

TicketChange = Callable[[orders_pb2.EscalationTicket | None], orders_pb2.EscalationTicket | None]
"""What an agent does to a ticket: the ticket as it stands (None: none in the tenant) ->
the ticket to store, or None when nothing changes (the same agent asking again).
Raises when the change is not allowed."""


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """What a write answered: the stored entity and whether the key had already
    written it (nothing new was written)."""

    value: T
    replayed: bool


class OrderStore(Protocol):
    """The system of record, scoped to (tenant, customer) on every call."""

    async def close(self) -> None:
        """Release connections."""

    async def dataset_version(self) -> str | None:
        """Version of the demo data set loaded, if any."""

    async def load(self, data: Dataset) -> bool:
        """Replace customers, orders and shipments with ``data`` in one transaction
        (writes stay); a no-op when that version is loaded. Whether anything changed."""

    async def customer(self, tenant_id: str, user_id: str) -> orders_pb2.Customer | None:
        """One customer of the tenant."""

    async def customers(
        self, tenant_id: str, *, limit: int, after: str
    ) -> list[orders_pb2.Customer]:
        """A page of the tenant's customers ordered by id, after ``after``."""

    async def order(self, tenant_id: str, user_id: str, order_id: str) -> orders_pb2.Order | None:
        """One order of the customer; ``refunded`` includes every refund written."""

    async def shipment(self, tenant_id: str, user_id: str, awb: str) -> orders_pb2.Shipment | None:
        """One shipment of the customer."""

    async def active_orders(
        self, tenant_id: str, user_id: str, *, limit: int, now: datetime | None = None
    ) -> list[tuple[orders_pb2.Order, orders_pb2.Shipment]]:
        """Orders not delivered more than 14 days ago, newest first."""

    async def create_refund(
        self,
        tenant_id: str,
        user_id: str,
        order_id: str,
        amount: money_pb2.Money,
        reason: orders_pb2.RefundReason,
        *,
        key: str,
        digest: str,
        now: datetime,
    ) -> Written[orders_pb2.Refund]:
        """A refund of the customer's order, at most its refundable balance, exactly once
        per key (:func:`check_refund`, :func:`new_refund`)."""

    async def refunds(self, tenant_id: str, user_id: str, order_id: str) -> list[orders_pb2.Refund]:
        """The refunds written for the customer's order, oldest first."""

    async def customer_refunds(self, tenant_id: str, user_id: str) -> list[orders_pb2.Refund]:
        """Every refund written for the customer, on any order, oldest first."""

    async def send_notification(
        self,
        tenant_id: str,
        user_id: str,
        channel: orders_pb2.NotificationChannel,
        template: orders_pb2.NotificationTemplate,
        params: Mapping[str, str],
        *,
        key: str,
        digest: str,
        now: datetime,
    ) -> Written[str]:
        """A notification put in the customer's outbox exactly once per key; its id."""

    async def notifications(self, tenant_id: str, user_id: str) -> list[tuple[str, int, int]]:
        """The customer's outbox: (id, channel, template), oldest first."""

    async def create_ticket(
        self,
        tenant_id: str,
        user_id: str,
        *,
        session_id: str,
        order_id: str,
        reason: orders_pb2.EscalationReason,
        summary: str,
        key: str,
        digest: str,
        now: datetime,
    ) -> Written[orders_pb2.EscalationTicket]:
        """A ticket in the human support queue exactly once per key (:func:`new_ticket`)."""

    async def tickets(
        self, tenant_id: str, *, state: orders_pb2.TicketState, limit: int, offset: int
    ) -> list[orders_pb2.EscalationTicket]:
        """A page of the tenant's tickets in ``state`` (UNSPECIFIED: all), most urgent
        first (:func:`queue_order`)."""

    async def ticket(self, tenant_id: str, ticket_id: str) -> orders_pb2.EscalationTicket | None:
        """One ticket of the tenant as it stands."""

    async def change_ticket(
        self, tenant_id: str, ticket_id: str, change: TicketChange
    ) -> orders_pb2.EscalationTicket:
        """Apply ``change`` (:func:`claim`, :func:`resolve`) to the ticket as it stands, in
        one transaction that serialises the ticket's writers; the ticket afterwards."""


# -- rules both stores apply --------------------------------------------------------------


def key_reused() -> FailedPrecondition:
    """The error of a key sent again with a different request."""
    return FailedPrecondition(
        "this idempotency key was used for a different request", reason="IDEMPOTENCY_KEY_REUSED"
    )


def check_refund(order: orders_pb2.Order | None, amount: money_pb2.Money) -> None:
    """Raise unless ``amount`` may be refunded from ``order`` (its ``refunded`` counting
    every refund so far)."""
    if order is None:
        raise NotFound(NO_ORDER, reason="ORDER_NOT_FOUND")
    if amount.currency_code != order.total.currency_code:
        raise InvalidArgument(
            f"the order is in {order.total.currency_code}", reason="CURRENCY_MISMATCH"
        )
    refundable = order.total.minor_units - order.refunded.minor_units
    if amount.minor_units > refundable:
        raise FailedPrecondition(
            "the refund would exceed the order's refundable balance",
            reason="REFUND_EXCEEDS_BALANCE",
            metadata={"refundable_minor_units": str(max(0, refundable))},
        )


def new_refund(
    order_id: str,
    amount: money_pb2.Money,
    reason: orders_pb2.RefundReason,
    *,
    key: str,
    now: datetime,
) -> orders_pb2.Refund:
    """A refund approved now."""
    return orders_pb2.Refund(
        refund_id=new_id("REF"),
        order_id=order_id,
        amount=amount,
        reason=reason,
        status=orders_pb2.REFUND_STATUS_APPROVED,
        idempotency_key=key,
        create_time=timestamp(now),
    )


_QUEUE_AREA = {
    orders_pb2.ESCALATION_REASON_CUSTOMER_REQUEST: ("support", 3),
    orders_pb2.ESCALATION_REASON_LOW_CONFIDENCE: ("support", 3),
    orders_pb2.ESCALATION_REASON_OUT_OF_SCOPE: ("refunds", 3),
    orders_pb2.ESCALATION_REASON_FRAUD_RISK: ("refunds", 2),
    orders_pb2.ESCALATION_REASON_LOST_SHIPMENT: ("claims", 2),
    orders_pb2.ESCALATION_REASON_REFUND_FREQUENCY: ("refunds", 2),
}
"""Escalation reason -> (queue area, priority)."""


def new_ticket(
    customer: orders_pb2.Customer,
    reason: orders_pb2.EscalationReason,
    *,
    session_id: str,
    order_id: str,
    summary: str,
    now: datetime,
) -> orders_pb2.EscalationTicket:
    """An open ticket: its queue is the reason's area and the customer's tier
    ("refunds-gold"); gold and platinum customers go one priority higher."""
    area, priority = _QUEUE_AREA.get(reason, ("support", 3))
    tier = customer_pb2.CustomerTier.Name(customer.tier).removeprefix("CUSTOMER_TIER_").lower()
    if customer.tier >= customer_pb2.CUSTOMER_TIER_GOLD:
        priority -= 1
    return orders_pb2.EscalationTicket(
        ticket_id=new_id("TCK"),
        queue=f"{area}-{tier}",
        priority=priority,
        reason=reason,
        create_time=timestamp(now),
        state=Ticket.TICKET_STATE_OPEN,
        user_id=customer.user_id,
        session_id=session_id,
        order_id=order_id,
        summary=summary,
    )


def queue_order(ticket: orders_pb2.EscalationTicket) -> tuple[int, int, int, str]:
    """Sort key of the agents' queue: priority, then the oldest first."""
    return (ticket.priority, ticket.create_time.seconds, ticket.create_time.nanos, ticket.ticket_id)


def page_of(
    tickets: Iterable[orders_pb2.EscalationTicket],
    state: orders_pb2.TicketState,
    *,
    limit: int,
    offset: int,
) -> list[orders_pb2.EscalationTicket]:
    """One page of the queue: the tickets in ``state`` (UNSPECIFIED: all), most urgent first."""
    chosen = [t for t in tickets if not state or t.state == state]
    return sorted(chosen, key=queue_order)[offset : offset + limit]


def claim(agent_id: str, *, now: datetime) -> TicketChange:
    """An agent takes an open ticket (again: nothing changes)."""

    def change(ticket: orders_pb2.EscalationTicket | None) -> orders_pb2.EscalationTicket | None:
        ticket = _found(ticket)
        if ticket.state == Ticket.TICKET_STATE_RESOLVED:
            raise FailedPrecondition("the ticket is already resolved", reason="TICKET_RESOLVED")
        if ticket.state == Ticket.TICKET_STATE_CLAIMED:
            if ticket.agent_id == agent_id:
                return None
            raise _taken(ticket)
        return _changed(ticket, Ticket.TICKET_STATE_CLAIMED, "claim_time", now, agent_id=agent_id)

    return change


def resolve(agent_id: str, resolution: str, *, now: datetime) -> TicketChange:
    """The agent who claimed a ticket closes it (again with the same note: nothing changes)."""

    def change(ticket: orders_pb2.EscalationTicket | None) -> orders_pb2.EscalationTicket | None:
        ticket = _found(ticket)
        if ticket.state == Ticket.TICKET_STATE_OPEN:
            raise FailedPrecondition(
                "claim the ticket before resolving it", reason="TICKET_NOT_CLAIMED"
            )
        if ticket.agent_id != agent_id:
            raise _taken(ticket)
        if ticket.state == Ticket.TICKET_STATE_RESOLVED:
            if ticket.resolution == resolution:
                return None
            raise FailedPrecondition("the ticket is already resolved", reason="TICKET_RESOLVED")
        return _changed(
            ticket, Ticket.TICKET_STATE_RESOLVED, "resolve_time", now, resolution=resolution
        )

    return change


def _changed(
    ticket: orders_pb2.EscalationTicket,
    state: orders_pb2.TicketState,
    stamp: str,
    now: datetime,
    **text: str,
) -> orders_pb2.EscalationTicket:
    """A copy of ``ticket`` moved to ``state``: the time ``stamp`` and the ``text`` fields set."""
    changed = orders_pb2.EscalationTicket()
    changed.CopyFrom(ticket)
    changed.state = state
    getattr(changed, stamp).CopyFrom(timestamp(now))
    for name, value in text.items():
        setattr(changed, name, value)
    return changed


def _found(ticket: orders_pb2.EscalationTicket | None) -> orders_pb2.EscalationTicket:
    if ticket is None:
        raise NotFound(NO_TICKET, reason="TICKET_NOT_FOUND")
    return ticket


def _taken(ticket: orders_pb2.EscalationTicket) -> FailedPrecondition:
    return FailedPrecondition(
        "another agent has this ticket",
        reason="TICKET_CLAIMED",
        metadata={"agent_id": ticket.agent_id},
    )


def stored_ticket(body: bytes) -> orders_pb2.EscalationTicket:
    """A ticket from its stored body (tickets written before states existed are open)."""
    ticket = orders_pb2.EscalationTicket.FromString(body)
    if not ticket.state:
        ticket.state = Ticket.TICKET_STATE_OPEN
    return ticket


def recent_refunds(refunds: Iterable[orders_pb2.Refund], *, now: datetime) -> int:
    """How many of ``refunds`` were made within :data:`RECENT_REFUNDS_WINDOW` of ``now``."""
    since = now - RECENT_REFUNDS_WINDOW
    return sum(1 for r in refunds if r.create_time.ToDatetime(UTC) >= since)


def params_text(params: Mapping[str, str]) -> str:
    """A notification's template parameters as stored."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()))


def active(
    pairs: Iterable[tuple[bytes, bytes]], *, limit: int, now: datetime | None
) -> list[tuple[orders_pb2.Order, orders_pb2.Shipment]]:
    """The active orders among stored (order, shipment) bodies, newest first."""
    cutoff = (now or datetime.now(UTC)) - ACTIVE_WINDOW
    found = []
    for order_body, shipment_body in pairs:
        shipment = orders_pb2.Shipment.FromString(shipment_body)
        if (
            shipment.status == Status.SHIPMENT_STATUS_DELIVERED
            and shipment.delivered_time.ToDatetime(UTC) < cutoff
        ):
            continue
        found.append((orders_pb2.Order.FromString(order_body), shipment))
        if len(found) >= limit:
            break
    return found


def owners(data: Dataset) -> dict[str, tuple[str, str]]:
    """order id -> (tenant, customer) of a data set."""
    tenant_of = {c.user_id: c.tenant_id for c in data.customers}
    return {o.order_id: (tenant_of[o.user_id], o.user_id) for o in data.orders}


def new_id(prefix: str) -> str:
    """A fresh entity id, e.g. ``REF-9F2C...``."""
    return f"{prefix}-{uuid.uuid4().hex[:16].upper()}"


def timestamp(now: datetime) -> timestamp_pb2.Timestamp:
    """``now`` as a protobuf timestamp."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(now)
    return stamp
