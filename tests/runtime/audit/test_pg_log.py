"""The fleet's chain in PostgreSQL: replicas share one chain; tampering is caught; the table
refuses updates and deletions after the retention base."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from runtime.audit.pg_log import PostgresAuditLog, prune_postgres, verify_postgres
from runtime.audit.pseudonyms import PostgresPseudonymKeys
from runtime.audit.verify import Problem
from tests.runtime.audit.logs import DAY0, record
from tests.support.postgres_server import PG_DSN, pg_schema  # noqa: F401

pytestmark = pytest.mark.postgres


def _fill(schema: str, *, days: int = 1, per_day: int = 10) -> None:
    with PostgresAuditLog(PG_DSN, schema=schema) as log:
        for n in range(days * per_day):
            log.append(record(n, at=DAY0 + timedelta(days=n // per_day)))


def _tamper(schema: str, statement: str, *params: object) -> None:
    table = sql.Identifier(schema, "audit_records")
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(table))
        conn.execute(sql.SQL(statement).format(table), params)
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(table))


async def test_replicas_append_to_one_valid_chain(pg_schema: str) -> None:  # noqa: F811
    replicas = [PostgresAuditLog(PG_DSN, schema=pg_schema) for _ in range(3)]

    def append_many(r: int) -> None:
        for n in range(200):
            replicas[r].append(record(r * 1000 + n))

    threads = [threading.Thread(target=append_many, args=(r,)) for r in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for replica in replicas:
        replica.close()
    result = verify_postgres(PG_DSN, schema=pg_schema)
    assert result.ok, result.problem
    assert (result.records, result.last.seq) == (600, 600)


async def test_an_altered_record_is_named(pg_schema: str) -> None:  # noqa: F811
    _fill(pg_schema)
    _tamper(
        pg_schema,
        'UPDATE {} SET record = replace(record, \'"outcome":"OK"\', \'"outcome":"NO"\')'
        " WHERE seq = %s",
        4,
    )
    problem = verify_postgres(PG_DSN, schema=pg_schema).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == (Problem.ALTERED, 4)


async def test_a_removed_record_is_named(pg_schema: str) -> None:  # noqa: F811
    _fill(pg_schema)
    _tamper(pg_schema, "DELETE FROM {} WHERE seq = %s", 6)
    problem = verify_postgres(PG_DSN, schema=pg_schema).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == (Problem.REMOVED, 6)


async def test_records_cut_from_the_end_are_caught(pg_schema: str) -> None:  # noqa: F811
    _fill(pg_schema)
    _tamper(pg_schema, "DELETE FROM {} WHERE seq > %s", 8)
    problem = verify_postgres(PG_DSN, schema=pg_schema).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == (Problem.REMOVED, 9)


async def test_the_table_refuses_updates_and_deletions(pg_schema: str) -> None:  # noqa: F811
    _fill(pg_schema)
    table = sql.Identifier(pg_schema, "audit_records")
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(sql.SQL("UPDATE {} SET day = day WHERE seq = 3").format(table))
        with pytest.raises(psycopg.errors.RaiseException, match="retention base"):
            conn.execute(sql.SQL("DELETE FROM {} WHERE seq = 3").format(table))


async def test_pruning_keeps_the_chain_verifiable(pg_schema: str) -> None:  # noqa: F811
    _fill(pg_schema, days=4, per_day=5)
    result = prune_postgres(
        PG_DSN, schema=pg_schema, older_than_days=1, now=DAY0 + timedelta(days=3)
    )
    assert (result.removed, result.base.seq) == (10, 10)
    verified = verify_postgres(PG_DSN, schema=pg_schema)
    assert verified.ok, verified.problem
    assert (verified.records, verified.base.seq, verified.last.seq) == (10, 10, 20)
    _tamper(pg_schema, "DELETE FROM {} WHERE seq = %s", 15)
    problem = verify_postgres(PG_DSN, schema=pg_schema).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == (Problem.REMOVED, 15)


async def test_replicas_share_pseudonyms_and_erasure(pg_schema: str) -> None:  # noqa: F811
    one = PostgresPseudonymKeys(PG_DSN, schema=pg_schema)
    two = PostgresPseudonymKeys(PG_DSN, schema=pg_schema)
    try:
        name = one.user("acme", "cust-0042")
        assert two.user("acme", "cust-0042") == name
        assert two.session("acme", "cust-0042", "s1") == one.session("acme", "cust-0042", "s1")
        assert one.erase("acme", "cust-0042")
        assert two.known_user("acme", "cust-0042") is None
        assert two.user("acme", "cust-0042") != name
    finally:
        one.close()
        two.close()
