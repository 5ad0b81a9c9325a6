"""Restart bookkeeping of a supervised service, as Kubernetes keeps it for a pod.

Pure: every method takes ``now`` (seconds on any monotonic clock), so the
policy is tested without processes or sleeps; ``cli.launcher.Mesh`` drives it
from its supervisor thread with ``time.monotonic()``.

A service that exits is restarted after a delay that starts at
``initial_s`` and doubles with each consecutive failure up to ``cap_s``; an
exit after it has been SERVING for ``reset_after_s`` counts as a first failure
again. ``crash_loop_after`` consecutive failures make it a crash loop: still
retried at the capped delay (it may be waiting on something that comes back),
but reported as such.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Phase", "RestartPolicy", "Tracker", "describe_exit"]


class Phase(StrEnum):
    """Where a supervised service is; the run file and ``waybill health`` show it."""

    STARTING = "starting"
    """Its process runs but has not been seen SERVING yet."""
    SERVING = "serving"
    BACKOFF = "backoff"
    """It exited; a restart is due at ``Tracker.restart_at``."""
    CRASH_LOOP = "crash-loop"
    """In backoff after ``crash_loop_after`` consecutive failures."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When to restart a service that exited."""

    initial_s: float = 0.1
    """Delay before the first restart."""
    factor: float = 2.0
    """Each consecutive failure multiplies the delay by this."""
    cap_s: float = 5.0
    """The delay never grows past this, so a crash loop costs one start per cap."""
    reset_after_s: float = 10.0
    """SERVING this long makes the next exit count as a first failure again."""
    crash_loop_after: int = 3
    """Consecutive failures after which the service is reported as crash looping."""
    ready_timeout_s: float = 60.0
    """A restarted process not SERVING by then is killed and counts as a failure."""
    poll_s: float = 0.1
    """How often the supervisor looks at its children."""

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.cap_s < self.initial_s:
            raise ValueError(f"need 0 < initial_s <= cap_s, got {self.initial_s}, {self.cap_s}")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")
        if self.crash_loop_after < 1:
            raise ValueError(f"crash_loop_after must be at least 1, got {self.crash_loop_after}")

    def delay(self, failures: int) -> float:
        """Seconds to wait before restarting after the ``failures``-th consecutive failure."""
        exponent = max(failures - 1, 0)
        # Stop multiplying once past the cap: a long crash loop must not overflow.
        delay = self.initial_s
        for _ in range(exponent):
            delay *= self.factor
            if delay >= self.cap_s:
                return self.cap_s
        return min(delay, self.cap_s)


def describe_exit(code: int | None) -> str:
    """``SIGKILL`` for a process killed by a signal, ``status 3`` for an exit, ``-`` for none."""
    if code is None:
        return "-"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


@dataclass(slots=True)
class Tracker:
    """The restart state of one service."""

    policy: RestartPolicy
    phase: Phase = Phase.STARTING
    restarts: int = 0
    """Restarts the supervisor made (not the first start, not ``Mesh.restart``)."""
    failures: int = 0
    """Consecutive exits without a stable SERVING period in between."""
    last_exit: int | None = None
    """Exit status of the last process that ended (negative: killed by that signal)."""
    spawned_at: float = 0.0
    serving_since: float | None = None
    restart_at: float | None = None
    down_since: float | None = None
    """When the current outage began (the first exit of a crash loop); None while up."""

    @property
    def crash_looping(self) -> bool:
        """Whether it failed ``crash_loop_after`` times in a row."""
        return self.failures >= self.policy.crash_loop_after

    def spawned(self, now: float, *, restart: bool) -> None:
        """A new process runs; ``restart`` when the supervisor started it."""
        if restart:
            self.restarts += 1
        self.phase = Phase.STARTING
        self.spawned_at = now
        self.serving_since = None
        self.restart_at = None

    def serving(self, now: float) -> float | None:
        """Its process was seen SERVING; seconds since the outage began, if there was one."""
        self.phase = Phase.SERVING
        self.serving_since = now
        down, self.down_since = self.down_since, None
        return None if down is None else now - down

    def exited(self, now: float, code: int | None) -> float:
        """Its process ended (or could not be started, ``code`` None); the restart delay."""
        stable = (
            self.serving_since is not None and now - self.serving_since >= self.policy.reset_after_s
        )
        self.failures = 1 if stable else self.failures + 1
        if self.down_since is None:
            self.down_since = now
        if code is not None:
            self.last_exit = code
        delay = self.policy.delay(self.failures)
        self.restart_at = now + delay
        self.serving_since = None
        self.phase = Phase.CRASH_LOOP if self.crash_looping else Phase.BACKOFF
        return delay

    def due(self, now: float) -> bool:
        """Whether a restart is due."""
        return self.restart_at is not None and now >= self.restart_at

    def unready(self, now: float) -> bool:
        """Whether a starting process has had its ``ready_timeout_s`` and is still not SERVING."""
        return self.phase is Phase.STARTING and now - self.spawned_at >= self.policy.ready_timeout_s
