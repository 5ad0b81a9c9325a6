"""Where tenants' added exemplars live: one store every router replica shares.

A store keeps each tenant's added exemplars with a global, increasing
sequence number and each AddExemplars request with the answer it got, so a
retry (on any replica, after any restart) gets the first answer. The
classifier checks the shipped exemplars itself; the store checks a request
against the tenant's stored exemplars, inside the write, so two replicas
adding at once cannot both win a conflict.

Two implementations: :class:`FileExemplarStore` (the embedded default, a JSONL
file in ``$WAYBILL_DATA_DIR/router/``; :class:`MemoryExemplarStore` without a
data dir) and :class:`router.pg_store.PostgresExemplarStore` (the fleet).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from router.exemplars import Exemplar
from router.intents import intent_name, parse_intent
from router.normalize import dedup_key

log = logging.getLogger("waybill.router")


@dataclass(frozen=True, slots=True)
class StoredExemplar:
    """One added exemplar as the store holds it."""

    sequence: int
    """Global, increasing: a replica that has applied sequence n has every row up to n."""
    tenant_id: str
    exemplar: Exemplar


@dataclass(frozen=True, slots=True)
class Appended:
    """A request's answer as stored (the same on every retry)."""

    added: int
    """Exemplars this request added (0 when all were known)."""
    last_sequence: int
    """The tenant's last sequence once the request was done (0: the tenant has none)."""
    tenant_count: int
    """The tenant's added exemplars once the request was done."""


class RequestIdReused(Exception):
    """The tenant used this request id before with other exemplars."""


class StoredConflict(Exception):
    """``exemplars[position]`` is already one of the tenant's with another label."""

    def __init__(self, position: int, existing: int) -> None:
        super().__init__(f"exemplar {position} conflicts with a stored one")
        self.position = position
        self.existing = existing


class StoreUnavailable(Exception):
    """The store cannot be reached or written; nothing was changed."""


