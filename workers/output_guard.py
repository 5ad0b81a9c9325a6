"""The output checks a worker applies to its answer while it streams.

An answer is released sentence by sentence: the guard holds back the text after the
last sentence boundary, so a value split across deltas (a phone number, the canary)
is checked whole before any of it leaves. Released text has PII replaced (the PII
registry every service shares, ``runtime.pii``), unless every delta so far was screened
at the source (template wording around facts the worker screened,
``llm_pool.generation.AnswerPlan.screened``): the tracking path renders templates, and a
second scan of dates and times in them cost it a third of a millisecond a turn. The
session's canary (placed in the prompt) must never appear: when it does, the guard stops
the answer there and the worker ends the turn with a refusal instead of the rest.
"""

from __future__ import annotations

import re

from runtime.canary import CanaryWatch
from runtime.metrics import GUARDRAIL_VERDICTS
from runtime.pii import redact_for_prompt

_BOUNDARY = re.compile(r"[.!?](?:\s+)|\n+")
CANARY_STOPS = GUARDRAIL_VERDICTS.labels("output_canary", "stopped")
STOP_MESSAGE = (
    "Sorry, I can't share that. I can help with your orders, deliveries, returns and refunds."
)


class CanaryLeak(Exception):
    """The answer carried the session's canary: the prompt leaked."""


class OutputGuard:
    """Sentence-buffered release with PII replacement and the canary check."""

    def __init__(self, canary: str = "") -> None:
        self._watch = CanaryWatch(canary)
        self._pending = ""
        self._screened = True

    def feed(self, text: str, *, screened: bool = False) -> str | None:
        """Text that may leave now (None: nothing yet); CanaryLeak stops the answer.
        ``screened``: the delta holds no PII by construction (once one delta is not, the
        whole rest of the answer is scanned)."""
        self._screened = self._screened and screened
        if self._watch.feed(text):
            CANARY_STOPS.inc()
            raise CanaryLeak
        self._pending += text
        last = None
        for match in _BOUNDARY.finditer(self._pending):
            last = match.end()
        if last is None:
            return None
        ready, self._pending = self._pending[:last], self._pending[last:]
        return self._checked(ready)

    def finish(self) -> str | None:
        """The rest, at the end of the answer."""
        if not self._pending:
            return None
        ready, self._pending = self._pending, ""
        return self._checked(ready)

    def _checked(self, text: str) -> str:
        return text if self._screened else redact_for_prompt(text)
