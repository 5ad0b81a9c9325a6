"""Exact order statistics over collected samples.

Percentiles use the nearest-rank definition on the raw samples (no histogram),
so a reported p99 is a latency some turn actually had.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank(sorted_samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of already sorted samples by nearest rank.

    The rank is ``ceil(pct / 100 * n)`` (at least 1), and the result is the
    sample at that 1-based rank. Raises ``ValueError`` on an empty sequence or
    a percentile outside 0..100.
    """
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    n = len(sorted_samples)
    if n == 0:
        raise ValueError("no samples")
    # The tolerance keeps float noise (e.g. 0.95 * 20 = 19.000000000000004)
    # from pushing the rank one past the hand-computed one.
    rank = max(1, math.ceil(pct / 100.0 * n - 1e-9))
    return sorted_samples[rank - 1]


def percentile(samples: Sequence[float], pct: float) -> float | None:
    """The ``pct`` percentile of unsorted samples, ``None`` when there are none."""
    if not samples:
        return None
    return nearest_rank(sorted(samples), pct)


def percentiles(samples: Sequence[float], pcts: Sequence[float]) -> dict[float, float | None]:
    """Several percentiles with one sort."""
    if not samples:
        return dict.fromkeys(pcts)
    ordered = sorted(samples)
    return {p: nearest_rank(ordered, p) for p in pcts}
