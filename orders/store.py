"""The orders store: SQLite on disk (WAL), one row per entity holding its
serialized protobuf, with the columns that scope every read.

SQLite because it is embedded (nothing to install or start), durable across
restarts, transactional for idempotent writes, and a point lookup by primary
key costs tens of microseconds, well inside a turn's budget.

Writes (refunds, notifications, tickets) are exactly-once by idempotency key: each
is one ``BEGIN IMMEDIATE`` transaction (one writer at a time, across processes too)
that reads the key, checks the rules and inserts the row with the key, so a retry,
a double click or a replay after a crash between the write and the reply finds the
row and gets the same result back (``replayed``), never a second write. A key used
again for a different request is refused. Reloading the demo data replaces
customers, orders and shipments only: what was written stays.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2, money_pb2
from waybill.orders.v1 import orders_pb2

from orders.seed import Dataset
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound

ACTIVE_WINDOW = timedelta(days=14)
Status = customer_pb2.ShipmentStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers (
  tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (tenant_id, user_id));
CREATE TABLE IF NOT EXISTS orders (
  order_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
  awb TEXT NOT NULL UNIQUE, create_time INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_owner ON orders (tenant_id, user_id, create_time);
CREATE TABLE IF NOT EXISTS shipments (
  awb TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
  order_id TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS refunds (
  tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
  request_digest TEXT NOT NULL, refund_id TEXT NOT NULL UNIQUE, order_id TEXT NOT NULL,
  amount_minor INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (tenant_id, user_id, idempotency_key));
CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds (tenant_id, user_id, order_id);
CREATE TABLE IF NOT EXISTS notifications (
  tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
  request_digest TEXT NOT NULL, notification_id TEXT NOT NULL UNIQUE,
  channel INTEGER NOT NULL, template INTEGER NOT NULL, params TEXT NOT NULL,
  create_time INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (tenant_id, user_id, idempotency_key));
CREATE TABLE IF NOT EXISTS tickets (
  tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
  request_digest TEXT NOT NULL, ticket_id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL,
  order_id TEXT NOT NULL, summary TEXT NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (tenant_id, user_id, idempotency_key));
"""
"""Every written row keeps its key, a digest of the request it answered and ``body``:
what the write answered, for a replay."""

_NO_CUSTOMER = "no such customer in this tenant"
_NO_ORDER = "no order with this id for this customer"
_KEY_REUSED = "this idempotency key was used for a different request"

