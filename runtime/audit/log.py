"""The writer the gateway appends to.

``append`` checks nothing but the backlog, serialises the record (already validated when it
was built) and queues it: a few microseconds on the caller's thread, no I/O. One writer
thread takes everything queued, numbers and chains it, writes it with one ``write`` and one
``fdatasync`` (group commit: the more turns arrive during a sync, the bigger the next
group), and rewrites the head anchor at most once a second. ``flush`` waits until what was
appended before it is on disk; records still queued when the process dies are lost (at most
one group: a few milliseconds of turns).

One writer per directory (an exclusive ``flock``); each gateway replica keeps its own
directory and chain. On open, a torn last line (a crash in the middle of a write: never
synced, never acknowledged, never in the head anchor) is cut off and kept under ``torn/``
for inspection, and the chain resumes from the last complete record. A log that ends before
its head anchor (records removed from the end) is refused: ``AuditIntegrityError``.

When a record's UTC day is after the open segment's, that segment is synced, closed and
sealed in the checkpoint, and the next one starts from its last hash. A record dated before
the open segment's day (a clock step back) goes to the open segment: segments never reopen.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from runtime.audit.chain import encode_line, link
from runtime.audit.record import AuditRecord, canonical
from runtime.audit.segments import (
    TORN_DIR,
    WRITER_LOCK,
    Mark,
    Sealed,
    first_line,
    fsync_directory,
    last_complete_line,
    read_checkpoint,
    read_retention,
    segment_day,
    segment_files,
    segment_name,
    write_checkpoint,
)

_log = logging.getLogger("waybill.audit")


class AuditError(RuntimeError):
    """The audit log cannot take the record."""


class AuditBusyError(AuditError):
    """Another writer holds the directory."""


class AuditIntegrityError(AuditError):
    """The log on disk is not one the writer may continue (run ``waybill audit verify``)."""


class AuditBacklogError(AuditError):
    """Too many records wait to be written (the disk is stalled or too slow)."""


class AuditClosedError(AuditError):
    """The log was closed, or its writer failed (the cause is chained)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditLogOptions:
    """How the writer batches and syncs."""

    max_backlog: int = 100_000
    """Records that may wait to be written; ``append`` raises AuditBacklogError beyond."""
    max_group: int = 8192
    """Most records written by one write and one fdatasync."""
    head_every_s: float = 1.0
    """Least time between two rewrites of the head anchor (after a sync)."""
    sync: bool = True
    """fdatasync each group; off only where durability does not matter (some benchmarks)."""


class _Flush:
    __slots__ = ("done", "error", "seq")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.seq = 0


_STOP = object()


