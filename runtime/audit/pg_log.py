"""The fleet's audit log: one chain in PostgreSQL that every gateway replica appends to.

Same records, canonical bytes and hash as the segment files (``chain``), one row a record:
``audit_records(chain, seq, prev, hash, record, day)`` with the canonical bytes verbatim in
``record``. ``audit_chain`` holds each chain's head (seq, hash) and its retention base.

A group commit is one transaction: lock the chain's head row (``FOR UPDATE``: replicas take
turns, a group each), number and link the group, ``COPY`` it in, move the head, commit
(synchronous commit: durable when it returns). The caller's side is ``GroupWriter``'s.

Triggers keep the table append-only for whoever does not own it: an UPDATE is refused,
and a DELETE is refused unless the row is at or before the chain's base (which only
``prune_postgres`` moves, in the same transaction). Verification reads in seq order, so a
"reordered" row can only show as altered (seq is in the hash) and a removed one as a gap.

Not here: the fleet's pseudonym key store (``pseudonyms`` is one SQLite file per host;
replicas must share one store, or their pseudonyms for a user differ).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from runtime.audit.chain import GENESIS, link
from runtime.audit.segments import Mark
from runtime.audit.verify import Finding, Problem, VerifyResult
from runtime.audit.writer import AuditLogOptions, Entry, GroupWriter
from runtime.progress import Progress

_MIGRATION = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.audit_chain (
  chain TEXT PRIMARY KEY,
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL,
  base_seq BIGINT NOT NULL,
  base_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.audit_records (
  chain TEXT NOT NULL,
  seq BIGINT NOT NULL,
  prev TEXT NOT NULL,
  hash TEXT NOT NULL,
  record TEXT NOT NULL,
  day DATE NOT NULL,
  PRIMARY KEY (chain, seq)
);
CREATE INDEX IF NOT EXISTS audit_records_day ON {schema}.audit_records (chain, day);
CREATE OR REPLACE FUNCTION {schema}.audit_records_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'audit records are append-only';
  END IF;
  IF OLD.seq > (SELECT base_seq FROM {schema}.audit_chain WHERE chain = OLD.chain) THEN
    RAISE EXCEPTION 'audit records after the retention base cannot be deleted';
  END IF;
  RETURN OLD;
END $$;
CREATE OR REPLACE TRIGGER audit_records_guard
  BEFORE UPDATE OR DELETE ON {schema}.audit_records
  FOR EACH ROW EXECUTE FUNCTION {schema}.audit_records_guard();
"""


