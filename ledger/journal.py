"""An append-only journal file with group commit.

Records are JSON lines. Callers append a record (in memory, at once) and then await
:meth:`Journal.synced`: one writer task takes everything appended so far, writes it
with one ``write`` and one ``fdatasync``, then wakes every caller whose record is in
that batch. Concurrent operations thus share one disk flush, and none is acknowledged
before its record is on disk. A record appended with ``urgent=False`` (one no caller
waits on) does not start a flush of its own: it goes with the next flush, which an
urgent record or a :meth:`Journal.synced` starts, or at the latest ``LAZY_FLUSH_S``
later; at a turn's pace that halves the flushes, as its hold rides with a commit.

Where the flush happens adapts to the disk: while flushes take under ``INLINE_FLUSH_S``
they run on the event loop (a thread hop would cost more than the flush, and its GIL
handover adds milliseconds under load); once one takes longer, the next runs in a
thread, so the loop keeps taking operations meanwhile and the next batch grows.

Reading back keeps every complete line; a last line without its newline (a write torn
by a crash, never acknowledged) is cut off. A damaged line before the end is not a
torn write, and reading fails naming it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("waybill.ledger.journal")

INLINE_FLUSH_S = 0.001
"""A flush faster than this keeps the next one on the event loop (see the docstring)."""
LAZY_FLUSH_S = 0.05
"""Longest a record appended with ``urgent=False`` waits for a flush to go with."""


class JournalError(RuntimeError):
    """The journal cannot be read or written."""


def read(path: Path, *, repair: bool = True) -> list[dict[str, Any]]:
    """Every complete record of the journal at ``path`` (none if it does not exist); a
    torn last line is cut from the file (``repair``), or only skipped: a reader beside the
    running ledger must not cut the line it is writing."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    end = raw.rfind(b"\n") + 1
    if end < len(raw) and repair:
        log.warning("journal: torn last line cut", extra={"bytes": len(raw) - end})
        with path.open("r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    records: list[dict[str, Any]] = []
    for number, line in enumerate(raw[:end].splitlines(), start=1):
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise JournalError(f"{path}: line {number} is damaged ({exc})") from None
    return records


class Journal:
    """The writing end: append, then await :meth:`synced`."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._fd = -1
        self._pending: list[bytes] = []
        self._appended = 0
        self._durable = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._wake = asyncio.Event()
        self._failed: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._lazy: asyncio.TimerHandle | None = None
        self.batches = 0
        """Flushes so far (records per flush = appended / batches)."""
        self.inline_flushes = 0
        """Flushes that took under ``INLINE_FLUSH_S`` (so the next ran on the loop)."""

    def start(self) -> None:
        """Open the file for appending and start the writer task."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._task = asyncio.get_running_loop().create_task(self._writer(), name="ledger-journal")

    @property
    def appended(self) -> int:
        """Records appended so far."""
        return self._appended

    def append(self, record: dict[str, Any], *, urgent: bool = True) -> None:
        """Queue ``record`` for the next flush (raises if the journal failed); with
        ``urgent`` false, no flush starts for it alone before ``LAZY_FLUSH_S``."""
        if self._failed is not None:
            raise JournalError(f"the journal failed: {self._failed}")
        self._pending.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        self._appended += 1
        if urgent:
            self._wake.set()
        elif self._lazy is None and self._task is not None:
            self._lazy = asyncio.get_running_loop().call_later(LAZY_FLUSH_S, self._wake.set)

    async def synced(self) -> None:
        """Return once every record appended before this call is on disk."""
        target = self._appended
        if self._durable >= target:
            if self._failed is not None:
                raise JournalError(f"the journal failed: {self._failed}")
            return
        self._wake.set()  # the records waited on may all have been appended lazily
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    async def close(self) -> None:
        """Flush what is pending, stop the writer and close the file."""
        if self._task is not None:
            if self._failed is None:
                await self.synced()
            if self._lazy is not None:
                self._lazy.cancel()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write(self, data: bytes) -> float:
        """Write and flush ``data``; the seconds it took."""
        started = time.perf_counter()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._fsync:
            os.fdatasync(self._fd)
        return time.perf_counter() - started

    async def _writer(self) -> None:
        last = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._lazy is not None:  # whatever it waited for goes now
                self._lazy.cancel()
                self._lazy = None
            while self._pending:
                batch, self._pending = self._pending, []
                upto = self._appended
                try:
                    data = b"".join(batch)
                    if last < INLINE_FLUSH_S:
                        last = self._write(data)
                    else:
                        last = await asyncio.to_thread(self._write, data)
                except OSError as exc:
                    log.error("journal write failed; the ledger refuses writes", exc_info=True)
                    self._failed = exc
                    self._settle(upto, JournalError(f"the journal failed: {exc}"))
                    return
                self.batches += 1
                self.inline_flushes += last < INLINE_FLUSH_S
                self._durable = upto
                self._settle(upto, None)

    def _settle(self, upto: int, error: BaseException | None) -> None:
        while self._waiters and (error is not None or self._waiters[0][0] <= upto):
            _, future = self._waiters.popleft()
            if future.done():  # the caller went away (cancelled)
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
