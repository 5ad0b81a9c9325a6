"""The gateway's API key store: digests only, never a key.

A key reads ``wb_<key id>_<secret>``: the id (16 hex digits) finds the record,
the secret (43 URL-safe characters, 256 random bits) proves possession. The
store keeps the SHA-256 of the whole key. A plain hash is enough here, and a
slow password hash (bcrypt, scrypt) or a peppered HMAC would buy nothing: the
secret is random and 256 bits long, so the digest cannot be reversed or
guessed however fast each guess is, while every authenticated call pays for
the hash; an HMAC pepper would be one more secret to distribute to every
replica and to the CLI that writes the store. Digests are compared with
:func:`hmac.compare_digest`.

The store is one JSON file (mode 0600) that the CLI (``waybill keys``) and
the launcher write and every gateway replica reads (see ``gateway.key_ring``).
Writers hold an exclusive lock on ``<store>.lock`` while they read, change and
atomically replace the file, so two commands never lose each other's change.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.principal import KEY_ROLES, Principal

KEY_PREFIX = "wb_"
FORMAT_VERSION = 1
_KEY = re.compile(r"^wb_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
"""Tenant and team ids."""


class KeyStoreError(ValueError):
    """The store cannot be read, or a change to it is not possible."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as the store knows it (no secret)."""

    key_id: str
    """Public part of the key; finds the record."""
    tenant_id: str
    """Tenant the key acts for."""
    team_id: str
    """Team its calls are charged to."""
    role: str
    """``service`` or ``admin``."""
    sha256: str
    """Lower-case hex SHA-256 of the whole key."""
    created_at: float
    """Unix time of issue."""
    expires_at: float | None = None
    """Unix time it stops working; None: never (until revoked)."""
    revoked_at: float | None = None
    """Unix time it was revoked; None: not revoked."""
    name: str = ""
    """Who holds it (for the operator; never compared)."""
    replaced_by: str = ""
    """Id of the key a rotation issued in its place."""

    def principal(self) -> Principal:
        """Who the key stands for."""
        return Principal(self.tenant_id, self.team_id, self.role, principal_id=f"key:{self.key_id}")

    def state(self, now: float) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued: the only time its plaintext exists outside its holder."""

    api_key: str
    record: KeyRecord


def digest(api_key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None."""
    match = _KEY.match(presented)
    return (match[1], match[2]) if match else None


def new_key() -> tuple[str, str]:
    """A fresh ``(key id, key)``."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def _time(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(value: Any, *, where: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise KeyStoreError(f"{where} must be an RFC 3339 time or null")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise KeyStoreError(f"{where}={value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise KeyStoreError(f"{where}={value!r} has no time zone")
    return parsed.timestamp()


def to_json(record: KeyRecord) -> dict[str, Any]:
    """The stored form of a record."""
    return {
        "key_id": record.key_id,
        "tenant_id": record.tenant_id,
        "team_id": record.team_id,
        "role": record.role,
        "name": record.name,
        "sha256": record.sha256,
        "created_at": _time(record.created_at),
        "expires_at": _time(record.expires_at),
        "revoked_at": _time(record.revoked_at),
        "replaced_by": record.replaced_by,
    }


def _record(entry: Any, number: int) -> KeyRecord:
    where = f"keys[{number}]"
    if not isinstance(entry, dict):
        raise KeyStoreError(f"{where} is not an object")

    def text(field: str, pattern: re.Pattern[str] | None = None, *, optional: bool = False) -> str:
        value = entry.get(field, "" if optional else None)
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise KeyStoreError(f"{where}.{field} is missing or malformed")
        return value

    role = text("role")
    if role not in KEY_ROLES:
        raise KeyStoreError(f"{where}.role must be one of {sorted(KEY_ROLES)}")
    created = _parse_time(entry.get("created_at"), where=f"{where}.created_at")
    if created is None:
        raise KeyStoreError(f"{where}.created_at is missing")
    return KeyRecord(
        key_id=text("key_id", re.compile(r"^[0-9a-f]{16}$")),
        tenant_id=text("tenant_id", _NAME),
        team_id=text("team_id", _NAME),
        role=role,
        sha256=text("sha256", _DIGEST),
        created_at=created,
        expires_at=_parse_time(entry.get("expires_at"), where=f"{where}.expires_at"),
        revoked_at=_parse_time(entry.get("revoked_at"), where=f"{where}.revoked_at"),
        name=text("name", optional=True),
        replaced_by=text("replaced_by", optional=True),
    )


def parse(text: str, *, source: str) -> tuple[KeyRecord, ...]:
    """The records of a store's text; KeyStoreError naming ``source`` when malformed."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KeyStoreError(f"{source}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyStoreError(f"{source}: expected {{'version': 1, 'keys': [...]}}")
    if data.get("version") != FORMAT_VERSION:
        raise KeyStoreError(f"{source}: unknown version {data.get('version')!r}")
    try:
        records = tuple(_record(e, n) for n, e in enumerate(data["keys"]))
    except KeyStoreError as exc:
        raise KeyStoreError(f"{source}: {exc}") from None
    ids = [r.key_id for r in records]
    if len(set(ids)) != len(ids):
        raise KeyStoreError(f"{source}: a key id appears twice")
    return records