class ExemplarStore(Protocol):
    """What the classifier needs from a store (all methods may raise StoreUnavailable)."""

    async def append(
        self, tenant_id: str, exemplars: Sequence[Exemplar], *, request_id: str, fingerprint: str
    ) -> Appended:
        """Add those of ``exemplars`` the tenant lacks, durably, in one step.

        Idempotent by ``(tenant_id, request_id)``: the same id with the same
        ``fingerprint`` returns the first answer, with another one raises
        RequestIdReused. An exemplar the tenant has with another label raises
        StoredConflict and adds nothing.
        """
        ...

    async def load_all(self) -> dict[str, list[StoredExemplar]]:
        """Every tenant's exemplars, in sequence order."""
        ...

    async def changes_since(self, sequence: int) -> list[StoredExemplar]:
        """Rows after ``sequence``, in sequence order."""
        ...

    async def wait_for_change(self, timeout_s: float) -> None:
        """Return when another writer may have added rows, or after ``timeout_s``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def by_tenant(rows: Sequence[StoredExemplar]) -> dict[str, list[StoredExemplar]]:
    """``rows`` grouped by tenant, each group in the order given."""
    grouped: dict[str, list[StoredExemplar]] = {}
    for row in rows:
        grouped.setdefault(row.tenant_id, []).append(row)
    return grouped


def new_for_tenant(
    exemplars: Sequence[Exemplar], known: Mapping[str, int]
) -> list[tuple[str, Exemplar]]:
    """``(dedup_key, exemplar)`` of those not in ``known``; StoredConflict on another label."""
    new: list[tuple[str, Exemplar]] = []
    pending: dict[str, int] = {}
    for position, item in enumerate(exemplars):
        key = dedup_key(item.text)
        existing = known.get(key, pending.get(key))
        if existing is None:
            pending[key] = item.label
            new.append((key, item))
        elif existing != item.label:
            raise StoredConflict(position, existing)
    return new


@dataclass(slots=True)
class _Request:
    fingerprint: str
    answer: Appended


class MemoryExemplarStore:
    """A store in this process only (no data dir: tests, throwaway runs)."""

    def __init__(self) -> None:
        self._rows: list[StoredExemplar] = []
        self._keys: dict[str, dict[str, int]] = {}
        self._requests: dict[tuple[str, str], _Request] = {}
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    @property
    def last_sequence(self) -> int:
        """The highest sequence held (0 when empty)."""
        return self._rows[-1].sequence if self._rows else 0

    async def append(
        self, tenant_id: str, exemplars: Sequence[Exemplar], *, request_id: str, fingerprint: str
    ) -> Appended:
        async with self._lock:
            known = self._requests.get((tenant_id, request_id))
            if known is not None:
                if known.fingerprint != fingerprint:
                    raise RequestIdReused(request_id)
                return known.answer
            keys = self._keys.setdefault(tenant_id, {})
            new = new_for_tenant(exemplars, keys)
            start = self.last_sequence
            rows = [
                StoredExemplar(start + i, tenant_id, Exemplar(text=e.text.strip(), label=e.label))
                for i, (_, e) in enumerate(new, 1)
            ]
            tenant_rows = [r for r in self._rows if r.tenant_id == tenant_id]
            last = rows[-1].sequence if rows else (tenant_rows[-1].sequence if tenant_rows else 0)
            answer = Appended(
                added=len(rows), last_sequence=last, tenant_count=len(keys) + len(rows)
            )
            await self._persist(tenant_id, rows, request_id, fingerprint, answer)
            self._rows.extend(rows)
            keys.update((k, e.label) for k, e in new)
            self._requests[(tenant_id, request_id)] = _Request(fingerprint, answer)
            self._changed.set()
            return answer

    async def _persist(
        self,
        tenant_id: str,
        rows: Sequence[StoredExemplar],
        request_id: str,
        fingerprint: str,
        answer: Appended,
    ) -> None:
        """Make the request durable before it is answered (nothing to do in memory)."""

    async def load_all(self) -> dict[str, list[StoredExemplar]]:
        return by_tenant(self._rows)

    async def changes_since(self, sequence: int) -> list[StoredExemplar]:
        return [r for r in self._rows if r.sequence > sequence]

    async def wait_for_change(self, timeout_s: float) -> None:
        # Only this process writes: its own appends are already applied by the
        # writer, so this is the poll's pace and nothing more.
        try:
            async with asyncio.timeout(timeout_s):
                await self._changed.wait()
        except TimeoutError:
            return
        finally:
            self._changed.clear()

    async def close(self) -> None:
        return None


class FileExemplarStore(MemoryExemplarStore):
    """The embedded store: a JSONL file, fsynced before a request is answered.

    Lines are ``{"seq", "tenant_id", "request_id", "text", "intent"}`` per
    exemplar and ``{"request": ...}`` per request with its answer, written in
    one append. Lines of the single-tenant format (no ``seq``/``tenant_id``)
    belonged to no tenant and are not served to any: they are skipped with one
    warning (re-add them with ``waybill router add-exemplars --tenant``). A
    torn last line (a crash mid-write) is dropped; any other bad line is an
    error that stops the start.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._read()

    def _read(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_text(encoding="utf-8")
        lines = raw.split("\n")
        legacy = 0
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                if number == len(lines):  # no newline after it: a write cut short
                    log.warning("dropped a torn last line of the exemplar store")
                    kept = raw[: len(raw) - len(line)].encode("utf-8")
                    with self.path.open("r+b") as fh:  # the next append starts a clean line
                        fh.truncate(len(kept))
                    continue
                raise ValueError(f"{self.path}:{number}: not JSON") from None
            if not isinstance(row, dict):
                raise ValueError(f"{self.path}:{number}: expected an object")
            if "request" in row:
                request = row["request"]
                answer = Appended(
                    int(request["added"]),
                    int(request["last_sequence"]),
                    int(request["tenant_count"]),
                )
                key = (str(request["tenant_id"]), str(request["request_id"]))
                self._requests[key] = _Request(str(request["fingerprint"]), answer)
            elif "seq" not in row or "tenant_id" not in row:
                legacy += 1
            else:
                exemplar = Exemplar(text=str(row["text"]), label=parse_intent(str(row["intent"])))
                stored = StoredExemplar(int(row["seq"]), str(row["tenant_id"]), exemplar)
                self._rows.append(stored)
                self._keys.setdefault(stored.tenant_id, {})[dedup_key(exemplar.text)] = (
                    exemplar.label
                )
        if legacy:
            log.warning(
                "exemplar store lines without a tenant are not served to any tenant",
                extra={"lines": legacy, "path": str(self.path)},
            )

    async def _persist(
        self,
        tenant_id: str,
        rows: Sequence[StoredExemplar],
        request_id: str,
        fingerprint: str,
        answer: Appended,
    ) -> None:
        lines = [
            {
                "seq": r.sequence,
                "tenant_id": tenant_id,
                "request_id": request_id,
                "text": r.exemplar.text,
                "intent": intent_name(r.exemplar.label),
            }
            for r in rows
        ]
        request = {
            "tenant_id": tenant_id,
            "request_id": request_id,
            "fingerprint": fingerprint,
            "added": answer.added,
            "last_sequence": answer.last_sequence,
            "tenant_count": answer.tenant_count,
        }
        lines.append({"request": request})
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        try:
            await asyncio.to_thread(_append_durably, self.path, text)
        except OSError as exc:
            raise StoreUnavailable(exc.strerror or type(exc).__name__) from exc


def _append_durably(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
