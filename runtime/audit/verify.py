"""Verification: the first altered, removed or reordered record, named by file, line and seq.

The verifier streams the kept segments in order from the retention base (or the genesis),
and for each line checks, in this order:

1. the line's own hash over its stored bytes (``prev``, ``seq``, canonical record): a
   mismatch, or a line that is not a record line, is ``altered``;
2. the seq: one more than the last. Higher is ``removed`` (the missing range is named),
   unless a missing seq turns up further on, which makes it ``reordered``; lower is
   ``reordered`` too (a record moved back, or repeated);
3. the link: ``prev`` equals the previous record's hash. With the seq in order, a mismatch
   means the previous record was rewritten with a fresh hash (``altered``, that record
   named) or, on the first kept record, that the chain does not continue the retention base.

Then the anchors: a segment the checkpoint sealed that is missing (and not removed by
retention) is ``removed``; a sealed segment whose last record differs from the checkpoint,
or a log that stops before the head anchor, is ``removed`` (records cut from the end); a
different hash at the head's seq is ``altered``.

A torn last line (no newline at the end of the newest segment) is what a crash during a
write leaves: it was never synced nor anchored, the writer cuts it on its next open, and it
is reported apart (``VerifyResult.torn``), not as tampering. Anywhere else it is ``altered``.

Hashing the stored bytes (not a re-serialisation) keeps this at a few microseconds a record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from runtime.audit.chain import (
    END,
    HASH,
    HASH_AT,
    HASH_SEP_AT,
    PREFIX,
    PREV,
    PREV_AT,
    RECORD,
    RECORD_AT,
    RECORD_SEP_AT,
)
from runtime.audit.segments import (
    AnchorError,
    Mark,
    kept_segments,
    read_checkpoint,
    read_retention,
)
from runtime.progress import Progress

_PROGRESS_EVERY = 1 << 16


class Problem(StrEnum):
    """What is wrong with a record."""

    ALTERED = "altered"
    REMOVED = "removed"
    REORDERED = "reordered"
    TORN = "torn"
    """A crash's unfinished last line: reported in ``VerifyResult.torn``, never a problem."""


@dataclass(frozen=True, slots=True)
class Finding:
    """Where the log is broken, and how."""

    kind: Problem
    segment: str
    """File name of the segment (empty when the finding is about the log as a whole)."""
    line: int
    """1-based line in the segment, 0 when the finding names no line."""
    seq: int | None
    """The seq found on that line, or (for removals) the first missing seq."""
    detail: str

    def __str__(self) -> str:
        where = f"{self.segment}:{self.line}" if self.line else self.segment or "the log"
        seq = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.kind} at {where}{seq}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What verification found."""

    records: int
    """Records checked."""
    segments: int
    """Segment files read."""
    base: Mark
    """Where the kept chain starts (the genesis, or the retention base)."""
    last: Mark
    """The last good record (``base`` when there is none)."""
    problem: Finding | None = None
    """The first problem; None when the chain is intact."""
    torn: Finding | None = None
    """A torn last line left by a crash (not tampering; the writer cuts it on open)."""

    @property
    def ok(self) -> bool:
        """Whether the chain is intact (a torn last line does not count against it)."""
        return self.problem is None


class UnreadableLog(OSError):
    """The directory or its anchors cannot be read."""


@dataclass(slots=True)
class _State:
    expected: int
    prev: bytes
    prev_at: tuple[str, int]
    watch: int
    """The head anchor's seq, whose hash must match."""
    watched: bytes | None = None
    records: int = 0
    done_bytes: int = 0