def read(path: Path) -> tuple[KeyRecord, ...]:
    """The records stored at ``path`` (OSError when it cannot be read)."""
    return parse(path.read_text(encoding="utf-8"), source=str(path))


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class KeyStore:
    """Changes to the store file: issue, rotate, revoke (each under the writers' lock)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] | None = None) -> None:
        self.path = path
        self._clock = clock or _wall_clock

    @contextmanager
    def _locked(self) -> Iterator[list[KeyRecord]]:
        """The records, to change in place; written back when the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            records = list(read(self.path)) if self.path.exists() else []
            before = list(records)
            yield records
            if records != before or not self.path.exists():
                payload = {"version": FORMAT_VERSION, "keys": [to_json(r) for r in records]}
                write_private(self.path, json.dumps(payload, indent=2) + "\n")
        finally:
            os.close(fd)  # closing releases the lock

    def records(self) -> tuple[KeyRecord, ...]:
        """Every record (an absent store has none)."""
        return read(self.path) if self.path.exists() else ()

    def create(
        self,
        *,
        tenant_id: str,
        team_id: str = "support",
        role: str = "service",
        name: str = "",
        expires_in_s: float | None = None,
    ) -> IssuedKey:
        """Issue a key; its plaintext is returned once and never stored."""
        if not _NAME.match(tenant_id) or not _NAME.match(team_id):
            raise KeyStoreError("tenant and team ids are 2-64 of [a-z0-9_-], starting a-z0-9")
        if role not in KEY_ROLES:
            raise KeyStoreError(f"role must be one of {sorted(KEY_ROLES)}")
        with self._locked() as records:
            return self._issue(
                records,
                tenant_id=tenant_id,
                team_id=team_id,
                role=role,
                name=name,
                expires_in_s=expires_in_s,
            )

    def _issue(
        self,
        records: list[KeyRecord],
        *,
        tenant_id: str,
        team_id: str,
        role: str,
        name: str,
        expires_in_s: float | None,
    ) -> IssuedKey:
        now = self._clock()
        taken = {r.key_id for r in records}
        key_id, api_key = new_key()
        while key_id in taken:  # 64 random bits: never in practice, cheap to rule out
            key_id, api_key = new_key()
        record = KeyRecord(
            key_id=key_id,
            tenant_id=tenant_id,
            team_id=team_id,
            role=role,
            sha256=digest(api_key),
            created_at=float(int(now)),
            expires_at=None if expires_in_s is None else float(int(now + expires_in_s)),
            name=name,
        )
        records.append(record)
        return IssuedKey(api_key, record)

    def rotate(self, key_id: str, *, grace_s: float) -> IssuedKey:
        """Issue a key in place of ``key_id``; the old one keeps working for ``grace_s``
        (or until its own expiry, if sooner), so both work during the switch."""
        with self._locked() as records:
            index = self._index(records, key_id)
            old = records[index]
            now = self._clock()
            if old.state(now) != "active":
                raise KeyStoreError(f"key {key_id} is {old.state(now)}: nothing to rotate")
            if old.replaced_by:
                raise KeyStoreError(
                    f"key {key_id} was already rotated to {old.replaced_by}; rotate that one"
                )
            lifetime = None if old.expires_at is None else old.expires_at - old.created_at
            issued = self._issue(
                records,
                tenant_id=old.tenant_id,
                team_id=old.team_id,
                role=old.role,
                name=old.name,
                expires_in_s=lifetime,
            )
            grace_end = float(int(now + grace_s))
            ends = grace_end if old.expires_at is None else min(old.expires_at, grace_end)
            records[index] = replace(old, expires_at=ends, replaced_by=issued.record.key_id)
        return issued

    def revoke(self, key_id: str) -> KeyRecord:
        """Stop ``key_id`` now (every replica within its refresh interval)."""
        with self._locked() as records:
            index = self._index(records, key_id)
            old = records[index]
            if old.revoked_at is not None:
                raise KeyStoreError(f"key {key_id} is already revoked")
            records[index] = replace(old, revoked_at=float(int(self._clock())))
            return records[index]

    @staticmethod
    def _index(records: list[KeyRecord], key_id: str) -> int:
        for index, record in enumerate(records):
            if record.key_id == key_id:
                return index
        raise KeyStoreError(f"no key {key_id!r} in the store")


def _wall_clock() -> float:
    return datetime.now(UTC).timestamp()
