"""Retry policy: exponential backoff with jitter, bounded by attempts and the deadline."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one backend is retried before the chain moves on."""

    attempts: int = 3
    """Attempts in total on one backend (the first one included)."""
    base_s: float = 0.1
    """Delay before the second attempt, before jitter."""
    multiplier: float = 2.0
    """Growth of the delay per attempt."""
    max_s: float = 1.0
    """Cap on one delay, before jitter."""
    jitter: float = 0.5
    """Each delay is scaled by a uniform factor in [1 - jitter, 1 + jitter]."""

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 3:
            # The sources cap retries at 3 attempts in total, per request.
            raise ValueError(f"attempts must be 1..3, got {self.attempts}")
        if self.base_s < 0 or self.max_s < 0 or not 0 <= self.jitter < 1 or self.multiplier < 1:
            raise ValueError(f"invalid retry policy {self}")

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay after failed attempt number ``attempt`` (1-based)."""
        raw = min(self.max_s, self.base_s * self.multiplier ** (attempt - 1))
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return raw * spread

    def should_retry(
        self, *, attempt: int, delay_s: float, remaining_s: float | None, min_attempt_s: float
    ) -> bool:
        """Whether another attempt fits: attempts left and, after the delay, time left.

        ``remaining_s`` None means the caller set no deadline.
        """
        if attempt >= self.attempts:
            return False
        return remaining_s is None or remaining_s - delay_s >= min_attempt_s
