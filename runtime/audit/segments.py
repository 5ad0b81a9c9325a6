"""The files of a log directory: day segments and the two anchors.

- ``audit-YYYY-MM-DD.jsonl``: the records written for that UTC day, one line each; each
  file's first ``prev`` is the previous file's last hash.
- ``checkpoint.json`` (written by the writer): each sealed segment's first and last seq and
  last hash, and the head (the last record known to be on disk). Verification uses it to
  name a missing segment and to see records cut from the end.
- ``retention.json`` (written by ``prune``): the segments removed by retention and the base
  (seq and hash of the last removed record), where the kept chain must start.

Anchors are replaced atomically (temporary file, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from runtime.audit.chain import GENESIS, Line, parse_line

SEGMENT = re.compile(r"audit-(\d{4}-\d{2}-\d{2})\.jsonl")
CHECKPOINT = "checkpoint.json"
RETENTION = "retention.json"
WRITER_LOCK = "writer.lock"
PRUNE_LOCK = "prune.lock"
TORN_DIR = "torn"


class AnchorError(ValueError):
    """An anchor file that cannot be read."""


def segment_name(day: date) -> str:
    """The file name of ``day``'s segment."""
    return f"audit-{day.isoformat()}.jsonl"


def segment_day(name: str) -> date:
    """The day of a segment file name."""
    match = SEGMENT.fullmatch(name)
    if match is None:
        raise ValueError(f"{name} is not a segment name")
    return date.fromisoformat(match.group(1))


def segment_files(directory: Path) -> list[Path]:
    """Every segment file in ``directory``, oldest first."""
    return sorted(
        p for p in directory.iterdir() if SEGMENT.fullmatch(p.name) is not None and p.is_file()
    )


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in the chain: a record's seq and hash, and its segment."""

    seq: int
    hash: str
    segment: str = ""

    def as_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"seq": self.seq, "hash": self.hash, "segment": self.segment}

    @staticmethod
    def from_json(value: Any) -> Mark:
        """From the JSON form; AnchorError if malformed."""
        try:
            mark = Mark(int(value["seq"]), str(value["hash"]), str(value.get("segment", "")))
        except (KeyError, TypeError, ValueError):
            raise AnchorError(f"not a chain mark: {value!r}") from None
        if len(mark.hash) != 64 or mark.seq < 0:
            raise AnchorError(f"not a chain mark: {value!r}")
        return mark


START = Mark(0, GENESIS)
"""Where a log with nothing removed starts."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A segment the writer has finished: its first and last record."""

    first_seq: int
    last: Mark


@dataclass(slots=True)
class Checkpoint:
    """``checkpoint.json``."""

    sealed: dict[str, Sealed] = field(default_factory=dict)
    head: Mark | None = None


@dataclass(slots=True)
class Retention:
    """``retention.json``."""

    base: Mark = START
    removed: dict[str, Sealed] = field(default_factory=dict)


def write_json_atomically(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` so that a crash leaves the old or the new file."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            json.dump(document, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make renames, creations and deletions in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AnchorError(f"{path.name}: {exc}") from None


def _sealed(value: Any, where: str) -> dict[str, Sealed]:
    if not isinstance(value, dict):
        raise AnchorError(f"{where} must be an object")
    try:
        return {
            str(name): Sealed(int(entry["first_seq"]), Mark.from_json(entry["last"]))
            for name, entry in value.items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorError(f"{where}: {exc}") from None


def _sealed_json(sealed: dict[str, Sealed]) -> dict[str, Any]:
    return {
        name: {"first_seq": s.first_seq, "last": s.last.as_json()}
        for name, s in sorted(sealed.items())
    }


def read_checkpoint(directory: Path) -> Checkpoint:
    """The checkpoint, empty when there is none; AnchorError if unreadable."""
    document = _read_json(directory / CHECKPOINT)
    if document is None:
        return Checkpoint()
    if not isinstance(document, dict):
        raise AnchorError(f"{CHECKPOINT} must be an object")
    head = document.get("head")
    return Checkpoint(
        sealed=_sealed(document.get("sealed", {}), f"{CHECKPOINT} sealed"),
        head=Mark.from_json(head) if head is not None else None,
    )


def write_checkpoint(directory: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint."""
    write_json_atomically(
        directory / CHECKPOINT,
        {
            "sealed": _sealed_json(checkpoint.sealed),
            "head": checkpoint.head.as_json() if checkpoint.head is not None else None,
        },
    )


def read_retention(directory: Path) -> Retention:
    """The retention manifest, the genesis when there is none; AnchorError if unreadable."""
    document = _read_json(directory / RETENTION)
    if document is None:
        return Retention()
    if not isinstance(document, dict) or "base" not in document:
        raise AnchorError(f"{RETENTION} must be an object with a base")
    return Retention(
        base=Mark.from_json(document["base"]),
        removed=_sealed(document.get("removed", {}), f"{RETENTION} removed"),
    )


def write_retention(directory: Path, retention: Retention) -> None:
    """Replace the retention manifest."""
    write_json_atomically(
        directory / RETENTION,
        {"base": retention.base.as_json(), "removed": _sealed_json(retention.removed)},
    )


def kept_segments(directory: Path, retention: Retention) -> list[Path]:
    """The segments verification reads: every segment file but those retention removed
    (a prune interrupted after writing its manifest may have left some behind)."""
    return [p for p in segment_files(directory) if p.name not in retention.removed]


def first_line(path: Path) -> Line | None:
    """The first complete line of a segment, None if it has none (or it is malformed)."""
    with path.open("rb") as f:
        return parse_line(f.readline())


def last_complete_line(path: Path) -> tuple[Line | None, int, int]:
    """The last complete line of a segment, the offset just after it, and the file size.

    A crash during a write can leave a torn line (no newline) at the end; the offset says
    where the complete lines end. The Line is None when the file has no complete line, or the
    last one is malformed."""
    size = path.stat().st_size
    with path.open("rb") as f:
        tail = b""  # the bytes from ``position`` to the end
        position = size
        while True:
            end = tail.rfind(b"\n")
            if end >= 0:
                start = tail.rfind(b"\n", 0, end)
                if start >= 0 or position == 0:
                    return parse_line(tail[start + 1 : end + 1]), position + end + 1, size
            if position == 0:
                return None, 0, size
            step = min(1 << 16, position)
            position -= step
            f.seek(position)
            tail = f.read(step) + tail
