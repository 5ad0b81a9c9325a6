"""Users and sessions as keyed pseudonyms, and erasure.

Each customer (tenant + user id) gets a random 256-bit secret on first sight. Their
pseudonyms are HMAC-SHA256 under that secret: ``u_`` + 32 hex of HMAC(user) and ``s_`` + 32
hex of HMAC(session id). The audit log stores and hashes only the pseudonyms; the secrets
live here, in a separate SQLite file (``PseudonymKeys``) or, for a fleet whose replicas must
agree on pseudonyms, a PostgreSQL table (``PostgresPseudonymKeys``); never exported or
shipped with the log.

Erasing a customer deletes their secret (``secure_delete`` overwrites the freed pages and
the write-ahead log is checkpointed and truncated), after which nobody can tell which
records were theirs, while the chain, which hashed the pseudonyms, still verifies. A user
seen again after erasure gets a new secret, unlinkable to the old records.

The store is looked up by SHA-256 of tenant and user id, not the id itself, so the file
does not list customer ids. Lookups are not cached: an erasure made by another process
(``waybill audit erase``) takes effect on the next turn.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_keys (
  lookup TEXT PRIMARY KEY,
  secret BLOB NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID
"""


def _lookup(tenant_id: str, user_id: str) -> str:
    return hashlib.sha256(
        b"waybill.audit.customer\0%s\0%s" % (tenant_id.encode(), user_id.encode())
    ).hexdigest()


class _Keys:
    """Pseudonyms over a store of per-customer secrets (the store is the subclass's)."""

    def _secret(self, tenant_id: str, user_id: str, *, create: bool) -> bytes | None:
        raise NotImplementedError

    def _delete(self, lookup: str) -> bool:
        raise NotImplementedError

    def user(self, tenant_id: str, user_id: str) -> str:
        """The user's pseudonym (``u_`` + 32 hex); creates their secret on first sight."""
        secret = self._secret(tenant_id, user_id, create=True)
        assert secret is not None
        return _user_pseudonym(secret, tenant_id, user_id)

    def session(self, tenant_id: str, user_id: str, session_id: str) -> str:
        """The pseudonym of one of the user's sessions (``s_`` + 32 hex)."""
        secret = self._secret(tenant_id, user_id, create=True)
        assert secret is not None
        return _pseudonym("s_", secret, b"session\0%s" % session_id.encode())

    def known_user(self, tenant_id: str, user_id: str) -> str | None:
        """The user's pseudonym if they have a secret (not erased), else None; creates
        nothing (to find a customer's records)."""
        secret = self._secret(tenant_id, user_id, create=False)
        return None if secret is None else _user_pseudonym(secret, tenant_id, user_id)

    def erase(self, tenant_id: str, user_id: str) -> bool:
        """Delete the customer's secret; whether there was one. Their records stay in the
        log, verifiable and no longer linkable to them."""
        return self._delete(_lookup(tenant_id, user_id))

    def close(self) -> None:
        """Close the store."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class PseudonymKeys(_Keys):
    """Per-customer secrets in a SQLite file; thread-safe; one connection per instance."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # A secret lost in a crash would orphan records written under it: sync each commit
            # (once per new customer, not per turn).
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(_SCHEMA)
        except BaseException:
            self._db.close()
            raise
        if os.name == "posix":
            path.chmod(0o600)

    def _secret(self, tenant_id: str, user_id: str, *, create: bool) -> bytes | None:
        key = _lookup(tenant_id, user_id)
        with self._lock:
            row = self._db.execute(
                "SELECT secret FROM customer_keys WHERE lookup = ?", (key,)
            ).fetchone()
            if row is None and create:
                # INSERT OR IGNORE, then read back: another process may have won the race.
                self._db.execute(
                    "INSERT OR IGNORE INTO customer_keys VALUES (?, ?, ?)",
                    (key, os.urandom(32), datetime.now(UTC).isoformat(timespec="seconds")),
                )
                row = self._db.execute(
                    "SELECT secret FROM customer_keys WHERE lookup = ?", (key,)
                ).fetchone()
        return None if row is None else bytes(row[0])

    def _delete(self, lookup: str) -> bool:
        with self._lock:
            deleted = self._db.execute(
                "DELETE FROM customer_keys WHERE lookup = ?", (lookup,)
            ).rowcount
            # The deleted page image may still sit in the write-ahead log: fold and truncate it.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted > 0

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


class PostgresPseudonymKeys(_Keys):
    """Per-customer secrets in PostgreSQL, shared by the fleet's replicas (every replica
    must give a user the same pseudonym). PostgreSQL frees a deleted row's space lazily
    (VACUUM) and backups keep it: erasure is complete once those have rolled over."""

    def __init__(self, dsn: str, *, schema: str = "public") -> None:
        import psycopg
        from psycopg import sql

        self._lock = threading.Lock()
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._table = sql.Identifier(schema, "audit_customer_keys")
        self._sql = sql
        try:
            with self._conn.transaction():
                self._conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{schema}/keys",)
                )
                self._conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
                self._conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (lookup TEXT PRIMARY KEY,"
                        " secret BYTEA NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    ).format(self._table)
                )
        except BaseException:
            self._conn.close()
            raise

    def _secret(self, tenant_id: str, user_id: str, *, create: bool) -> bytes | None:
        key = _lookup(tenant_id, user_id)
        select = self._sql.SQL("SELECT secret FROM {} WHERE lookup = %s").format(self._table)
        with self._lock:
            row = self._conn.execute(select, (key,)).fetchone()
            if row is None and create:
                self._conn.execute(
                    self._sql.SQL(
                        "INSERT INTO {} (lookup, secret) VALUES (%s, %s) ON CONFLICT DO NOTHING"
                    ).format(self._table),
                    (key, os.urandom(32)),
                )
                row = self._conn.execute(select, (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def _delete(self, lookup: str) -> bool:
        with self._lock:
            deleted = self._conn.execute(
                self._sql.SQL("DELETE FROM {} WHERE lookup = %s").format(self._table), (lookup,)
            ).rowcount
        return deleted > 0

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _user_pseudonym(secret: bytes, tenant_id: str, user_id: str) -> str:
    return _pseudonym("u_", secret, b"user\0%s\0%s" % (tenant_id.encode(), user_id.encode()))


def _pseudonym(prefix: str, secret: bytes, message: bytes) -> str:
    return prefix + hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]
