"""The audit log in a directory of day segments: the writer the gateway appends to.

The caller's side and the group commits are ``writer.GroupWriter``'s; here each group is
one ``write`` and one ``fdatasync`` of the open segment, and the head anchor is rewritten at
most once a second.

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

import fcntl
import logging
import os
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import BinaryIO

from runtime.audit.chain import encode_line, link
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
from runtime.audit.writer import (
    AuditBacklogError,
    AuditBusyError,
    AuditClosedError,
    AuditError,
    AuditIntegrityError,
    AuditLogOptions,
    Entry,
    GroupWriter,
)

__all__ = [
    "AuditBacklogError",
    "AuditBusyError",
    "AuditClosedError",
    "AuditError",
    "AuditIntegrityError",
    "AuditLog",
    "AuditLogOptions",
]

_log = logging.getLogger("waybill.audit")


class AuditLog(GroupWriter):
    """An open audit log directory: ``append`` per turn, ``close`` (or ``aclose``) at the end."""

    def __init__(
        self,
        directory: Path,
        *,
        options: AuditLogOptions | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(options=options, monotonic=monotonic)
        self.directory = directory
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
        self._start()

    @property
    def last_seq(self) -> int:
        """The seq of the last record written (not necessarily synced yet)."""
        return self._last.seq

    def _release(self) -> None:
        os.close(self._lock_fd)

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

    def _write_entries(self, entries: list[Entry]) -> None:
        lines: list[bytes] = []
        for day, body in entries:
            target = day if self._day is None or day > self._day else self._day
            if self._segment is None or target != self._day:
                self._write(lines)
                lines = []
                self._roll(target)
            seq = self._last.seq + 1
            digest = link(self._last.hash, seq, body)
            lines.append(encode_line(seq, self._last.hash, digest, body))
            self._last = Mark(seq, digest, self._last.segment)
        self._write(lines)

    def _thread_exit(self) -> None:
        if self._segment is not None:
            self._segment.close()
            self._segment = None

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

    def _anchor(self) -> None:
        if self._last.seq == 0 or self._checkpoint.head == self._last:
            return
        self._checkpoint.head = self._last
        write_checkpoint(self.directory, self._checkpoint)
