"""The embedded orders store: SQLite on disk (WAL), one row per entity holding its
serialized protobuf, with the columns that scope every read (``orders.store``).

SQLite because it is embedded (nothing to install or start), durable across
restarts, transactional for idempotent writes, and a point lookup by primary
key costs tens of microseconds, well inside a turn's budget: the methods are
coroutines for the store contract but run inline, with no thread hop. A write is
one ``BEGIN IMMEDIATE`` transaction: it takes the write lock first, so two writers
(in one process or several on the same file) never both read a balance before
either writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from waybill.common.v1 import money_pb2
from waybill.orders.v1 import orders_pb2

from orders.seed import Dataset
from orders.store import (
    NO_CUSTOMER,
    NO_ORDER,
    TicketChange,
    Written,
    active,
    check_refund,
    key_reused,
    new_id,
    new_refund,
    new_ticket,
    owners,
    page_of,
    params_text,
    stored_ticket,
)
from runtime.errors import NotFound

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
CREATE TABLE IF NOT EXISTS ticket_work (
  ticket_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, state INTEGER NOT NULL,
  body BLOB NOT NULL);
"""
"""Every written row keeps its key, a digest of the request it answered and ``body``:
what the write answered, for a replay."""


class SqliteOrderStore:
    """An :class:`orders.store.OrderStore` in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    async def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
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
        """What the key's earlier write answered, if any."""
        row = self._db.execute(
            f"SELECT request_digest, body FROM {table} "  # noqa: S608 - fixed names
            "WHERE tenant_id=? AND user_id=? AND idempotency_key=?",
            (tenant_id, user_id, key),
        ).fetchone()
        if row is None:
            return None
        if row[0] != digest:
            raise key_reused()
        return bytes(row[1])

    async def dataset_version(self) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key='dataset'").fetchone()
        return None if row is None else str(row[0])

    async def load(self, data: Dataset) -> bool:
        if await self.dataset_version() == data.version:
            return False
        owner = owners(data)
        with self._write():
            for table in ("customers", "orders", "shipments"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            self._db.executemany(
                "INSERT INTO customers VALUES (?,?,?)",
                [(c.tenant_id, c.user_id, c.SerializeToString()) for c in data.customers],
            )
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

    def _customer(self, tenant_id: str, user_id: str) -> orders_pb2.Customer | None:
        row = self._db.execute(
            "SELECT body FROM customers WHERE tenant_id=? AND user_id=?", (tenant_id, user_id)
        ).fetchone()
        return None if row is None else orders_pb2.Customer.FromString(row[0])

    async def customer(self, tenant_id: str, user_id: str) -> orders_pb2.Customer | None:
        return self._customer(tenant_id, user_id)

    async def customers(
        self, tenant_id: str, *, limit: int, after: str
    ) -> list[orders_pb2.Customer]:
        rows = self._db.execute(
            "SELECT body FROM customers WHERE tenant_id=? AND user_id>? ORDER BY user_id LIMIT ?",
            (tenant_id, after, limit),
        ).fetchall()
        return [orders_pb2.Customer.FromString(r[0]) for r in rows]

    def _order(self, tenant_id: str, user_id: str, order_id: str) -> orders_pb2.Order | None:
        row = self._db.execute(
            "SELECT body, (SELECT COALESCE(SUM(amount_minor), 0) FROM refunds r"
            " WHERE r.tenant_id=o.tenant_id AND r.user_id=o.user_id AND r.order_id=o.order_id)"
            " FROM orders o WHERE order_id=? AND tenant_id=? AND user_id=?",
            (order_id, tenant_id, user_id),
        ).fetchone()
        if row is None:
            return None
        order = orders_pb2.Order.FromString(row[0])
        order.refunded.minor_units += int(row[1])
        return order

    async def order(self, tenant_id: str, user_id: str, order_id: str) -> orders_pb2.Order | None:
        return self._order(tenant_id, user_id, order_id)

    async def shipment(self, tenant_id: str, user_id: str, awb: str) -> orders_pb2.Shipment | None:
        row = self._db.execute(
            "SELECT body FROM shipments WHERE awb=? AND tenant_id=? AND user_id=?",
            (awb, tenant_id, user_id),
        ).fetchone()
        return None if row is None else orders_pb2.Shipment.FromString(row[0])

    async def active_orders(
        self, tenant_id: str, user_id: str, *, limit: int, now: datetime | None = None
    ) -> list[tuple[orders_pb2.Order, orders_pb2.Shipment]]:
        rows = self._db.execute(
            "SELECT o.body, s.body FROM orders o JOIN shipments s ON s.awb = o.awb "
            "WHERE o.tenant_id=? AND o.user_id=? ORDER BY o.create_time DESC, o.order_id DESC",
            (tenant_id, user_id),
        ).fetchall()
        return active(rows, limit=limit, now=now)

    # -- writes ---------------------------------------------------------------------------

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
        with self._write():
            body = self._replay("refunds", tenant_id, user_id, key, digest)
            if body is not None:
                return Written(orders_pb2.Refund.FromString(body), replayed=True)
            check_refund(self._order(tenant_id, user_id, order_id), amount)
            refund = new_refund(order_id, amount, reason, key=key, now=now)
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

    async def refunds(self, tenant_id: str, user_id: str, order_id: str) -> list[orders_pb2.Refund]:
        rows = self._db.execute(
            "SELECT body FROM refunds WHERE tenant_id=? AND user_id=? AND order_id=? "
            "ORDER BY rowid",
            (tenant_id, user_id, order_id),
        ).fetchall()
        return [orders_pb2.Refund.FromString(r[0]) for r in rows]

    async def customer_refunds(self, tenant_id: str, user_id: str) -> list[orders_pb2.Refund]:
        rows = self._db.execute(
            "SELECT body FROM refunds WHERE tenant_id=? AND user_id=? ORDER BY rowid",
            (tenant_id, user_id),
        ).fetchall()
        return [orders_pb2.Refund.FromString(r[0]) for r in rows]

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
        with self._write():
            body = self._replay("notifications", tenant_id, user_id, key, digest)
            if body is not None:
                return Written(body.decode(), replayed=True)
            if self._customer(tenant_id, user_id) is None:
                raise NotFound(NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
            notification_id = new_id("NTF")
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
                    params_text(params),
                    int(now.timestamp()),
                    notification_id.encode(),
                ),
            )
        return Written(notification_id, replayed=False)

    async def notifications(self, tenant_id: str, user_id: str) -> list[tuple[str, int, int]]:
        rows = self._db.execute(
            "SELECT notification_id, channel, template FROM notifications "
            "WHERE tenant_id=? AND user_id=? ORDER BY rowid",
            (tenant_id, user_id),
        ).fetchall()
        return [(str(a), int(b), int(c)) for a, b, c in rows]

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
        with self._write():
            body = self._replay("tickets", tenant_id, user_id, key, digest)
            if body is not None:
                return Written(orders_pb2.EscalationTicket.FromString(body), replayed=True)
            customer = self._customer(tenant_id, user_id)
            if customer is None:
                raise NotFound(NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
            if order_id and self._order(tenant_id, user_id, order_id) is None:
                raise NotFound(NO_ORDER, reason="ORDER_NOT_FOUND")
            ticket = new_ticket(
                customer, reason, session_id=session_id, order_id=order_id, summary=summary, now=now
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

    # -- the agents' queue: a ticket as it stands is its latest change (ticket_work), else
    # the ticket as opened ---------------------------------------------------------------

    _CURRENT = (
        "SELECT COALESCE(w.body, t.body) FROM tickets t"
        " LEFT JOIN ticket_work w ON w.ticket_id = t.ticket_id WHERE t.tenant_id=?"
    )

    def _ticket(self, tenant_id: str, ticket_id: str) -> orders_pb2.EscalationTicket | None:
        row = self._db.execute(self._CURRENT + " AND t.ticket_id=?", (tenant_id, ticket_id))
        found = row.fetchone()
        return None if found is None else stored_ticket(found[0])

    async def tickets(
        self, tenant_id: str, *, state: orders_pb2.TicketState, limit: int, offset: int
    ) -> list[orders_pb2.EscalationTicket]:
        rows = self._db.execute(self._CURRENT, (tenant_id,)).fetchall()
        return page_of((stored_ticket(r[0]) for r in rows), state, limit=limit, offset=offset)

    async def ticket(self, tenant_id: str, ticket_id: str) -> orders_pb2.EscalationTicket | None:
        return self._ticket(tenant_id, ticket_id)

    async def change_ticket(
        self, tenant_id: str, ticket_id: str, change: TicketChange
    ) -> orders_pb2.EscalationTicket:
        with self._write():
            ticket = self._ticket(tenant_id, ticket_id)
            changed = change(ticket)
            if changed is None:
                assert ticket is not None  # a change of no ticket raises
                return ticket
            self._db.execute(
                "INSERT OR REPLACE INTO ticket_work VALUES (?,?,?,?)",
                (ticket_id, tenant_id, int(changed.state), changed.SerializeToString()),
            )
        return changed