_QUEUE_AREA = {
    orders_pb2.ESCALATION_REASON_CUSTOMER_REQUEST: ("support", 3),
    orders_pb2.ESCALATION_REASON_LOW_CONFIDENCE: ("support", 3),
    orders_pb2.ESCALATION_REASON_OUT_OF_SCOPE: ("refunds", 3),
    orders_pb2.ESCALATION_REASON_FRAUD_RISK: ("refunds", 2),
    orders_pb2.ESCALATION_REASON_LOST_SHIPMENT: ("claims", 2),
}
"""Escalation reason -> (queue area, priority); gold and platinum customers go one
priority higher."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """What a write returned: the stored entity and whether the key had already
    written it (nothing new was written)."""

    value: T
    replayed: bool


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16].upper()}"


def _timestamp(now: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(now)
    return stamp


class OrderStore:
    """Scoped reads over the system of record; every query names tenant and user."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction; ``IMMEDIATE`` takes the write lock first, so two
        writers (threads or processes) never both read a balance before either writes."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _replay(
        self, table: str, tenant_id: str, user_id: str, key: str, digest: str
    ) -> bytes | None:
        """What the key's earlier write answered, if any (a different request under the
        same key is refused)."""
        row = self._db.execute(
            f"SELECT request_digest, body FROM {table} "  # noqa: S608 - fixed names
            "WHERE tenant_id=? AND user_id=? AND idempotency_key=?",
            (tenant_id, user_id, key),
        ).fetchone()
        if row is None:
            return None
        if row[0] != digest:
            raise FailedPrecondition(_KEY_REUSED, reason="IDEMPOTENCY_KEY_REUSED")
        return bytes(row[1])

    def dataset_version(self) -> str | None:
        """Version of the data set loaded, if any."""
        row = self._db.execute("SELECT value FROM meta WHERE key='dataset'").fetchone()
        return None if row is None else str(row[0])

    def load(self, data: Dataset) -> bool:
        """Load a data set in one transaction; a no-op when that version is loaded.

        Returns whether anything was written.
        """
        if self.dataset_version() == data.version:
            return False
        with self._db:
            self._db.execute("BEGIN")
            for table in ("customers", "orders", "shipments"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            self._db.executemany(
                "INSERT INTO customers VALUES (?,?,?)",
                [(c.tenant_id, c.user_id, c.SerializeToString()) for c in data.customers],
            )
            owner = {}
            tenant_of = {c.user_id: c.tenant_id for c in data.customers}
            for o in data.orders:
                owner[o.order_id] = (tenant_of[o.user_id], o.user_id)
            self._db.executemany(
                "INSERT INTO orders VALUES (?,?,?,?,?,?)",
                [
                    (
                        o.order_id,
                        *owner[o.order_id],
                        o.awb,
                        o.create_time.seconds,
                        o.SerializeToString(),
                    )
                    for o in data.orders
                ],
            )
            self._db.executemany(
                "INSERT INTO shipments VALUES (?,?,?,?,?)",
                [
                    (s.awb, *owner[s.order_id], s.order_id, s.SerializeToString())
                    for s in data.shipments
                ],
            )
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dataset', ?)", (data.version,))
        return True

    def customer(self, tenant_id: str, user_id: str) -> orders_pb2.Customer | None:
        """One customer of the tenant."""
        row = self._db.execute(
            "SELECT body FROM customers WHERE tenant_id=? AND user_id=?", (tenant_id, user_id)
        ).fetchone()
        return None if row is None else orders_pb2.Customer.FromString(row[0])

    def customers(self, tenant_id: str, *, limit: int, after: str) -> list[orders_pb2.Customer]:
        """A page of the tenant's customers ordered by id, after ``after``."""
        rows = self._db.execute(
            "SELECT body FROM customers WHERE tenant_id=? AND user_id>? ORDER BY user_id LIMIT ?",
            (tenant_id, after, limit),
        ).fetchall()
        return [orders_pb2.Customer.FromString(r[0]) for r in rows]

    def order(self, tenant_id: str, user_id: str, order_id: str) -> orders_pb2.Order | None:
        """One order owned by the customer."""
        row = self._db.execute(
            "SELECT body FROM orders WHERE order_id=? AND tenant_id=? AND user_id=?",
            (order_id, tenant_id, user_id),
        ).fetchone()
        if row is None:
            return None
        order = orders_pb2.Order.FromString(row[0])
        order.refunded.minor_units += self._refunded(tenant_id, user_id, order_id)
        return order

    def _refunded(self, tenant_id: str, user_id: str, order_id: str) -> int:
        """Minor units refunded through this store (the data set's own figure apart)."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(amount_minor), 0) FROM refunds "
            "WHERE tenant_id=? AND user_id=? AND order_id=?",
            (tenant_id, user_id, order_id),
        ).fetchone()
        return int(row[0])

    def shipment(self, tenant_id: str, user_id: str, awb: str) -> orders_pb2.Shipment | None:
        """One shipment owned by the customer."""
        row = self._db.execute(
            "SELECT body FROM shipments WHERE awb=? AND tenant_id=? AND user_id=?",
            (awb, tenant_id, user_id),
        ).fetchone()
        return None if row is None else orders_pb2.Shipment.FromString(row[0])

    def active_orders(
        self, tenant_id: str, user_id: str, *, limit: int, now: datetime | None = None
    ) -> list[tuple[orders_pb2.Order, orders_pb2.Shipment]]:
        """Orders not delivered or returned more than 14 days ago, newest first."""
        cutoff = (now or datetime.now(UTC)) - ACTIVE_WINDOW
        rows = self._db.execute(
            "SELECT o.body, s.body FROM orders o JOIN shipments s ON s.awb = o.awb "
            "WHERE o.tenant_id=? AND o.user_id=? ORDER BY o.create_time DESC, o.order_id DESC",
            (tenant_id, user_id),
        ).fetchall()
        found = []
        for order_body, shipment_body in rows:
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

    # -- writes ---------------------------------------------------------------------------

    def create_refund(
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
        """A refund of the customer's order, at most its refundable balance (its total
        less every refund so far), exactly once per key."""
        with self._write():
            body = self._replay("refunds", tenant_id, user_id, key, digest)
            if body is not None:
                return Written(orders_pb2.Refund.FromString(body), replayed=True)
            order = self.order(tenant_id, user_id, order_id)
            if order is None:
                raise NotFound(_NO_ORDER, reason="ORDER_NOT_FOUND")
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
            refund = orders_pb2.Refund(
                refund_id=_new_id("REF"),
                order_id=order_id,
                amount=amount,
                reason=reason,
                status=orders_pb2.REFUND_STATUS_APPROVED,
                idempotency_key=key,
                create_time=_timestamp(now),
            )
            self._db.execute(
                "INSERT INTO refunds VALUES (?,?,?,?,?,?,?,?)",
                (
                    tenant_id,
                    user_id,
                    key,
                    digest,
                    refund.refund_id,
                    order_id,
                    amount.minor_units,
                    refund.SerializeToString(),
                ),
            )
        return Written(refund, replayed=False)

    def refunds(self, tenant_id: str, user_id: str, order_id: str) -> list[orders_pb2.Refund]:
        """The refunds written for the customer's order, oldest first."""
        rows = self._db.execute(
            "SELECT body FROM refunds WHERE tenant_id=? AND user_id=? AND order_id=? "
            "ORDER BY rowid",
            (tenant_id, user_id, order_id),
        ).fetchall()
        return [orders_pb2.Refund.FromString(r[0]) for r in rows]

    def send_notification(
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
        """A notification to the customer, put in the outbox exactly once per key; its id."""
        with self._write():
            body = self._replay("notifications", tenant_id, user_id, key, digest)
            if body is not None:
                return Written(body.decode(), replayed=True)
            if self.customer(tenant_id, user_id) is None:
                raise NotFound(_NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
            notification_id = _new_id("NTF")
            self._db.execute(
                "INSERT INTO notifications VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    tenant_id,
                    user_id,
                    key,
                    digest,
                    notification_id,
                    int(channel),
                    int(template),
                    "&".join(f"{k}={v}" for k, v in sorted(params.items())),
                    int(now.timestamp()),
                    notification_id.encode(),
                ),
            )
        return Written(notification_id, replayed=False)

    def notifications(self, tenant_id: str, user_id: str) -> list[tuple[str, int, int]]:
        """The customer's outbox: (id, channel, template), oldest first."""
        rows = self._db.execute(
            "SELECT notification_id, channel, template FROM notifications "
            "WHERE tenant_id=? AND user_id=? ORDER BY rowid",
            (tenant_id, user_id),
        ).fetchall()
        return [(str(a), int(b), int(c)) for a, b, c in rows]

    def create_ticket(
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
        """A ticket in the human support queue, exactly once per key; its queue follows
        the reason and the customer's tier."""
        with self._write():
            body = self._replay("tickets", tenant_id, user_id, key, digest)
            if body is not None:
                return Written(orders_pb2.EscalationTicket.FromString(body), replayed=True)
            customer = self.customer(tenant_id, user_id)
            if customer is None:
                raise NotFound(_NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
            if order_id and self.order(tenant_id, user_id, order_id) is None:
                raise NotFound(_NO_ORDER, reason="ORDER_NOT_FOUND")
            area, priority = _QUEUE_AREA.get(reason, ("support", 3))
            tier = customer_pb2.CustomerTier.Name(customer.tier).removeprefix("CUSTOMER_TIER_")
            if customer.tier >= customer_pb2.CUSTOMER_TIER_GOLD:
                priority -= 1
            ticket = orders_pb2.EscalationTicket(
                ticket_id=_new_id("TCK"),
                queue=f"{area}-{tier.lower()}",
                priority=priority,
                reason=reason,
                create_time=_timestamp(now),
            )
            self._db.execute(
                "INSERT INTO tickets VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    tenant_id,
                    user_id,
                    key,
                    digest,
                    ticket.ticket_id,
                    session_id,
                    order_id,
                    summary,
                    ticket.SerializeToString(),
                ),
            )
        return Written(ticket, replayed=False)
