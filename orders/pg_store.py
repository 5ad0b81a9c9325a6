"""The fleet's orders store: PostgreSQL (psycopg 3, async, a connection pool), with
the same contract and rules as the embedded SQLite store (``orders.store``).

Tables live in one schema (``WAYBILL_ORDERS_PG_SCHEMA``), created and upgraded by
numbered migrations at start (``MIGRATIONS``, recorded in ``schema_migrations``;
replicas starting together take an advisory lock, so each runs once). A write is one
transaction that first takes a transaction-scoped advisory lock on the customer: two
writes for one customer (a double click, two gateway replicas confirming one action,
two refunds racing for one balance) run one after the other, so the second sees the
first's key and refund. Writes of different customers do not wait on each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import LiteralString

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from waybill.common.v1 import money_pb2
from waybill.orders.v1 import orders_pb2

from orders.pg_names import SCHEMA_NAME
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
from runtime.errors import NotFound, Unavailable
from runtime.pg import pooled

Conn = psycopg.AsyncConnection[tuple[object, ...]]

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 5.0
"""Longest wait for a free connection before a call answers UNAVAILABLE."""

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "the system of record and exactly-once writes",
        """
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE customers (
  tenant_id text NOT NULL, user_id text NOT NULL, body bytea NOT NULL,
  PRIMARY KEY (tenant_id, user_id));
CREATE TABLE orders (
  order_id text PRIMARY KEY, tenant_id text NOT NULL, user_id text NOT NULL,
  awb text NOT NULL UNIQUE, create_time bigint NOT NULL, body bytea NOT NULL);
CREATE INDEX orders_by_owner ON orders (tenant_id, user_id, create_time);
CREATE TABLE shipments (
  awb text PRIMARY KEY, tenant_id text NOT NULL, user_id text NOT NULL,
  order_id text NOT NULL, body bytea NOT NULL);
CREATE TABLE refunds (
  seq bigserial, tenant_id text NOT NULL, user_id text NOT NULL,
  idempotency_key text NOT NULL, request_digest text NOT NULL,
  refund_id text NOT NULL UNIQUE, order_id text NOT NULL, amount_minor bigint NOT NULL,
  body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, idempotency_key));
CREATE INDEX refunds_by_order ON refunds (tenant_id, user_id, order_id);
CREATE TABLE notifications (
  seq bigserial, tenant_id text NOT NULL, user_id text NOT NULL,
  idempotency_key text NOT NULL, request_digest text NOT NULL,
  notification_id text NOT NULL UNIQUE, channel integer NOT NULL, template integer NOT NULL,
  params text NOT NULL, body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, idempotency_key));
CREATE TABLE tickets (
  seq bigserial, tenant_id text NOT NULL, user_id text NOT NULL,
  idempotency_key text NOT NULL, request_digest text NOT NULL,
  ticket_id text NOT NULL UNIQUE, session_id text NOT NULL, order_id text NOT NULL,
  summary text NOT NULL, body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, idempotency_key));
""",
    ),
    (
        2,
        "the agents' queue: a ticket's latest change",
        """
