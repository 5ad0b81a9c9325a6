"""Per-session canaries: a token placed in every prompt of a session that must never appear
in an answer (its presence means the prompt leaked).

The guardrails service derives the token (:class:`Canaries`); whoever checks text for it,
whole (``CheckOutput``) or as it streams (a worker's output guard), uses :class:`CanaryWatch`,
so both find it the same way: only its random hex part counts, however the model spaces,
cases or punctuates it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PREFIX = "wbc"
_NOT_HEX = re.compile(r"[^0-9a-f]")


class Canaries:
    """Derives a session's canary from a secret key: stable within the session, unlinkable
    across sessions without the key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, session_id: str) -> str:
        """The session's canary token, ``wbc-`` and 16 hex digits."""
        digest = hmac.new(self._key, b"canary\x00" + session_id.encode(), hashlib.sha256)
        return f"{PREFIX}-{digest.hexdigest()[:16]}"


class CanaryWatch:
    """Finds a canary in text fed in pieces; an empty canary is never found.

    Only the squashed hex tail one character shorter than the secret is kept between
    pieces, so each piece costs its own length, not the answer's."""

    def __init__(self, canary: str) -> None:
        self._secret = _NOT_HEX.sub("", canary.split("-", 1)[-1].lower()) if canary else ""
        self._tail = ""

    def feed(self, text: str) -> bool:
        """Whether the canary is complete in everything fed so far."""
        if not self._secret:
            return False
        window = self._tail + _NOT_HEX.sub("", text.lower())
        if self._secret in window:
            return True
        self._tail = window[max(0, len(window) - len(self._secret) + 1) :]
        return False


def leaked(canary: str, text: str) -> bool:
    """Whether ``text`` carries ``canary``."""
    return CanaryWatch(canary).feed(text)
