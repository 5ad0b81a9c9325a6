"""The open-loop arrival schedule: arrival ``i`` is due at ``t0 + i / rate``.

The schedule is fixed before the run starts and never waits for responses;
the first ``warmup_count`` arrivals warm the mesh up and are not measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Absorbs float noise in rate * seconds (e.g. 0.1 * 30) so the counts match
# the obvious hand-computed ones.
_EPS = 1e-9


def _count_before(rate: float, seconds: float) -> int:
    """How many arrivals ``i >= 0`` have ``i / rate < seconds``."""
    return max(0, math.ceil(rate * seconds - _EPS))


@dataclass(frozen=True, slots=True)
class Schedule:
    """Fixed-rate arrivals over a warm-up and a measured window."""

    rate: float
    """Arrivals per second."""
    duration_s: float
    """Length of the measured window."""
    warmup_s: float = 0.0
    """Length of the warm-up window before it."""

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate}")
        if self.duration_s <= 0:
            raise ValueError(f"duration must be positive, got {self.duration_s}")
        if self.warmup_s < 0:
            raise ValueError(f"warm-up must not be negative, got {self.warmup_s}")

    @property
    def warmup_count(self) -> int:
        """Arrivals due before the measured window opens."""
        return _count_before(self.rate, self.warmup_s)

    @property
    def total(self) -> int:
        """All arrivals, warm-up included."""
        return _count_before(self.rate, self.warmup_s + self.duration_s)

    @property
    def measured_count(self) -> int:
        """Arrivals inside the measured window."""
        return self.total - self.warmup_count

    def offset(self, index: int) -> float:
        """Seconds after ``t0`` at which arrival ``index`` is due."""
        return index / self.rate

    def intended_start(self, t0: float, index: int) -> float:
        """The clock time at which arrival ``index`` is due."""
        return t0 + self.offset(index)

    def is_warmup(self, index: int) -> bool:
        """Whether arrival ``index`` belongs to the warm-up."""
        return index < self.warmup_count