CREATE TABLE ticket_work (
  ticket_id text PRIMARY KEY REFERENCES tickets (ticket_id), tenant_id text NOT NULL,
  state integer NOT NULL, body bytea NOT NULL, changed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX tickets_by_tenant ON tickets (tenant_id);
""",
    ),
)
"""(version, what it does, DDL), applied in order, each once per schema."""

_REFUNDED = (
    "(SELECT COALESCE(SUM(amount_minor), 0) FROM refunds r"
    " WHERE r.tenant_id=o.tenant_id AND r.user_id=o.user_id AND r.order_id=o.order_id)"
)


def _bytes(value: object) -> bytes:
    """A bytea column's value."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


class PostgresOrderStore:
    """An :class:`orders.store.OrderStore` on PostgreSQL."""

    def __init__(self, pool: AsyncConnectionPool[Conn], schema: str) -> None:
        self._pool = pool
        self.schema = schema

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str,
        min_size: int = 2,
        max_size: int = 10,
        wait_s: float = CONNECT_TIMEOUT_S * 2,
    ) -> PostgresOrderStore:
        """Connect (waiting up to ``wait_s`` for a database that is starting), and create
        or upgrade the schema (``MIGRATIONS``); UNAVAILABLE when nothing answers."""
        if not SCHEMA_NAME.match(schema):
            raise ValueError(f"schema {schema!r} is not a plain lower-case identifier")
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={"options": f"-c search_path={schema}", "connect_timeout": CONNECT_TIMEOUT_S},
            check=AsyncConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_S,
            open=False,
            name=f"orders-{schema}",
        )
        try:
            await pool.open(wait=True, timeout=wait_s)
        except PoolTimeout as exc:
            await pool.close()
            raise Unavailable("the order store is unavailable", reason="STORE_UNAVAILABLE") from exc
        store = cls(pool, schema)
        await store.migrate()
        return store

    async def close(self) -> None:
        await self._pool.close()

    def _connection(self) -> AbstractAsyncContextManager[Conn]:
        return pooled(self._pool, store="the order store")

    @asynccontextmanager
    async def _write(self, tenant_id: str, user_id: str) -> AsyncIterator[Conn]:
        """A write transaction holding the customer's advisory lock."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"{self.schema}/{tenant_id}/{user_id}",),
            )
            yield conn

    async def migrate(self) -> list[int]:
        """Apply the migrations this schema lacks, in order; the versions applied."""
        applied = []
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"{self.schema}/migrate",),
            )
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {int(str(r[0])) for r in await cur.fetchall()}
            for version, name, ddl in MIGRATIONS:
                if version in done:
                    continue
                await conn.execute(ddl.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
                applied.append(version)
        return applied

    async def _replay(
        self, conn: Conn, table: str, tenant_id: str, user_id: str, *, key: str, digest: str
    ) -> bytes | None:
        cur = await conn.execute(
            sql.SQL(
                "SELECT request_digest, body FROM {} "
                "WHERE tenant_id=%s AND user_id=%s AND idempotency_key=%s"
            ).format(sql.Identifier(table)),
            (tenant_id, user_id, key),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        if row[0] != digest:
            raise key_reused()
        return _bytes(row[1])

    async def _bodies(
        self, query: LiteralString | bytes, params: tuple[object, ...]
    ) -> list[bytes]:
        """The first column (a stored body) of every row a read finds."""
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return [_bytes(r[0]) for r in await cur.fetchall()]

    async def dataset_version(self) -> str | None:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT value FROM meta WHERE key='dataset'")
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def load(self, data: Dataset) -> bool:
        owner = owners(data)
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self.schema}/load",)
            )
            cur = await conn.execute("SELECT value FROM meta WHERE key='dataset'")
            row = await cur.fetchone()
            if row is not None and row[0] == data.version:
                return False
            await conn.execute("DELETE FROM shipments; DELETE FROM orders; DELETE FROM customers")
            async with conn.cursor() as cursor:
                async with cursor.copy(
                    "COPY customers (tenant_id, user_id, body) FROM STDIN"
                ) as copy:
                    for c in data.customers:
                        await copy.write_row((c.tenant_id, c.user_id, c.SerializeToString()))
                async with cursor.copy(
                    "COPY orders (order_id, tenant_id, user_id, awb, create_time, body) FROM STDIN"
                ) as copy:
                    for o in data.orders:
                        await copy.write_row(
                            (
                                o.order_id,
                                *owner[o.order_id],
                                o.awb,
                                o.create_time.seconds,
                                o.SerializeToString(),
                            )
                        )
                async with cursor.copy(
                    "COPY shipments (awb, tenant_id, user_id, order_id, body) FROM STDIN"
                ) as copy:
                    for s in data.shipments:
                        await copy.write_row(
                            (s.awb, *owner[s.order_id], s.order_id, s.SerializeToString())
                        )
            await conn.execute(
                "INSERT INTO meta VALUES ('dataset', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (data.version,),
            )
        return True

    @staticmethod
    async def _customer(conn: Conn, tenant_id: str, user_id: str) -> orders_pb2.Customer | None:
        cur = await conn.execute(
            "SELECT body FROM customers WHERE tenant_id=%s AND user_id=%s", (tenant_id, user_id)
        )
        row = await cur.fetchone()
        return None if row is None else orders_pb2.Customer.FromString(_bytes(row[0]))

    async def customer(self, tenant_id: str, user_id: str) -> orders_pb2.Customer | None:
        async with self._connection() as conn:
            return await self._customer(conn, tenant_id, user_id)

    async def customers(
        self, tenant_id: str, *, limit: int, after: str
    ) -> list[orders_pb2.Customer]:
        bodies = await self._bodies(
            "SELECT body FROM customers WHERE tenant_id=%s AND user_id>%s"
            " ORDER BY user_id LIMIT %s",
            (tenant_id, after, limit),
        )
        return [orders_pb2.Customer.FromString(b) for b in bodies]

    @staticmethod
    async def _order(
        conn: Conn, tenant_id: str, user_id: str, order_id: str
    ) -> orders_pb2.Order | None:
        cur = await conn.execute(
            f"SELECT body, {_REFUNDED} FROM orders o"  # noqa: S608 - a fixed subquery
            " WHERE order_id=%s AND tenant_id=%s AND user_id=%s",
            (order_id, tenant_id, user_id),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        order = orders_pb2.Order.FromString(_bytes(row[0]))
        order.refunded.minor_units += int(str(row[1]))
        return order

    async def order(self, tenant_id: str, user_id: str, order_id: str) -> orders_pb2.Order | None:
        async with self._connection() as conn:
            return await self._order(conn, tenant_id, user_id, order_id)

    async def shipment(self, tenant_id: str, user_id: str, awb: str) -> orders_pb2.Shipment | None:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT body FROM shipments WHERE awb=%s AND tenant_id=%s AND user_id=%s",
                (awb, tenant_id, user_id),
            )
            row = await cur.fetchone()
        return None if row is None else orders_pb2.Shipment.FromString(_bytes(row[0]))

    async def active_orders(
        self, tenant_id: str, user_id: str, *, limit: int, now: datetime | None = None
    ) -> list[tuple[orders_pb2.Order, orders_pb2.Shipment]]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT o.body, s.body FROM orders o JOIN shipments s ON s.awb = o.awb"
                " WHERE o.tenant_id=%s AND o.user_id=%s"
                " ORDER BY o.create_time DESC, o.order_id DESC",
                (tenant_id, user_id),
            )
            rows = await cur.fetchall()
        return active(((_bytes(a), _bytes(b)) for a, b in rows), limit=limit, now=now)

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
        async with self._write(tenant_id, user_id) as conn:
            body = await self._replay(conn, "refunds", tenant_id, user_id, key=key, digest=digest)
            if body is not None:
                return Written(orders_pb2.Refund.FromString(body), replayed=True)
            check_refund(await self._order(conn, tenant_id, user_id, order_id), amount)
            refund = new_refund(order_id, amount, reason, key=key, now=now)
            await conn.execute(
                "INSERT INTO refunds (tenant_id, user_id, idempotency_key, request_digest,"
                " refund_id, order_id, amount_minor, body) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
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
        bodies = await self._bodies(
            "SELECT body FROM refunds WHERE tenant_id=%s AND user_id=%s AND order_id=%s"
            " ORDER BY seq",
            (tenant_id, user_id, order_id),
        )
        return [orders_pb2.Refund.FromString(b) for b in bodies]

    async def customer_refunds(self, tenant_id: str, user_id: str) -> list[orders_pb2.Refund]:
        bodies = await self._bodies(
            "SELECT body FROM refunds WHERE tenant_id=%s AND user_id=%s ORDER BY seq",
            (tenant_id, user_id),
        )
        return [orders_pb2.Refund.FromString(b) for b in bodies]

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
        async with self._write(tenant_id, user_id) as conn:
            body = await self._replay(
                conn, "notifications", tenant_id, user_id, key=key, digest=digest
            )
            if body is not None:
                return Written(body.decode(), replayed=True)
            if await self._customer(conn, tenant_id, user_id) is None:
                raise NotFound(NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
            notification_id = new_id("NTF")
            await conn.execute(
                "INSERT INTO notifications (tenant_id, user_id, idempotency_key,"
                " request_digest, notification_id, channel, template, params, body, created_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    tenant_id,
                    user_id,
                    key,
                    digest,
                    notification_id,
                    int(channel),
                    int(template),
                    params_text(params),
                    notification_id.encode(),
                    now,
                ),
            )
        return Written(notification_id, replayed=False)

    async def notifications(self, tenant_id: str, user_id: str) -> list[tuple[str, int, int]]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT notification_id, channel, template FROM notifications"
                " WHERE tenant_id=%s AND user_id=%s ORDER BY seq",
                (tenant_id, user_id),
            )
            rows = await cur.fetchall()
        return [(str(a), int(str(b)), int(str(c))) for a, b, c in rows]

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
        async with self._write(tenant_id, user_id) as conn:
            body = await self._replay(conn, "tickets", tenant_id, user_id, key=key, digest=digest)
            if body is not None:
                return Written(orders_pb2.EscalationTicket.FromString(body), replayed=True)
            customer = await self._customer(conn, tenant_id, user_id)
            if customer is None:
                raise NotFound(NO_CUSTOMER, reason="CUSTOMER_NOT_FOUND")
            if order_id and await self._order(conn, tenant_id, user_id, order_id) is None:
                raise NotFound(NO_ORDER, reason="ORDER_NOT_FOUND")
            ticket = new_ticket(
                customer, reason, session_id=session_id, order_id=order_id, summary=summary, now=now
            )
            await conn.execute(
                "INSERT INTO tickets (tenant_id, user_id, idempotency_key, request_digest,"
                " ticket_id, session_id, order_id, summary, body)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
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
        " LEFT JOIN ticket_work w ON w.ticket_id = t.ticket_id WHERE t.tenant_id=%s"
    )

    async def _ticket(
        self, conn: Conn, tenant_id: str, ticket_id: str
    ) -> orders_pb2.EscalationTicket | None:
        query = self._CURRENT + " AND t.ticket_id=%s"
        cur = await conn.execute(query.encode(), (tenant_id, ticket_id))
        row = await cur.fetchone()
        return None if row is None else stored_ticket(_bytes(row[0]))

    async def tickets(
        self, tenant_id: str, *, state: orders_pb2.TicketState, limit: int, offset: int
    ) -> list[orders_pb2.EscalationTicket]:
        bodies = await self._bodies(self._CURRENT.encode(), (tenant_id,))
        return page_of(map(stored_ticket, bodies), state, limit=limit, offset=offset)

    async def ticket(self, tenant_id: str, ticket_id: str) -> orders_pb2.EscalationTicket | None:
        async with self._connection() as conn:
            return await self._ticket(conn, tenant_id, ticket_id)

    async def change_ticket(
        self, tenant_id: str, ticket_id: str, change: TicketChange
    ) -> orders_pb2.EscalationTicket:
        async with self._connection() as conn, conn.transaction():
            # The ticket's row lock serialises its agents across replicas. It is taken on
            # its own, before the read: a locking read that joins ticket_work would, after
            # waiting, see the locked row anew but the other agent's change not at all.
            await conn.execute(
                "SELECT 1 FROM tickets WHERE tenant_id=%s AND ticket_id=%s FOR UPDATE",
                (tenant_id, ticket_id),
            )
            ticket = await self._ticket(conn, tenant_id, ticket_id)
            changed = change(ticket)
            if changed is None:
                assert ticket is not None  # a change of no ticket raises
                return ticket
            await conn.execute(
                "INSERT INTO ticket_work (ticket_id, tenant_id, state, body) VALUES (%s,%s,%s,%s)"
                " ON CONFLICT (ticket_id) DO UPDATE SET state = EXCLUDED.state,"
                " body = EXCLUDED.body, changed_at = now()",
                (ticket_id, tenant_id, int(changed.state), changed.SerializeToString()),
            )
        return changed