def verify(directory: Path, *, progress: Progress | None = None) -> VerifyResult:
    """Verify the log in ``directory``; UnreadableLog if it is not a log directory."""
    if not directory.is_dir():
        raise UnreadableLog(f"{directory}: no such directory")
    try:
        retention = read_retention(directory)
        checkpoint = read_checkpoint(directory)
    except AnchorError as exc:
        raise UnreadableLog(str(exc)) from None
    segments = kept_segments(directory, retention)
    base = retention.base
    present = {p.name for p in segments}
    for name, sealed in sorted(checkpoint.sealed.items()):
        if name not in present and name not in retention.removed:
            return VerifyResult(
                0,
                0,
                base,
                base,
                Finding(
                    Problem.REMOVED,
                    name,
                    0,
                    sealed.first_seq,
                    f"the sealed segment (seq {sealed.first_seq}..{sealed.last.seq}) is missing",
                ),
            )
    total = sum(p.stat().st_size for p in segments)
    head = checkpoint.head
    state = _State(base.seq + 1, base.hash.encode("ascii"), ("", 0), head.seq if head else -1)
    for index, path in enumerate(segments):
        newest = index == len(segments) - 1
        found, torn = _segment(
            path, state, newest=newest, later=segments[index + 1 :], total=total, progress=progress
        )
        last = Mark(
            state.expected - 1, state.prev.decode("ascii"), state.prev_at[0] or base.segment
        )
        if found is not None:
            return VerifyResult(state.records, index + 1, base, last, found, torn)
        anchor = checkpoint.sealed.get(path.name)
        if anchor is not None and (last.seq, last.hash) != (anchor.last.seq, anchor.last.hash):
            kind = Problem.REMOVED if last.seq < anchor.last.seq else Problem.ALTERED
            finding = Finding(
                kind,
                path.name,
                state.prev_at[1],
                last.seq,
                f"the checkpoint sealed this segment at seq {anchor.last.seq}"
                f" ({anchor.last.hash[:12]}), it ends at seq {last.seq} ({last.hash[:12]})",
            )
            return VerifyResult(state.records, index + 1, base, last, finding, torn)
        if newest:
            if head is not None and head.seq > last.seq:
                finding = Finding(
                    Problem.REMOVED,
                    head.segment,
                    0,
                    last.seq + 1,
                    f"the log ends at seq {last.seq}, its head anchor is seq {head.seq}:"
                    f" records {last.seq + 1}..{head.seq} are missing",
                )
                return VerifyResult(state.records, index + 1, base, last, finding, torn)
            if (
                head is not None
                and state.watched is not None
                and state.watched.decode("ascii") != head.hash
            ):
                finding = Finding(
                    Problem.ALTERED,
                    head.segment,
                    0,
                    head.seq,
                    f"the head anchor holds another hash for seq {head.seq}: the chain up to"
                    " it was rewritten",
                )
                return VerifyResult(state.records, index + 1, base, last, finding, torn)
            return VerifyResult(state.records, index + 1, base, last, None, torn)
    if head is not None and head.seq > base.seq:
        finding = Finding(
            Problem.REMOVED,
            head.segment,
            0,
            base.seq + 1,
            f"no records, but the head anchor is seq {head.seq}",
        )
        return VerifyResult(0, 0, base, base, finding)
    return VerifyResult(0, 0, base, base)


