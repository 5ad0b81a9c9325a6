"""The published knowledge-base version, the policy version of cached policy answers.

Retrieval publishes a whole new index version whenever any policy document changes and
points ``CURRENT`` at it (an atomic rename); every retrieval replica serves what
``CURRENT`` names. Keying policy answers by that version means an answer drawn from
yesterday's policies is never found once today's are published. The file is re-read at
most every ``poll_s``: for that long after a publish, a replica may still serve answers
of the previous version, as retrieval replicas polling the same file do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

CURRENT = "CURRENT"


class KbVersion:
    """Reads ``<kb_dir>/CURRENT``; None while it is missing or unreadable."""

    def __init__(
        self, kb_dir: Path, *, poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = kb_dir / CURRENT
        self._poll_s = poll_s
        self._clock = clock
        self._read_at: float | None = None
        self._version: str | None = None

    def current(self) -> str | None:
        """The version retrieval serves now (as of at most ``poll_s`` ago)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._poll_s:
            self._read_at = now
            self._version = self._read()
        return self._version

    def _read(self) -> str | None:
        try:
            record = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return None
        version = record.get("version") if isinstance(record, dict) else None
        return version if isinstance(version, str) and version else None
