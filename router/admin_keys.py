"""Who may add a tenant's exemplars: admin keys, stored hashed.

Until the identity service exists, AddExemplars carries ``authorization:
Bearer <key>`` and the router checks it against a JSON file of
``{"keys": [{"tenant_id", "key_sha256", "name"}]}`` (``WAYBILL_ROUTER_ADMIN_KEYS``;
a bare list is read too). Only SHA-256 digests are kept; a presented key is
hashed and compared with :func:`hmac.compare_digest`. The file is read again
when it changes (a rotated Secret needs no restart). Keys never reach a log.

In the embedded mode :func:`generate` writes one key per demo tenant on the
first start: the keys to a file for the operator, the digests to the router's.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import PermissionDenied, Unauthenticated

ADMIN_KEYS_ENV = "WAYBILL_ROUTER_ADMIN_KEYS"
AUTHORIZATION = "authorization"
BEARER = "bearer "
KEY_PREFIX = "wbra_"


@dataclass(frozen=True, slots=True)
class AdminKey:
    """One admin key as the router knows it."""

    tenant_id: str
    """The tenant whose exemplars the key may add."""
    key_sha256: str
    """Lower-case hex SHA-256 of the key."""
    name: str
    """Who holds it (for the operator; never compared)."""


def digest(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse(text: str, *, source: str) -> tuple[AdminKey, ...]:
    """The keys of a keys file's text; ValueError naming ``source`` on a bad entry."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source}: not JSON ({exc})") from None
    entries = data.get("keys") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{source}: expected a list of keys or {{'keys': [...]}}")
    keys = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: keys[{number}] is not an object")
        tenant, hashed = entry.get("tenant_id"), entry.get("key_sha256")
        if not isinstance(tenant, str) or not tenant:
            raise ValueError(f"{source}: keys[{number}].tenant_id must be a non-empty string")
        if (
            not isinstance(hashed, str)
            or len(hashed) != 64
            or any(c not in "0123456789abcdef" for c in hashed)
        ):
            raise ValueError(f"{source}: keys[{number}].key_sha256 must be 64 lower-case hex")
        keys.append(AdminKey(tenant, hashed, str(entry.get("name", ""))))
    return tuple(keys)


class AdminKeys:
    """The admin keys in force; ``authorise`` answers one call."""

    def __init__(self, keys: Iterable[AdminKey] = (), *, path: Path | None = None) -> None:
        self._keys = tuple(keys)
        self._path = path
        self._stamp: tuple[int, int] | None = None

    @classmethod
    def load(cls, path: Path) -> AdminKeys:
        """The keys of ``path``; ValueError/OSError when it cannot be used (fail at start)."""
        keys = cls(path=path)
        keys._reload()
        return keys

    def _reload(self) -> None:
        assert self._path is not None
        info = self._path.stat()
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._keys = parse(self._path.read_text(encoding="utf-8"), source=str(self._path))
            self._stamp = stamp

    def _current(self) -> tuple[AdminKey, ...]:
        if self._path is not None:
            # A Secret mid-update: keep the keys read last rather than lock everyone out.
            with contextlib.suppress(OSError, ValueError):
                self._reload()
        return self._keys

    def authorise(self, metadata: Sequence[tuple[str, str | bytes]], tenant_id: str) -> AdminKey:
        """The key in ``metadata`` if it may act for ``tenant_id``.

        UNAUTHENTICATED when no key or an unknown one is presented,
        PERMISSION_DENIED when the key is another tenant's; neither message
        says whether ``tenant_id`` exists.
        """
        presented = _bearer(metadata)
        if presented is None:
            raise Unauthenticated(
                "AddExemplars needs an admin key: metadata 'authorization: Bearer <key>'",
                reason="ADMIN_KEY_MISSING",
            )
        hashed = digest(presented)
        # Every entry is compared, so the time taken does not tell which matched.
        matches = [k for k in self._current() if hmac.compare_digest(k.key_sha256, hashed)]
        if not matches:
            raise Unauthenticated("the admin key is not valid", reason="ADMIN_KEY_INVALID")
        for key in matches:
            if key.tenant_id == tenant_id:
                return key
        raise PermissionDenied(
            "this admin key may not add exemplars for the requested tenant",
            reason="TENANT_NOT_ALLOWED",
        )


def _bearer(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    for name, value in metadata:
        if name.lower() != AUTHORIZATION:
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if text[: len(BEARER)].lower() == BEARER and text[len(BEARER) :].strip():
            return text[len(BEARER) :].strip()
        return None
    return None


def _write_private(path: Path, payload: object) -> None:
    """Write JSON to a new file only its owner may read (O_EXCL: never over another)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)


def generate(*, hashed: Path, plain: Path, tenants: Sequence[str]) -> None:
    """On the first start, one admin key per tenant: the keys to ``plain`` (for the
    operator), their digests to ``hashed`` (for the router); both mode 0600.

    Nothing is done when ``hashed`` exists: keys are created once, never rotated here.
    """
    if hashed.exists():
        return
    keys = {t: f"{KEY_PREFIX}{t}_{secrets.token_urlsafe(24)}" for t in tenants}
    if not plain.exists():
        _write_private(
            plain,
            {
                "keys": [
                    {"tenant_id": t, "api_key": k, "name": f"{t} demo admin"}
                    for t, k in keys.items()
                ]
            },
        )
    else:  # the operator's file outlived the router's: keep its keys
        keys = {t: key_in(plain, t) for t in tenants}
    _write_private(
        hashed,
        {
            "keys": [
                {"tenant_id": t, "key_sha256": digest(k), "name": f"{t} demo admin"}
                for t, k in keys.items()
            ]
        },
    )


def key_in(path: Path, tenant_id: str) -> str:
    """The admin key in a key file: the tenant's entry of a ``{"keys": [{"tenant_id",
    "api_key"}]}`` file, else the file's whole text (one bare key). KeyError if absent."""
    text = path.read_text(encoding="utf-8").strip()
    try:
        data = json.loads(text)
    except ValueError:
        if not text or "\n" in text:
            raise KeyError(f"{path} holds no key") from None
        return text
    if not isinstance(data, dict):
        return text
    for entry in data.get("keys", []):
        if isinstance(entry, dict) and entry.get("tenant_id") == tenant_id and entry.get("api_key"):
            return str(entry["api_key"])
    raise KeyError(f"no admin key for tenant {tenant_id!r} in {path}")
