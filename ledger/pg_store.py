"""The fleet's ledger store: PostgreSQL (psycopg 3, async, a connection pool), with the
same contract as the embedded store (``ledger.store``), exact across ledger replicas.

Exactness comes from the database, never from reading and then writing: a Reserve is
one transaction that inserts the reservation (``ON CONFLICT`` on the tenant's request
id: a retry finds the first one) and holds the estimate with one conditional
``UPDATE spend SET reserved = reserved + e WHERE spent + reserved + e <= limit``. The
row lock makes concurrent Reserves of one team, from any replica, queue on that row and
each see the others' holds. Commit, Release and expiry move a reservation out of
``held`` with a conditional ``UPDATE ... WHERE status = 'held'``, so exactly one of them
wins, and only the winner touches the team's counters. Every answer is given after
COMMIT.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ledger.charges import ChargeRow
from ledger.core import (
    PricedUsage,
    ReserveInput,
    State,
    Status,
    cap,
    month_of,
    new_reservation_id,
    state_of,
)
from ledger.store import (
    BudgetView,
    Committed,
    Reserved,
    exhausted,
    expired,
    key_reused,
    not_found,
    released,
)
from orders.pg_names import SCHEMA_NAME
from runtime.errors import Unavailable
from runtime.pg import pooled

Conn = psycopg.AsyncConnection[tuple[Any, ...]]

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 5.0
"""Longest wait for a free connection before a call answers UNAVAILABLE."""
SWEEP_BATCH = 1000
"""Most reservations one sweep expires (the next sweep takes the rest)."""

TABLES = """
CREATE TABLE IF NOT EXISTS budgets (
  tenant_id text NOT NULL, team_id text NOT NULL, limit_micros bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, team_id));
CREATE TABLE IF NOT EXISTS spend (
  tenant_id text NOT NULL, team_id text NOT NULL, month text NOT NULL,
  spent bigint NOT NULL DEFAULT 0, reserved bigint NOT NULL DEFAULT 0,
  alerted integer NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, team_id, month), CHECK (spent >= 0 AND reserved >= 0));
CREATE TABLE IF NOT EXISTS reservations (
  reservation_id text PRIMARY KEY, tenant_id text NOT NULL, request_id text NOT NULL,
  team_id text NOT NULL, user_id text NOT NULL, feature_id text NOT NULL,
  estimate bigint NOT NULL, month text NOT NULL, digest text NOT NULL,
  status text NOT NULL DEFAULT 'held', charged bigint NOT NULL DEFAULT 0,
  overrun bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL, settled_at timestamptz,
  UNIQUE (tenant_id, request_id));
CREATE INDEX IF NOT EXISTS reservations_held ON reservations (expires_at)
  WHERE status = 'held';
CREATE TABLE IF NOT EXISTS charges (
  seq bigserial PRIMARY KEY, time timestamptz NOT NULL, request_id text NOT NULL,
  reservation_id text NOT NULL, ordinal integer NOT NULL, tenant_id text NOT NULL,
  team_id text NOT NULL, user_id text NOT NULL, feature_id text NOT NULL,
  model text NOT NULL, first boolean NOT NULL, input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL, cost_micro_units bigint NOT NULL,
  currency_code text NOT NULL, price_version text NOT NULL,
  UNIQUE (reservation_id, ordinal));
