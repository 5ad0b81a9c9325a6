"""The output checks a worker applies to its answer while it streams.

An answer is released sentence by sentence: the guard holds back the text after the
last sentence boundary, so a value split across deltas (a phone number, the canary)
is checked whole before any of it leaves. Released text has PII replaced (the PII
registry every service shares, ``runtime.pii``). The session's canary (placed in the
prompt) must never appear: when it does, the guard stops the answer there and the
worker ends the turn with a refusal instead of the rest.
"""

from __future__ import annotations

import re

from runtime.metrics import GUARDRAIL_VERDICTS
from runtime.pii import redact_for_prompt

_BOUNDARY = re.compile(r"[.!?](?:\s+)|\n+")
_NOT_HEX = re.compile(r"[^0-9a-f]")
CANARY_STOPS = GUARDRAIL_VERDICTS.labels("output_canary", "stopped")
STOP_MESSAGE = (
    "Sorry, I can't share that. I can help with your orders, deliveries, returns and refunds."
)


class CanaryLeak(Exception):
    """The answer carried the session's canary: the prompt leaked."""


class OutputGuard:
    """Sentence-buffered release with PII replacement and the canary check."""

    def __init__(self, canary: str = "") -> None:
        # The canary's random part: found however the model spaces or cases it.
        self._secret = _NOT_HEX.sub("", canary.split("-", 1)[-1].lower()) if canary else ""
        self._pending = ""
        self._released_tail = ""

    def _check(self) -> None:
        if not self._secret:
            return
        window = _NOT_HEX.sub("", (self._released_tail + self._pending).lower())
        if self._secret in window:
            CANARY_STOPS.inc()
            raise CanaryLeak

    def _release(self, text: str) -> str:
        self._released_tail = (self._released_tail + text)[-2 * len(self._secret) - 8 :]
        return redact_for_prompt(text)

    def feed(self, text: str) -> str | None:
        """Text that may leave now (None: nothing yet); CanaryLeak stops the answer."""
        self._pending += text
        self._check()
        last = None
        for match in _BOUNDARY.finditer(self._pending):
            last = match.end()
        if last is None:
            return None
        ready, self._pending = self._pending[:last], self._pending[last:]
        return self._release(ready)

    def finish(self) -> str | None:
        """The rest, at the end of the answer."""
        self._check()
        if not self._pending:
            return None
        ready, self._pending = self._pending, ""
        return self._release(ready)
