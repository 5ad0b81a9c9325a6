"""The orders store: SQLite on disk (WAL), one row per entity holding its
serialized protobuf, with the columns that scope every read.

SQLite because it is embedded (nothing to install or start), durable across
restarts, transactional for idempotent writes, and a point lookup by primary
key costs tens of microseconds, well inside a turn's budget.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from waybill.common.v1 import customer_pb2
from waybill.orders.v1 import orders_pb2

from orders.seed import Dataset

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
"""


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
        return None if row is None else orders_pb2.Order.FromString(row[0])

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
