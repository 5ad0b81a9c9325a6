"""The fleet's exemplar store: PostgreSQL, shared by every router replica.

Two tables in the configured schema: ``exemplars`` (a bigserial ``sequence``,
the tenant, text, its dedup key and intent name, the request that added it)
and ``exemplar_requests`` (one row per ``(tenant_id, request_id)`` with its
fingerprint and answer). An append is one transaction: it claims the request
row with ``INSERT ... ON CONFLICT DO NOTHING`` and, when another writer holds
it already, re-reads that row instead, so two replicas handling one retry
never both add. Appends take one transaction-scoped advisory lock per schema:
they are rare (an admin's action), and serialising them makes sequences
commit in order, so a replica that has read up to sequence n has every row up
to n and ``changes_since(n)`` misses nothing. Each commit notifies the
schema's channel; replicas LISTEN on it and poll as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql

from router.exemplars import Exemplar
from router.intents import intent_name, parse_intent
from router.normalize import dedup_key
from router.store import (
    Appended,
    RequestIdReused,
    StoredExemplar,
    StoreUnavailable,
    by_tenant,
    new_for_tenant,
)

log = logging.getLogger("waybill.router")

CONNECT_TIMEOUT_S = 5
OPERATION_TIMEOUT_S = 10.0
"""Most time one store operation may take before it counts as unavailable."""

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.exemplars (
    sequence bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    text text NOT NULL,
    dedup_key text NOT NULL,
    intent text NOT NULL,
    request_id text NOT NULL,
    fingerprint text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, dedup_key)
);
CREATE TABLE IF NOT EXISTS {schema}.exemplar_requests (
    tenant_id text NOT NULL,
    request_id text NOT NULL,
    fingerprint text NOT NULL,
    added integer NOT NULL DEFAULT 0,
    last_sequence bigint NOT NULL DEFAULT 0,
    tenant_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id)
);
"""


def _lock_key(schema: str) -> int:
    """A signed 64-bit advisory lock key for the schema's writers."""
    raw = int.from_bytes(hashlib.sha256(f"waybill.router:{schema}".encode()).digest()[:8], "big")
    return raw - (1 << 64) if raw >= 1 << 63 else raw