CREATE INDEX IF NOT EXISTS charges_by_time ON charges (time);
"""
"""The tables, created if missing at start (under an advisory lock: replicas starting
together create them once)."""

# The team's limit: its budget, else the default (inlined in the queries below).
_VIEW = (
    "SELECT COALESCE((SELECT limit_micros FROM budgets b"
    " WHERE b.tenant_id=%(t)s AND b.team_id=%(tm)s), %(default)s),"
    " (SELECT spent FROM spend WHERE tenant_id=%(t)s AND team_id=%(tm)s AND month=%(m)s),"
    " (SELECT reserved FROM spend WHERE tenant_id=%(t)s AND team_id=%(tm)s AND month=%(m)s)"
)
_HOLD = (
    "UPDATE spend SET reserved = reserved + %(e)s"
    " WHERE tenant_id=%(t)s AND team_id=%(tm)s AND month=%(m)s"
    " AND spent + reserved + %(e)s <= COALESCE((SELECT limit_micros FROM budgets b"
    " WHERE b.tenant_id=%(t)s AND b.team_id=%(tm)s), %(default)s)"
    " RETURNING spent, reserved, COALESCE((SELECT limit_micros FROM budgets b"
    " WHERE b.tenant_id=%(t)s AND b.team_id=%(tm)s), %(default)s)"
)
"""The conditional hold: only when it fits, decided on the locked row."""
_CHARGE = (
    "UPDATE spend SET spent = spent + %(c)s, reserved = reserved - %(e)s"
    " WHERE tenant_id=%(t)s AND team_id=%(tm)s AND month=%(m)s"
    " RETURNING spent, reserved, alerted, COALESCE((SELECT limit_micros FROM budgets b"
    " WHERE b.tenant_id=%(t)s AND b.team_id=%(tm)s), %(default)s)"
)
_EXPIRE = (
    "WITH due AS (SELECT reservation_id FROM reservations"
    " WHERE status='held' AND expires_at <= %(now)s"
    " AND (%(id)s = '' OR reservation_id = %(id)s)"
    " ORDER BY expires_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
    " UPDATE reservations r SET status='expired', settled_at=%(now)s FROM due"
    " WHERE r.reservation_id = due.reservation_id AND r.status='held'"
    " RETURNING r.tenant_id, r.team_id, r.month, r.estimate"
)


class _Refused(Exception):
    """The conditional hold found no room: roll the reservation back."""


class PostgresLedgerStore:
    """A :class:`ledger.store.LedgerStore` on PostgreSQL."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        *,
        schema: str,
        default_limit: int,
        ttl_s: float,
        currency_code: str,
    ) -> None:
        self._pool = pool
        self.schema = schema
        self.default_limit = default_limit
        self.ttl = timedelta(seconds=ttl_s)
        self.currency_code = currency_code

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str,
        default_limit: int,
        ttl_s: float,
        currency_code: str = "USD",
        min_size: int = 2,
        max_size: int = 10,
        wait_s: float = CONNECT_TIMEOUT_S * 2,
    ) -> PostgresLedgerStore:
        """Connect (waiting up to ``wait_s`` for a database that is starting) and create
        the tables if missing; UNAVAILABLE when nothing answers."""
        if not SCHEMA_NAME.match(schema):
            raise ValueError(f"schema {schema!r} is not a plain lower-case identifier")
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "options": f"-c search_path={schema}",
                "connect_timeout": CONNECT_TIMEOUT_S,
                "autocommit": True,
            },
            check=AsyncConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_S,
            open=False,
            name=f"ledger-{schema}",
        )
        try:
            await pool.open(wait=True, timeout=wait_s)
        except PoolTimeout as exc:
            await pool.close()
            raise Unavailable(
                "the ledger store is unavailable", reason="STORE_UNAVAILABLE"
            ) from exc
        store = cls(
            pool,
            schema=schema,
            default_limit=default_limit,
            ttl_s=ttl_s,
            currency_code=currency_code,
        )
        await store.create_tables()
        return store

    async def close(self) -> None:
        await self._pool.close()

    def _connection(self) -> AbstractAsyncContextManager[Conn]:
        return pooled(self._pool, store="the ledger store")

    async def create_tables(self) -> None:
        """The schema and its tables, if missing."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"{self.schema}/ledger-tables",),
            )
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            await conn.execute(TABLES.encode())

    def _params(self, tenant_id: str, team_id: str, month: str) -> dict[str, Any]:
        return {"t": tenant_id, "tm": team_id, "m": month, "default": self.default_limit}

    async def _view(self, conn: Conn, tenant_id: str, team_id: str, month: str) -> BudgetView:
        cur = await conn.execute(_VIEW, self._params(tenant_id, team_id, month))
        row = await cur.fetchone()
        assert row is not None
        return BudgetView(
            tenant_id=tenant_id,
            team_id=team_id,
            month=month,
            limit=int(row[0]),
            spent=int(row[1] or 0),
            reserved=int(row[2] or 0),
        )

    # -- the operations -----------------------------------------------------------------

    async def reserve(self, ask: ReserveInput, *, now: datetime) -> Reserved:
        month = month_of(now)
        params = {
            **self._params(ask.tenant_id, ask.team_id, month),
            "id": new_reservation_id(),
            "rq": ask.request_id,
            "u": ask.user_id,
            "f": ask.feature_id,
            "e": ask.estimate,
            "d": ask.digest(),
            "now": now,
            "x": now + self.ttl,
        }
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    cur = await conn.execute(
                        "INSERT INTO reservations (reservation_id, tenant_id, request_id,"
                        " team_id, user_id, feature_id, estimate, month, digest, created_at,"
                        " expires_at) VALUES (%(id)s, %(t)s, %(rq)s, %(tm)s, %(u)s, %(f)s,"
                        " %(e)s, %(m)s, %(d)s, %(now)s, %(x)s)"
                        " ON CONFLICT (tenant_id, request_id) DO NOTHING RETURNING 1",
                        params,
                    )
                    if await cur.fetchone() is None:
                        return await self._replay_reserve(conn, ask)
                    await conn.execute(
                        "INSERT INTO spend (tenant_id, team_id, month) VALUES (%(t)s, %(tm)s,"
                        " %(m)s) ON CONFLICT DO NOTHING",
                        params,
                    )
                    cur = await conn.execute(_HOLD, params)
                    row = await cur.fetchone()
                    if row is None:
                        raise _Refused
            except _Refused:
                budget = await self._view(conn, ask.tenant_id, ask.team_id, month)
                raise exhausted(budget, ask.estimate, now=now) from None
        view = BudgetView(ask.tenant_id, ask.team_id, month, int(row[2]), int(row[0]), int(row[1]))
        return Reserved(params["id"], params["x"], view, replayed=False)

    async def _replay_reserve(self, conn: Conn, ask: ReserveInput) -> Reserved:
        cur = await conn.execute(
            "SELECT reservation_id, digest, expires_at, month FROM reservations"
            " WHERE tenant_id=%s AND request_id=%s",
            (ask.tenant_id, ask.request_id),
        )
        row = await cur.fetchone()
        assert row is not None  # the conflicting row is committed: ON CONFLICT waited for it
        if row[1] != ask.digest():
            raise key_reused()
        view = await self._view(conn, ask.tenant_id, ask.team_id, str(row[3]))
        return Reserved(str(row[0]), row[2], view, replayed=True)

    async def commit(
        self, tenant_id: str, reservation_id: str, priced: PricedUsage, *, now: datetime
    ) -> Committed:
        total = priced.total
        async with self._connection() as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE reservations SET status='committed', charged=LEAST(%(p)s, estimate),"
                    " overrun=GREATEST(%(p)s - estimate, 0), settled_at=%(now)s"
                    " WHERE reservation_id=%(id)s AND tenant_id=%(t)s AND status='held'"
                    " AND expires_at > %(now)s"
                    " RETURNING request_id, team_id, user_id, feature_id, estimate, month",
                    {"p": total, "now": now, "id": reservation_id, "t": tenant_id},
                )
                won = await cur.fetchone()
                if won is not None:
                    return await self._charge(
                        conn,
                        won,
                        tenant_id=tenant_id,
                        reservation_id=reservation_id,
                        priced=priced,
                        now=now,
                    )
            return await self._settled_commit(conn, tenant_id, reservation_id, now)

    async def _charge(
        self,
        conn: Conn,
        won: tuple[Any, ...],
        *,
        tenant_id: str,
        reservation_id: str,
        priced: PricedUsage,
        now: datetime,
    ) -> Committed:
        request_id, team_id, user_id, feature_id, estimate, month = won
        capped = cap(priced, int(estimate))
        params = {
            **self._params(tenant_id, team_id, month),
            "c": capped.charged,
            "e": int(estimate),
        }
        # The rows first: the team's counters row is locked last, so the lock is held
        # for as little as possible (until COMMIT), however many rows the turn has.
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO charges (time, request_id, reservation_id, ordinal, tenant_id,"
                " team_id, user_id, feature_id, model, first, input_tokens, output_tokens,"
                " cost_micro_units, currency_code, price_version)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        now,
                        request_id,
                        reservation_id,
                        i,
                        tenant_id,
                        team_id,
                        user_id,
                        feature_id,
                        g.model,
                        i == 0,
                        g.input_tokens,
                        g.output_tokens,
                        g.cost,
                        self.currency_code,
                        priced.price_version,
                    )
                    for i, g in enumerate(capped.generations)
                ],
            )
        cur = await conn.execute(_CHARGE, params)
        row = await cur.fetchone()
        assert row is not None  # the reservation's hold created the row
        spent, reserved, alerted, limit = (int(v) for v in row)
        level = state_of(limit, spent)
        crossed = None
        if level > State.OK and level > alerted:
            crossed = level
            await conn.execute(
                "UPDATE spend SET alerted=%(a)s WHERE tenant_id=%(t)s AND team_id=%(tm)s"
                " AND month=%(m)s",
                {**params, "a": int(level)},
            )
        view = BudgetView(tenant_id, team_id, month, limit, spent, reserved)
        return Committed(
            charged=capped.charged,
            overrun=capped.overrun,
            budget=view,
            replayed=False,
            crossed=crossed,
        )

    async def _settled_commit(
        self, conn: Conn, tenant_id: str, reservation_id: str, now: datetime
    ) -> Committed:
        """A commit that did not win: a retry of a committed one, or refused."""
        async with conn.transaction():
            status, charged, team_id, month = await self._settled(
                conn, tenant_id, reservation_id, now
            )
            if status == Status.COMMITTED:
                view = await self._view(conn, tenant_id, team_id, month)
                return Committed(charged=charged, overrun=0, budget=view, replayed=True)
        if status == Status.RELEASED:
            raise released()
        raise expired()

    async def _settled(
        self, conn: Conn, tenant_id: str, reservation_id: str, now: datetime
    ) -> tuple[Status, int, str, str]:
        """(status, charged, team, month) of a reservation no longer held by the time its
        Commit or Release ran; one held past its expiry is expired now, as the sweeper
        would (in the caller's transaction); NOT_FOUND when not the tenant's."""
        cur = await conn.execute(
            "SELECT status, charged, team_id, month FROM reservations"
            " WHERE reservation_id=%s AND tenant_id=%s",
            (reservation_id, tenant_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise not_found()
        status = Status(row[0])
        if status is Status.HELD:
            await self._expire_due(conn, now, reservation_id=reservation_id)
            status = Status.EXPIRED
        return status, int(row[1]), str(row[2]), str(row[3])

    async def release(self, tenant_id: str, reservation_id: str, *, now: datetime) -> bool:
        async with self._connection() as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE reservations SET status='released', settled_at=%(now)s"
                    " WHERE reservation_id=%(id)s AND tenant_id=%(t)s AND status='held'"
                    " AND expires_at > %(now)s RETURNING team_id, month, estimate",
                    {"now": now, "id": reservation_id, "t": tenant_id},
                )
                won = await cur.fetchone()
                if won is not None:
                    await conn.execute(
                        "UPDATE spend SET reserved = reserved - %s"
                        " WHERE tenant_id=%s AND team_id=%s AND month=%s",
                        (won[2], tenant_id, won[0], won[1]),
                    )
                    return True
            async with conn.transaction():
                await self._settled(conn, tenant_id, reservation_id, now)
            return False

    async def budget(self, tenant_id: str, team_id: str, *, now: datetime) -> BudgetView:
        async with self._connection() as conn:
            return await self._view(conn, tenant_id, team_id, month_of(now))

    async def set_budget(
        self, tenant_id: str, team_id: str, limit: int, *, now: datetime
    ) -> BudgetView:
        async with self._connection() as conn:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO budgets (tenant_id, team_id, limit_micros) VALUES (%s, %s, %s)"
                    " ON CONFLICT (tenant_id, team_id) DO UPDATE"
                    " SET limit_micros = EXCLUDED.limit_micros, updated_at = now()",
                    (tenant_id, team_id, limit),
                )
            return await self._view(conn, tenant_id, team_id, month_of(now))

    async def expire(self, *, now: datetime) -> int:
        async with self._connection() as conn, conn.transaction():
            return await self._expire_due(conn, now)

    async def _expire_due(self, conn: Conn, now: datetime, *, reservation_id: str = "") -> int:
        """Expire held reservations past their expiry (one, or a batch) and give their
        holds back; in the caller's transaction."""
        cur = await conn.execute(_EXPIRE, {"now": now, "id": reservation_id, "batch": SWEEP_BATCH})
        given_back: dict[tuple[str, str, str], int] = defaultdict(int)
        rows = await cur.fetchall()
        for tenant_id, team_id, month, estimate in rows:
            given_back[(str(tenant_id), str(team_id), str(month))] += int(estimate)
        for (tenant_id, team_id, month), amount in sorted(given_back.items()):  # lock order
            await conn.execute(
                "UPDATE spend SET reserved = reserved - %s"
                " WHERE tenant_id=%s AND team_id=%s AND month=%s",
                (amount, tenant_id, team_id, month),
            )
        return len(rows)

    async def charges(
        self, since: datetime, until: datetime, tenant_id: str | None = None
    ) -> list[ChargeRow]:
        query = (
            "SELECT time, request_id, reservation_id, tenant_id, team_id, user_id, feature_id,"
            " model, first, input_tokens, output_tokens, cost_micro_units, currency_code,"
            " price_version FROM charges WHERE time >= %(since)s AND time < %(until)s"
        )
        if tenant_id is not None:
            query += " AND tenant_id = %(t)s"
        query += " ORDER BY seq"
        async with self._connection() as conn:
            cur = await conn.execute(
                query.encode(), {"since": since, "until": until, "t": tenant_id}
            )
            return [
                ChargeRow(
                    time=r[0],
                    request_id=r[1],
                    reservation_id=r[2],
                    tenant_id=r[3],
                    team_id=r[4],
                    user_id=r[5],
                    feature_id=r[6],
                    model=r[7],
                    first=bool(r[8]),
                    input_tokens=int(r[9]),
                    output_tokens=int(r[10]),
                    cost_micro_units=int(r[11]),
                    currency_code=r[12],
                    price_version=r[13],
                )
                for r in await cur.fetchall()
            ]
