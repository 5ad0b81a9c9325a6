"""Terminal output helpers: aligned tables and optional ANSI styling.

Styling is on only for a TTY (and off with ``NO_COLOR``), so piped output and
test captures stay plain text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TextIO

_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_RED = "\x1b[31m"
_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_RESET = "\x1b[0m"


def use_color(stream: TextIO) -> bool:
    """Whether to style text written to ``stream``."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    """ANSI wrappers that do nothing when color is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.enabled else text

    def dim(self, text: str) -> str:
        """Secondary information (tool calls, usage)."""
        return self._wrap(_DIM, text)

    def bold(self, text: str) -> str:
        """Headings."""
        return self._wrap(_BOLD, text)

    def ok(self, text: str) -> str:
        """Success."""
        return self._wrap(_GREEN, text)

    def warn(self, text: str) -> str:
        """Needs attention (confirmations, refusals)."""
        return self._wrap(_YELLOW, text)

    def error(self, text: str) -> str:
        """Failure."""
        return self._wrap(_RED, text)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
        for line in (headers, *rows)
    ]
    return "\n".join(lines)