def migrate(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the tables and triggers if missing (replicas starting together take turns)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{schema}/audit",))
        conn.execute(sql.SQL(_MIGRATION).format(schema=sql.Identifier(schema)))


def _head_row(conn: psycopg.Connection[Any], schema: str, chain: str) -> tuple[Any, ...]:
    """The chain's row, locked for this transaction; created at the genesis if missing."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.audit_chain VALUES (%s, 0, %s, 0, %s) ON CONFLICT DO NOTHING"
        ).format(sql.Identifier(schema)),
        (chain, GENESIS, GENESIS),
    )
    row = conn.execute(
        sql.SQL(
            "SELECT seq, hash, base_seq, base_hash FROM {}.audit_chain WHERE chain = %s FOR UPDATE"
        ).format(sql.Identifier(schema)),
        (chain,),
    ).fetchone()
    assert row is not None
    return tuple(row)


class PostgresAuditLog(GroupWriter):
    """A chain in PostgreSQL: ``append`` per turn, ``close`` at the end."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        chain: str = "fleet",
        options: AuditLogOptions | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(options=options, monotonic=monotonic)
        self.schema, self.chain = schema, chain
        self._conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        try:
            migrate(self._conn, schema)
        except BaseException:
            self._conn.close()
            raise
        self._last_seq = 0
        self._start()

    @property
    def last_seq(self) -> int:
        """The seq of the last record this writer wrote (other replicas write too)."""
        return self._last_seq

    def _write_entries(self, entries: list[Entry]) -> None:
        table = sql.Identifier(self.schema, "audit_records")
        with self._conn.transaction():
            seq, prev, _, _ = _head_row(self._conn, self.schema, self.chain)
            with self._conn.cursor() as cur:
                copy_rows = sql.SQL(
                    "COPY {} (chain, seq, prev, hash, record, day) FROM STDIN"
                ).format(table)
                with cur.copy(copy_rows) as copy:
                    for day, body in entries:
                        seq += 1
                        digest = link(prev, seq, body)
                        copy.write_row((self.chain, seq, prev, digest, body.decode("ascii"), day))
                        prev = digest
            self._conn.execute(
                sql.SQL("UPDATE {}.audit_chain SET seq = %s, hash = %s WHERE chain = %s").format(
                    sql.Identifier(self.schema)
                ),
                (seq, prev, self.chain),
            )
        self._last_seq = seq

    def _thread_exit(self) -> None:
        self._conn.close()


def verify_postgres(
    dsn: str,
    *,
    schema: str = "public",
    chain: str = "fleet",
    progress: Progress | None = None,
) -> VerifyResult:
    """Verify a chain in PostgreSQL from its retention base to its head."""
    where = f"{schema}.audit_records"
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute(
            sql.SQL(
                "SELECT seq, hash, base_seq, base_hash FROM {}.audit_chain WHERE chain = %s"
            ).format(sql.Identifier(schema)),
            (chain,),
        ).fetchone()
        if row is None:
            return VerifyResult(0, 0, Mark(0, GENESIS), Mark(0, GENESIS))
        head, base = Mark(row[0], row[1], where), Mark(row[2], row[3], where)
        total = head.seq - base.seq
        expected, prev, records = base.seq + 1, base.hash, 0
        with conn.cursor(name="audit_verify") as cur:
            cur.itersize = 20_000
            cur.execute(
                sql.SQL(
                    "SELECT seq, prev, hash, record FROM {} WHERE chain = %s ORDER BY seq"
                ).format(sql.Identifier(schema, "audit_records")),
                (chain,),
            )
            for seq, stored_prev, stored, record in cur:
                finding = None
                if link(stored_prev, seq, record.encode("ascii")) != stored:
                    finding = Finding(Problem.ALTERED, where, 0, seq, "does not match its hash")
                elif seq != expected:
                    gap = f"seqs {expected}..{seq - 1}" if seq > expected + 1 else f"seq {expected}"
                    finding = Finding(Problem.REMOVED, where, 0, expected, f"{gap} missing")
                elif stored_prev != prev:
                    finding = Finding(
                        Problem.ALTERED,
                        where,
                        0,
                        seq - 1,
                        f"seq {seq} links to another hash: this record was rewritten or replaced",
                    )
                if finding is not None:
                    last = Mark(expected - 1, prev, where)
                    return VerifyResult(records, 1, base, last, finding)
                prev, expected, records = stored, expected + 1, records + 1
                if progress is not None and records % 65_536 == 0:
                    progress(records, total)
    last = Mark(expected - 1, prev, where)
    if progress is not None:
        progress(records, total)
    if (last.seq, last.hash) != (head.seq, head.hash):
        kind = Problem.REMOVED if last.seq < head.seq else Problem.ALTERED
        finding = Finding(
            kind,
            where,
            0,
            last.seq + 1,
            f"the chain's head is seq {head.seq}, rows end at {last.seq}",
        )
        return VerifyResult(records, 1, base, last, finding)
    return VerifyResult(records, 1, base, last)


@dataclass(frozen=True, slots=True)
class PostgresPruneResult:
    """What ``prune_postgres`` removed."""

    removed: int
    """Rows deleted."""
    base: Mark
    """Where the kept chain starts now."""


def prune_postgres(
    dsn: str,
    *,
    schema: str = "public",
    chain: str = "fleet",
    older_than_days: int,
    now: datetime | None = None,
) -> PostgresPruneResult:
    """Delete the records before the first record of a UTC day at most ``older_than_days``
    old (a prefix of the chain), moving the chain's base to the last one deleted."""
    cutoff = (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=older_than_days)
    records = sql.Identifier(schema, "audit_records")
    with psycopg.connect(dsn) as conn, conn.transaction():
        head_seq, _, base_seq, base_hash = _head_row(conn, schema, chain)
        row = conn.execute(
            sql.SQL("SELECT min(seq) FROM {} WHERE chain = %s AND day >= %s").format(records),
            (chain, cutoff),
        ).fetchone()
        cut = head_seq if row is None or row[0] is None else int(row[0]) - 1
        if cut <= base_seq:
            return PostgresPruneResult(0, Mark(base_seq, base_hash))
        found = conn.execute(
            sql.SQL("SELECT hash FROM {} WHERE chain = %s AND seq = %s").format(records),
            (chain, cut),
        ).fetchone()
        if found is None:
            raise RuntimeError(f"record {cut} is missing: verify the chain before pruning")
        conn.execute(
            sql.SQL(
                "UPDATE {}.audit_chain SET base_seq = %s, base_hash = %s WHERE chain = %s"
            ).format(sql.Identifier(schema)),
            (cut, found[0], chain),
        )
        deleted = conn.execute(
            sql.SQL("DELETE FROM {} WHERE chain = %s AND seq <= %s").format(records),
            (chain, cut),
        ).rowcount
    return PostgresPruneResult(deleted, Mark(cut, found[0]))
