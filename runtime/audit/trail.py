"""The gateway's one handle on auditing: the log and the pseudonym keys, opened together.

Per turn the gateway asks ``pseudonyms`` for the user's and the session's pseudonyms
(the raw ids go no further), builds an ``AuditRecord`` and calls ``append``; at shutdown
``aclose``. The log directory and the key file are separate on purpose: the log may be
exported or shipped whole, the keys never.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.audit.log import AuditLog, AuditLogOptions
from runtime.audit.paths import default_keys_file, default_log_dir
from runtime.audit.pseudonyms import PseudonymKeys
from runtime.audit.record import AuditRecord


@dataclass(frozen=True, slots=True)
class Pseudonyms:
    """A turn's user and session as the log holds them (empty when unknown)."""

    user: str
    session: str


class AuditTrail:
    """An open audit log with its key store."""

    def __init__(self, log: AuditLog, keys: PseudonymKeys) -> None:
        self.log = log
        self.keys = keys

    @classmethod
    def open(
        cls,
        directory: Path | None = None,
        *,
        keys_file: Path | None = None,
        options: AuditLogOptions | None = None,
    ) -> AuditTrail:
        """Open (or create) the log in ``directory`` and the key store in ``keys_file``
        (defaults: ``$WAYBILL_DATA_DIR/audit`` and ``$WAYBILL_DATA_DIR/audit-keys/``)."""
        keys = PseudonymKeys(keys_file or default_keys_file())
        try:
            log = AuditLog(directory or default_log_dir(), options=options)
        except BaseException:
            keys.close()
            raise
        return cls(log, keys)

    def pseudonyms(self, tenant_id: str, user_id: str, session_id: str = "") -> Pseudonyms:
        """The pseudonyms of ``user_id`` and ``session_id`` (empty ids give empty ones)."""
        if not user_id:
            return Pseudonyms("", "")
        user = self.keys.user(tenant_id, user_id)
        session = self.keys.session(tenant_id, user_id, session_id) if session_id else ""
        return Pseudonyms(user, session)

    def append(self, record: AuditRecord) -> None:
        """Queue the turn's record (see ``AuditLog.append``)."""
        self.log.append(record)

    def close(self) -> None:
        """Write what is queued, sync, close both stores."""
        try:
            self.log.close()
        finally:
            self.keys.close()

    async def aclose(self) -> None:
        """``close`` off the event loop."""
        try:
            await self.log.aclose()
        finally:
            self.keys.close()