class PostgresExemplarStore:
    """An :class:`router.store.ExemplarStore` on PostgreSQL (psycopg 3, async)."""

    def __init__(self, dsn: str, *, schema: str) -> None:
        self._dsn = dsn
        self.schema = schema
        self.channel = f"{schema}_exemplars"
        self._lock_key = _lock_key(schema)
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._listener: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._lock = asyncio.Lock()
        self.listening = asyncio.Event()
        """Set while change notices are being listened for."""
        self._q = {
            "exemplars": sql.Identifier(schema, "exemplars"),
            "requests": sql.Identifier(schema, "exemplar_requests"),
        }

    @classmethod
    async def open(cls, dsn: str, *, schema: str) -> PostgresExemplarStore:
        """Connect and create the schema and tables if they are missing."""
        store = cls(dsn, schema=schema)
        async with store._lock:
            conn = await store._connection()
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT_S), conn.transaction():
                    # Replicas starting together must not race on CREATE ... IF NOT EXISTS.
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (store._lock_key,))
                    await conn.execute(sql.SQL(_SCHEMA).format(schema=sql.Identifier(schema)))
            except (psycopg.OperationalError, TimeoutError) as exc:
                await store._drop()
                raise StoreUnavailable(_describe(exc)) from exc
        return store

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._dsn, connect_timeout=CONNECT_TIMEOUT_S
                )
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(_describe(exc)) from exc
        return self._conn

    async def _drop(self) -> None:
        """Close the connection after a failure: its state is unknown."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def append(
        self, tenant_id: str, exemplars: Sequence[Exemplar], *, request_id: str, fingerprint: str
    ) -> Appended:
        q = self._q
        async with self._lock:
            conn = await self._connection()
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT_S), conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    claimed = await conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (tenant_id, request_id, fingerprint)"
                            " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1"
                        ).format(q["requests"]),
                        (tenant_id, request_id, fingerprint),
                    )
                    if await claimed.fetchone() is None:
                        return await self._first_answer(conn, tenant_id, request_id, fingerprint)
                    return await self._insert(conn, tenant_id, exemplars, request_id, fingerprint)
            except (psycopg.OperationalError, TimeoutError) as exc:
                await self._drop()
                raise StoreUnavailable(_describe(exc)) from exc

    async def _first_answer(
        self,
        conn: psycopg.AsyncConnection[tuple[object, ...]],
        tenant_id: str,
        request_id: str,
        fingerprint: str,
    ) -> Appended:
        cur = await conn.execute(
            sql.SQL(
                "SELECT fingerprint, added, last_sequence, tenant_count FROM {}"
                " WHERE tenant_id = %s AND request_id = %s"
            ).format(self._q["requests"]),
            (tenant_id, request_id),
        )
        row = await cur.fetchone()
        assert row is not None  # the conflicting row is committed: we hold the writers' lock
        if row[0] != fingerprint:
            raise RequestIdReused(request_id)
        return Appended(added=_int(row[1]), last_sequence=_int(row[2]), tenant_count=_int(row[3]))

    async def _insert(
        self,
        conn: psycopg.AsyncConnection[tuple[object, ...]],
        tenant_id: str,
        exemplars: Sequence[Exemplar],
        request_id: str,
        fingerprint: str,
    ) -> Appended:
        q = self._q
        keys = [dedup_key(e.text) for e in exemplars]
        cur = await conn.execute(
            sql.SQL(
                "SELECT dedup_key, intent FROM {} WHERE tenant_id = %s AND dedup_key = ANY(%s)"
            ).format(q["exemplars"]),
            (tenant_id, keys),
        )
        known = {str(k): parse_intent(str(i)) for k, i in await cur.fetchall()}
        new = new_for_tenant(exemplars, known)  # StoredConflict rolls the request row back
        if new:
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (tenant_id, text, dedup_key, intent, request_id, fingerprint)"
                    " SELECT %s, t, k, i, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[])"
                    " WITH ORDINALITY AS u(t, k, i, n) ORDER BY n"
                ).format(q["exemplars"]),
                (
                    tenant_id,
                    request_id,
                    fingerprint,
                    [e.text.strip() for _, e in new],
                    [k for k, _ in new],
                    [intent_name(e.label) for _, e in new],
                ),
            )
        cur = await conn.execute(
            sql.SQL(
                "SELECT coalesce(max(sequence), 0), count(*) FROM {} WHERE tenant_id = %s"
            ).format(q["exemplars"]),
            (tenant_id,),
        )
        totals = await cur.fetchone()
        assert totals is not None
        answer = Appended(
            added=len(new), last_sequence=_int(totals[0]), tenant_count=_int(totals[1])
        )
        await conn.execute(
            sql.SQL(
                "UPDATE {} SET added = %s, last_sequence = %s, tenant_count = %s"
                " WHERE tenant_id = %s AND request_id = %s"
            ).format(q["requests"]),
            (answer.added, answer.last_sequence, answer.tenant_count, tenant_id, request_id),
        )
        if new:
            # Delivered at commit, to every replica listening.
            await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, tenant_id))
        return answer

    async def load_all(self) -> dict[str, list[StoredExemplar]]:
        return by_tenant(await self.changes_since(0))

    async def changes_since(self, sequence: int) -> list[StoredExemplar]:
        async with self._lock:
            conn = await self._connection()
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT_S), conn.transaction():
                    cur = await conn.execute(
                        sql.SQL(
                            "SELECT sequence, tenant_id, text, intent FROM {}"
                            " WHERE sequence > %s ORDER BY sequence"
                        ).format(self._q["exemplars"]),
                        (sequence,),
                    )
                    rows = await cur.fetchall()
            except (psycopg.OperationalError, TimeoutError) as exc:
                await self._drop()
                raise StoreUnavailable(_describe(exc)) from exc
        return [
            StoredExemplar(
                _int(seq), str(tenant), Exemplar(text=str(text), label=parse_intent(str(intent)))
            )
            for seq, tenant, text, intent in rows
        ]

    async def wait_for_change(self, timeout_s: float) -> None:
        try:
            if self._listener is None or self._listener.closed:
                self._listener = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                )
                await self._listener.execute(
                    sql.SQL("LISTEN {}").format(sql.Identifier(self.channel))
                )
                self.listening.set()
            async for _ in self._listener.notifies(timeout=timeout_s, stop_after=1):
                pass
        except psycopg.OperationalError as exc:
            self.listening.clear()
            listener, self._listener = self._listener, None
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            log.warning("exemplar store listener lost; polling", extra={"error": _describe(exc)})
            await asyncio.sleep(timeout_s)

    async def close(self) -> None:
        await self._drop()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _describe(exc: BaseException) -> str:
    """A reason without the DSN (it may carry a password)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {OPERATION_TIMEOUT_S:g} s"
    sqlstate = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}{f' {sqlstate}' if sqlstate else ''}"