class AuditLog:
    """An open audit log directory: ``append`` per turn, ``close`` (or ``aclose``) at the end."""

    def __init__(
        self,
        directory: Path,
        *,
        options: AuditLogOptions | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self._options = options or AuditLogOptions()
        self._monotonic = monotonic
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise AuditBusyError(f"another writer holds {directory}") from None
        try:
            self._resume()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

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
        """Wait until every record appended before is on disk; the last seq written.
        Blocks: from a coroutine use ``aflush``."""
        if self._closed:
            return self._last.seq
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
        """Write what is queued, sync, anchor the head, release the directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"the audit writer did not finish within {timeout_s} s")
        os.close(self._lock_fd)
        if self._failure is not None:
            raise AuditClosedError("the audit writer failed") from self._failure

    async def aclose(self, timeout_s: float | None = 30.0) -> None:
        """``close`` off the event loop."""
        await asyncio.to_thread(self.close, timeout_s)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def last_seq(self) -> int:
        """The seq of the last record written (not necessarily synced yet)."""
        return self._last.seq

    # Opening.

    def _resume(self) -> None:
        self._checkpoint = read_checkpoint(self.directory)
        retention = read_retention(self.directory)
        self._last = retention.base
        self._segment: BinaryIO | None = None
        self._day: date | None = None
        self._first_seq = 0
        kept = [p for p in segment_files(self.directory) if p.name not in retention.removed]
        while kept:
            path = kept[-1]
            line, end, size = last_complete_line(path)
            if end < size:
                self._cut_torn_tail(path, end, size)
            if line is None and end > 0:
                raise AuditIntegrityError(f"{path.name}: the last complete line is not a record")
            if line is None:
                # Created, then the process died before its first record reached the disk.
                path.unlink()
                fsync_directory(self.directory)
                kept.pop()
                continue
            if not line.intact():
                raise AuditIntegrityError(f"{path.name}: the last record does not match its hash")
            first = first_line(path)
            self._last = Mark(line.seq, line.hash, path.name)
            self._day = segment_day(path.name)
            self._first_seq = first.seq if first is not None else line.seq
            break
        head = self._checkpoint.head
        if head is not None and head.seq > self._last.seq:
            raise AuditIntegrityError(
                f"the log ends at seq {self._last.seq} but its head anchor is seq {head.seq}:"
                " records were removed from the end (run `waybill audit verify`)"
            )

    def _cut_torn_tail(self, path: Path, end: int, size: int) -> None:
        torn = self.directory / TORN_DIR
        torn.mkdir(exist_ok=True)
        with path.open("r+b") as f:
            f.seek(end)
            (torn / f"{path.name}.{end}").write_bytes(f.read(size - end))
            f.truncate(end)
            os.fsync(f.fileno())
        _log.warning(
            "audit segment %s ended in a torn line (a crash during a write): %d bytes cut"
            " and kept under %s/",
            path.name,
            size - end,
            TORN_DIR,
        )

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
                stop = self._write_group(group, pending)
                now = self._monotonic()
                if stop or now >= head_due:
                    self._anchor_head()
                    head_due = now + self._options.head_every_s
                for waiter in pending:
                    waiter.seq = self._last.seq
                    waiter.done.set()
                pending.clear()
        except BaseException as exc:
            self._fail(exc, pending)
        finally:
            if self._segment is not None:
                self._segment.close()
                self._segment = None

    def _write_group(self, group: list[object], pending: list[_Flush]) -> bool:
        """Chain and write the records of ``group``; whether it asked to stop."""
        stop = False
        lines: list[bytes] = []
        for item in group:
            if isinstance(item, tuple):
                day: date = item[0]
                body: bytes = item[1]
                target = day if self._day is None or day > self._day else self._day
                if self._segment is None or target != self._day:
                    self._write(lines)
                    lines = []
                    self._roll(target)
                seq = self._last.seq + 1
                digest = link(self._last.hash, seq, body)
                lines.append(encode_line(seq, self._last.hash, digest, body))
                self._last = Mark(seq, digest, self._last.segment)
            elif isinstance(item, _Flush):
                pending.append(item)
            elif item is _STOP:
                stop = True
        self._write(lines)
        return stop

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

    def _write(self, lines: list[bytes]) -> None:
        if not lines or self._segment is None:
            return
        self._segment.write(b"".join(lines))
        self._segment.flush()
        if self._options.sync:
            os.fdatasync(self._segment.fileno())

    def _roll(self, day: date) -> None:
        """Seal the open segment (if any) and open ``day``'s."""
        name = segment_name(day)
        if self._segment is not None:
            self._segment.close()
            self._segment = None
        if self._day is not None and self._last.segment and self._last.segment != name:
            self._checkpoint.sealed[self._last.segment] = Sealed(self._first_seq, self._last)
            write_checkpoint(self.directory, self._checkpoint)
        path = self.directory / name
        created = not path.exists()
        self._segment = path.open("ab")
        if created:
            fsync_directory(self.directory)
        if self._last.segment != name:
            self._first_seq = self._last.seq + 1
            self._last = Mark(self._last.seq, self._last.hash, name)
        self._day = day

    def _anchor_head(self) -> None:
        if self._last.seq == 0 or self._checkpoint.head == self._last:
            return
        self._checkpoint.head = self._last
        write_checkpoint(self.directory, self._checkpoint)
