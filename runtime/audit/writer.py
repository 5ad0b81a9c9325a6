"""What every audit log writer shares: a cheap ``append``, one thread, group commits.

``append`` checks nothing but the backlog, serialises the record (validated when it was
built) and queues it: a few microseconds on the caller's thread, no I/O. One writer thread
takes everything queued and hands it to the store in one group (one write and one sync for
files, one transaction for PostgreSQL): the more turns arrive during a sync, the bigger
the next group. ``flush`` waits until what was appended before it is durable; records still
queued when the process dies are lost (at most one group: a few milliseconds of turns).
A store that fails makes every later ``append`` and ``flush`` raise AuditClosedError.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Self

from runtime.audit.record import AuditRecord, canonical

_log = logging.getLogger("waybill.audit")

Entry = tuple[date, bytes]
"""A queued record: its UTC day and canonical bytes."""


class AuditError(RuntimeError):
    """The audit log cannot take the record."""


class AuditBusyError(AuditError):
    """Another writer holds the log."""


class AuditIntegrityError(AuditError):
    """The log is not one the writer may continue (run ``waybill audit verify``)."""


class AuditBacklogError(AuditError):
    """Too many records wait to be written (the store is stalled or too slow)."""


class AuditClosedError(AuditError):
    """The log was closed, or its writer failed (the cause is chained)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditLogOptions:
    """How the writer batches and syncs."""

    max_backlog: int = 100_000
    """Records that may wait to be written; ``append`` raises AuditBacklogError beyond."""
    max_group: int = 8192
    """Most records written by one group commit."""
    head_every_s: float = 1.0
    """Least time between two rewrites of the head anchor (after a sync)."""
    sync: bool = True
    """fdatasync each group (files); off only where durability does not matter."""


class _Flush:
    __slots__ = ("done", "error", "seq")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.seq = 0


_STOP = object()


class GroupWriter:
    """The caller's side and the writer thread; a store implements the hooks."""

    def __init__(
        self, *, options: AuditLogOptions | None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._options = options or AuditLogOptions()
        self._monotonic = monotonic
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)

    def _start(self) -> None:
        """Start the writer thread (once the store is open)."""
        self._thread.start()

    # Hooks.

    @property
    def last_seq(self) -> int:
        """The seq of the last record written (not necessarily synced yet)."""
        raise NotImplementedError

    def _write_entries(self, entries: list[Entry]) -> None:
        """Chain and store ``entries`` durably (writer thread)."""
        raise NotImplementedError

    def _anchor(self) -> None:
        """Record the head where a verifier finds it (writer thread, at most every
        ``head_every_s`` and at the end)."""

    def _thread_exit(self) -> None:
        """Release what the writer thread holds (writer thread, last)."""

    def _release(self) -> None:
        """Release what the log holds (caller, at close, after the thread ended)."""

    # The caller's side.

    def append(self, record: AuditRecord) -> None:
        """Queue the record for writing; raises AuditClosedError once closed or failed,
        AuditBacklogError when too many records wait. Does no I/O."""
        if self._closed or self._failure is not None:
            raise AuditClosedError("the audit log is closed") from self._failure
        if self._queue.qsize() >= self._options.max_backlog:
            raise AuditBacklogError(f"{self._options.max_backlog} records wait to be written")
        self._queue.put((record.day, canonical(record)))

    def flush(self, timeout_s: float | None = None) -> int:
        """Wait until every record appended before is durable; the last seq written.
        Blocks: from a coroutine use ``aflush``."""
        if self._closed:
            return self.last_seq
        waiter = _Flush()
        self._queue.put(waiter)
        if not waiter.done.wait(timeout_s):
            raise TimeoutError(f"the audit log did not sync within {timeout_s} s")
        if waiter.error is not None:
            raise AuditClosedError("the audit writer failed") from waiter.error
        return waiter.seq

    async def aflush(self, timeout_s: float | None = None) -> int:
        """``flush`` off the event loop."""
        return await asyncio.to_thread(self.flush, timeout_s)

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Write what is queued, sync, anchor the head, release the log. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"the audit writer did not finish within {timeout_s} s")
        self._release()
        if self._failure is not None:
            raise AuditClosedError("the audit writer failed") from self._failure

    async def aclose(self, timeout_s: float | None = 30.0) -> None:
        """``close`` off the event loop."""
        await asyncio.to_thread(self.close, timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # The writer thread.

    def _run(self) -> None:
        pending: list[_Flush] = []
        head_due = self._monotonic()
        try:
            stop = False
            while not stop:
                group = [self._queue.get()]
                while len(group) < self._options.max_group:
                    try:
                        group.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                entries: list[Entry] = []
                for item in group:
                    if isinstance(item, tuple):
                        entries.append(item)
                    elif isinstance(item, _Flush):
                        pending.append(item)
                    elif item is _STOP:
                        stop = True
                if entries:
                    self._write_entries(entries)
                now = self._monotonic()
                if stop or now >= head_due:
                    self._anchor()
                    head_due = now + self._options.head_every_s
                for waiter in pending:
                    waiter.seq = self.last_seq
                    waiter.done.set()
                pending.clear()
        except BaseException as exc:
            self._fail(exc, pending)
        finally:
            self._thread_exit()

    def _fail(self, exc: BaseException, pending: list[_Flush]) -> None:
        self._failure = exc
        _log.exception("the audit writer failed; appends now raise")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Flush):
                pending.append(item)
        for waiter in pending:
            waiter.error = exc
            waiter.done.set()
