"""A small asyncio circuit breaker: closed -> open -> half-open (one probe) -> closed.

Why not pybreaker (docs/inference.md has the details and
tests/llm_pool/test_pybreaker_asyncio.py the evidence): its ``call`` does not
await coroutines, ``call_async`` needs tornado, and with ``calling()`` every
concurrent caller passes through half-open at once, while an excluded error
(a rate limit, our own cancellation) counts as a success that closes the
breaker. Here a caller takes a ``Permit`` before an attempt and resolves it
exactly once: ``success()``, ``failure()`` (provider failures only) or
``release()`` (says nothing about the backend: cancelled, rate limited, ...).

Breakers live in one event loop: no locks. State is per process; a
fleet-wide breaker would keep the same state machine in Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    """The three states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and how it recovers."""

    failure_threshold: int = 3
    """Consecutive provider failures that open it (LLM providers: 3)."""
    recovery_s: float = 60.0
    """Time open before one probe is let through."""
    probe_successes: int = 1
    """Consecutive successful probes that close it again."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.probe_successes < 1 or self.recovery_s < 0:
            raise ValueError(f"invalid breaker policy {self}")


StateListener = Callable[[str, BreakerState, BreakerState], None]
"""Called with (breaker name, old state, new state) on every transition."""


class Permit:
    """The right to make one attempt; resolve it exactly once (later calls are ignored)."""

    __slots__ = ("_breaker", "_epoch", "_resolved", "probe")

    def __init__(self, breaker: CircuitBreaker, epoch: int, *, probe: bool) -> None:
        self._breaker = breaker
        self._epoch = epoch
        self._resolved = False
        self.probe = probe
        """True for the single half-open probe."""

    @property
    def resolved(self) -> bool:
        """Whether success/failure/release was called."""
        return self._resolved

    def success(self) -> None:
        """The attempt worked."""
        if not self._resolved:
            self._resolved = True
            self._breaker._on_success(self)

    def failure(self) -> None:
        """The provider failed."""
        if not self._resolved:
            self._resolved = True
            self._breaker._on_failure(self)

    def release(self) -> None:
        """The attempt ended without saying anything about the provider's health."""
        if not self._resolved:
            self._resolved = True
            self._breaker._on_release(self)


class CircuitBreaker:
    """One backend's breaker."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        # Permits taken in an earlier state are ignored when they resolve: only
        # outcomes observed in the current state may move the breaker.
        self._epoch = 0
        self._failures = 0
        self._probe_successes = 0
        self._probing = False
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its recovery time reads half-open)."""
        if self._state is BreakerState.OPEN and self._recovered():
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Provider failures since the last success (closed state)."""
        return self._failures

    def _recovered(self) -> bool:
        return self._clock() - self._opened_at >= self.policy.recovery_s

    def _move(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._epoch += 1
        self._probing = False
        if new is BreakerState.OPEN:
            self._opened_at = self._clock()
        if new is BreakerState.CLOSED:
            self._failures = 0
        if new is BreakerState.HALF_OPEN:
            self._probe_successes = 0
        if self._on_change is not None and old is not new:
            self._on_change(self.name, old, new)

    def try_acquire(self) -> Permit | None:
        """A permit for one attempt, or None while open (or while the probe is out)."""
        if self._state is BreakerState.CLOSED:
            return Permit(self, self._epoch, probe=False)
        if self._state is BreakerState.OPEN:
            if not self._recovered():
                return None
            self._move(BreakerState.HALF_OPEN)
        if self._probing:
            return None
        self._probing = True
        return Permit(self, self._epoch, probe=True)

    def _on_success(self, permit: Permit) -> None:
        if permit._epoch != self._epoch:
            return
        if self._state is BreakerState.CLOSED:
            self._failures = 0
            return
        self._probing = False
        self._probe_successes += 1
        if self._probe_successes >= self.policy.probe_successes:
            self._move(BreakerState.CLOSED)

    def _on_failure(self, permit: Permit) -> None:
        if permit._epoch != self._epoch:
            return
        if self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.policy.failure_threshold:
                self._move(BreakerState.OPEN)
            return
        # The half-open probe failed: open again for a full recovery period.
        self._move(BreakerState.OPEN)

    def _on_release(self, permit: Permit) -> None:
        if permit._epoch == self._epoch and permit.probe:
            self._probing = False
