"""Coalescing text deltas before they cross the mesh.

Every streamed message costs CPU on each hop. A model's tokens arrive tens of
milliseconds apart, and a reader sees no difference between one message per
token and one per few tokens; the composer, on the other hand, produces a
whole answer at once. So deltas are buffered until a sentence ends or the
oldest buffered text has waited ``max_wait_s``; nothing waits longer than the
gap to the next delta, and everything is flushed at the end.
"""

from __future__ import annotations

import time

_SENTENCE_END = (".", "!", "?", ":", "\n")


class DeltaCoalescer:
    """Turns many small deltas into fewer, larger ones."""

    def __init__(self, *, max_wait_s: float = 0.02, max_chars: int = 400) -> None:
        self._max_wait_s = max_wait_s
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._size = 0
        self._since = 0.0

    def add(self, text: str) -> str | None:
        """Buffer ``text``; return what should be sent now, if anything."""
        if not self._parts:
            self._since = time.monotonic()
        self._parts.append(text)
        self._size += len(text)
        stripped = text.rstrip()
        if (
            (stripped and stripped.endswith(_SENTENCE_END))
            or self._size >= self._max_chars
            or time.monotonic() - self._since >= self._max_wait_s
        ):
            return self.flush()
        return None

    def flush(self) -> str | None:
        """Everything buffered, or None."""
        if not self._parts:
            return None
        text = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        return text
