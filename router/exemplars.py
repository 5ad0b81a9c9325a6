"""Labelled exemplars: the versioned data file, follow-ups, and added ones.

``data/router/exemplars.v1.jsonl`` holds one ``{"id", "text", "intent"}`` per
line (``intent`` is an enum name of waybill.common.v1.Intent);
``follow_ups.jsonl`` holds ``{"id", "text"}`` rows of referring follow-ups.
Exemplars added at run time through AddExemplars are appended to a JSONL file
in the data directory, so a restart serves the same index.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from router.intents import FOLLOW_UP, intent_name, parse_intent
from router.normalize import dedup_key

MAX_TEXT_CHARS = 500
"""Same bound as the contract's ``Exemplar.text``."""


class ExemplarFileError(ValueError):
    """A data file that cannot be used as it is; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One labelled example message."""

    text: str
    label: int
    """An intent enum value, or :data:`router.intents.FOLLOW_UP`."""
    id: str = ""
    """Stable row id (data files); empty for exemplars added at run time."""


def _rows(path: Path) -> Iterable[tuple[int, dict[str, object]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ExemplarFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ExemplarFileError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise ExemplarFileError(f"{path}:{number}: expected an object")
        yield number, row


def _text(path: Path, number: int, row: dict[str, object]) -> str:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ExemplarFileError(f"{path}:{number}: 'text' must be a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise ExemplarFileError(f"{path}:{number}: 'text' is over {MAX_TEXT_CHARS} characters")
    return text.strip()


def load(path: Path) -> list[Exemplar]:
    """The labelled exemplars of ``path``; ExemplarFileError on any bad row or duplicate."""
    found: list[Exemplar] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path):
        text = _text(path, number, row)
        try:
            label = parse_intent(str(row.get("intent", "")))
        except ValueError as exc:
            raise ExemplarFileError(f"{path}:{number}: {exc}") from None
        key = dedup_key(text)
        if key in seen:
            raise ExemplarFileError(f"{path}:{number}: duplicate of line {seen[key]}: {text!r}")
        seen[key] = number
        found.append(Exemplar(text=text, label=label, id=str(row.get("id", ""))))
    if not found:
        raise ExemplarFileError(f"{path}: no exemplars")
    return found


def load_follow_ups(path: Path) -> list[Exemplar]:
    """Referring follow-ups (``{"id", "text"}`` rows), labelled FOLLOW_UP."""
    return [
        Exemplar(text=_text(path, number, row), label=FOLLOW_UP, id=str(row.get("id", "")))
        for number, row in _rows(path)
    ]


def load_added(path: Path) -> list[Exemplar]:
    """Exemplars added at run time (none if the file does not exist yet)."""
    if not path.exists():
        return []
    return load(path) if path.stat().st_size else []


def append(path: Path, exemplars: Sequence[Exemplar]) -> None:
    """Append ``exemplars`` durably (fsync) before the new index serves them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(
        json.dumps({"text": e.text, "intent": intent_name(e.label)}, ensure_ascii=False) + "\n"
        for e in exemplars
    )
    with path.open("a", encoding="utf-8") as fh:
        fh.write(lines)
        fh.flush()
        os.fsync(fh.fileno())


def digest(exemplars: Iterable[Exemplar]) -> str:
    """Order-independent hash of the exemplar set (hex): part of the classifier version."""
    h = hashlib.sha256()
    for line in sorted(f"{e.label}\t{dedup_key(e.text)}" for e in exemplars):
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()
