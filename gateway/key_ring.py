"""The API keys one gateway replica accepts, kept in step with the store file.

The replica reads the store at start (a missing or malformed store fails the
start) and then looks at the file's identity (inode, mtime, size) at most once
every ``refresh_s`` seconds, on the first authentication after that interval;
a changed file is read again. So a key revoked or rotated in the store is
refused (or accepted) by every replica for every call that starts more than
``refresh_s`` after the store was written (``WAYBILL_KEYS_REFRESH_S``, 2 s by
default). The check is a ``stat`` call, cheap enough for the call path, and
needs no background task. A store that cannot be read or parsed keeps the keys
read last (a half-updated Secret must not lock every caller out) and says so
in the log; the next check tries again.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from gateway.key_store import KeyRecord, KeyStoreError, digest, read, split_key
from runtime.errors import Unauthenticated
from runtime.principal import Principal

log = logging.getLogger("waybill.gateway.keys")
_NO_MATCH = "0" * 64


def invalid_credential() -> Unauthenticated:
    """The one answer for a credential that is not valid, whatever part failed."""
    return Unauthenticated("the credential is not valid", reason="INVALID_CREDENTIAL")


def revoked_credential() -> Unauthenticated:
    """The answer for a genuine key that was revoked."""
    return Unauthenticated("the credential was revoked", reason="REVOKED_CREDENTIAL")


def expired_credential() -> Unauthenticated:
    """The answer for a genuine credential past its expiry."""
    return Unauthenticated("the credential has expired", reason="EXPIRED_CREDENTIAL")


class KeyRing:
    """API key -> principal, for the keys that are neither revoked nor expired."""

    def __init__(
        self,
        records: Iterable[KeyRecord] = (),
        *,
        path: Path | None = None,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._by_id = {r.key_id: r for r in records}
        self._path = path
        self._refresh_s = refresh_s
        self._clock = clock
        self._monotonic = monotonic
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> KeyRing:
        """The keys of the store at ``path``; OSError or KeyStoreError if unusable."""
        ring = cls(path=path, refresh_s=refresh_s, clock=clock, monotonic=monotonic)
        ring._reload()
        return ring

    def _reload(self) -> None:
        assert self._path is not None
        info = self._path.stat()
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._by_id = {r.key_id: r for r in read(self._path)}
            self._stamp = stamp
            log.info("api keys loaded", extra={"keys": len(self._by_id)})

    def refresh(self) -> None:
        """Read the store again if it changed and the refresh interval has passed."""
        if self._path is None:
            return
        now = self._monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._refresh_s
        try:
            self._reload()
        except (OSError, KeyStoreError) as exc:
            log.warning("api key store unreadable; keeping the keys read last: %s", exc)

    def principal(self, presented: str) -> Principal:
        """The principal of a valid key; UNAUTHENTICATED otherwise.

        The id finds the record; the digests are compared in constant time, and a
        key whose id is unknown is compared too, so the time taken does not say
        which part was wrong. Only a caller who holds the secret learns that the
        key expired or was revoked.
        """
        self.refresh()
        parts = split_key(presented)
        record = self._by_id.get(parts[0]) if parts is not None else None
        matches = hmac.compare_digest(
            digest(presented), record.sha256 if record is not None else _NO_MATCH
        )
        if record is None or not matches:
            raise invalid_credential()
        state = record.state(self._clock())
        if state == "expired":
            raise expired_credential()
        if state == "revoked":
            raise revoked_credential()
        return record.principal()