def _segment(
    path: Path,
    state: _State,
    *,
    newest: bool,
    later: list[Path],
    total: int,
    progress: Progress | None,
) -> tuple[Finding | None, Finding | None]:
    """Check one segment, continuing ``state``; (the first problem, a torn last line)."""
    name = path.name
    sha256 = hashlib.sha256
    nl = b"\n"
    expected, prev, records = state.expected, state.prev, state.records
    prev_line = state.prev_at
    watch = state.watch
    lineno = 0
    done = state.done_bytes
    with path.open("rb") as f:
        for raw in f:
            lineno += 1
            done += len(raw)
            comma = raw.find(b",", 7)
            seqb = raw[7:comma]
            if (
                raw[:7] != PREFIX
                or raw[-2:] != END
                or comma < 0
                or raw[comma : comma + PREV_AT] != PREV
                or raw[comma + HASH_SEP_AT : comma + HASH_AT] != HASH
                or raw[comma + RECORD_SEP_AT : comma + RECORD_AT] != RECORD
                or not seqb.isdigit()
            ):
                if newest and not raw.endswith(nl) and f.read(1) == b"":
                    torn = Finding(
                        Problem.TORN,
                        name,
                        lineno,
                        None,
                        f"torn last line ({len(raw)} bytes without a newline): a crash during"
                        " a write; the writer cuts it when it next opens the log",
                    )
                    state.expected, state.prev, state.records = expected, prev, records
                    state.prev_at = prev_line
                    return None, torn
                state.expected, state.prev, state.records = expected, prev, records
                return Finding(Problem.ALTERED, name, lineno, None, "not a record line"), None
            stored_prev = raw[comma + PREV_AT : comma + HASH_SEP_AT]
            stored = raw[comma + HASH_AT : comma + RECORD_SEP_AT]
            digest = sha256(
                b"".join((stored_prev, nl, seqb, nl, raw[comma + RECORD_AT : -2]))
            ).hexdigest()
            seq = int(seqb)
            if digest.encode("ascii") != stored:
                state.expected, state.prev, state.records = expected, prev, records
                return Finding(
                    Problem.ALTERED,
                    name,
                    lineno,
                    seq,
                    "the record does not match its hash (content, seq or link edited)",
                ), None
            if seq != expected:
                state.expected, state.prev, state.records = expected, prev, records
                return _out_of_sequence(path, lineno, seq, expected, later), None
            if stored_prev != prev:
                state.expected, state.prev, state.records = expected, prev, records
                if records == 0 and prev_line == ("", 0):
                    return Finding(
                        Problem.ALTERED,
                        name,
                        lineno,
                        seq,
                        "the first kept record does not continue the chain's base"
                        " (retention anchor or genesis)",
                    ), None
                return Finding(
                    Problem.ALTERED,
                    prev_line[0],
                    prev_line[1],
                    seq - 1,
                    f"seq {seq} ({name}:{lineno}) links to another hash: this record was"
                    " rewritten with a fresh hash, or replaced",
                ), None
            if seq == watch:
                state.watched = stored
            prev = stored
            prev_line = (name, lineno)
            expected += 1
            records += 1
            if progress is not None and records % _PROGRESS_EVERY == 0:
                progress(done >> 20, total >> 20)
    state.expected, state.prev, state.records, state.prev_at = expected, prev, records, prev_line
    state.done_bytes = done
    if progress is not None:
        progress(done >> 20, total >> 20)
    return None, None


def _seqs(path: Path, start_line: int) -> list[tuple[int, int]]:
    """(line, seq) of the lines of ``path`` from ``start_line`` (1-based) on."""
    found = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno < start_line or not raw.startswith(PREFIX):
                continue
            seqb = raw[7 : raw.find(b",", 7)]
            if seqb.isdigit():
                found.append((lineno, int(seqb)))
    return found


def _out_of_sequence(
    path: Path, lineno: int, seq: int, expected: int, later: list[Path]
) -> Finding:
    if seq < expected:
        return Finding(
            Problem.REORDERED,
            path.name,
            lineno,
            seq,
            f"expected seq {expected}: this record belongs earlier (moved or repeated)",
        )
    # A gap: removed, unless a missing seq appears further on (records swapped or moved).
    for candidate in [path, *later]:
        start = lineno + 1 if candidate == path else 1
        for where, found in _seqs(candidate, start):
            if expected <= found < seq:
                return Finding(
                    Problem.REORDERED,
                    path.name,
                    lineno,
                    seq,
                    f"expected seq {expected}, which comes later ({candidate.name}:{where})",
                )
    gap = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}..{seq - 1}"
    return Finding(Problem.REMOVED, path.name, lineno, expected, f"{gap} missing before this line")
