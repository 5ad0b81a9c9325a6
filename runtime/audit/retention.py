"""Retention: whole segments older than N days are deleted, and the chain stays verifiable.

Before deleting, ``prune`` writes the retention manifest: each removed segment's seq range
and last hash, and the base (the last removed record's seq and hash), from which the kept
chain must go on. A verifier then starts at the base, so a pruned head passes while a
segment removed from the middle still breaks the sequence (and the checkpoint names it).

The newest segment is never pruned (the writer may have it open), nor anything after a
segment kept. Pruning refuses when the last removed segment does not join the first kept
one (same hash, next seq): anchoring a broken chain would hide the break.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from runtime.audit.segments import (
    PRUNE_LOCK,
    Mark,
    Sealed,
    first_line,
    fsync_directory,
    kept_segments,
    last_complete_line,
    read_retention,
    segment_day,
    write_retention,
)


class PruneError(RuntimeError):
    """Pruning would break verification (the chain is broken at the cut), or is running."""


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What ``prune`` removed (or, dry, would remove)."""

    removed: tuple[str, ...]
    """Segment file names, oldest first."""
    base: Mark
    """Where the kept chain starts now."""
    cutoff: date
    """Segments of days before this one were candidates."""


def prune(
    directory: Path,
    *,
    older_than_days: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete the segments of UTC days more than ``older_than_days`` before ``now``."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be >= 0")
    cutoff = (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=older_than_days)
    fd = os.open(directory / PRUNE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PruneError(f"another prune is running in {directory}") from None
        return _prune(directory, cutoff, dry_run=dry_run)
    finally:
        os.close(fd)


def _prune(directory: Path, cutoff: date, *, dry_run: bool) -> PruneResult:
    retention = read_retention(directory)
    segments = kept_segments(directory, retention)
    doomed = [p for p in segments[:-1] if segment_day(p.name) < cutoff]
    if not doomed:
        return PruneResult((), retention.base, cutoff)
    removed: dict[str, Sealed] = {}
    for path in doomed:
        first = first_line(path)
        last, end, _ = last_complete_line(path)
        if first is None or last is None or end == 0:
            raise PruneError(f"{path.name} holds no complete record: verify the log first")
        removed[path.name] = Sealed(first.seq, Mark(last.seq, last.hash, path.name))
    base = removed[doomed[-1].name].last
    kept = first_line(segments[len(doomed)])
    if kept is None or kept.seq != base.seq + 1 or kept.prev != base.hash:
        raise PruneError(
            f"{segments[len(doomed)].name} does not continue {doomed[-1].name}: the chain is"
            " broken there; run `waybill audit verify` before pruning"
        )
    if dry_run:
        return PruneResult(tuple(removed), base, cutoff)
    retention.removed.update(removed)
    retention.base = base
    # The manifest first: a crash before the deletions leaves files verify already skips.
    write_retention(directory, retention)
    for path in doomed:
        path.unlink()
    fsync_directory(directory)
    return PruneResult(tuple(removed), base, cutoff)
