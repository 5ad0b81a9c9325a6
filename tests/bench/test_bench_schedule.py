"""The open-loop schedule: counts, offsets and warm-up."""

from __future__ import annotations

import pytest

from bench.schedule import Schedule


def test_counts_and_intended_starts() -> None:
    s = Schedule(rate=4, duration_s=2, warmup_s=0.5)
    assert s.warmup_count == 2
    assert s.total == 10
    assert s.measured_count == 8
    assert [s.offset(i) for i in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert s.intended_start(100.0, 3) == 100.75
    assert [s.is_warmup(i) for i in range(4)] == [True, True, False, False]


def test_measured_window_starts_after_warmup() -> None:
    s = Schedule(rate=50, duration_s=10, warmup_s=2)
    assert s.warmup_count == 100
    assert s.measured_count == 500
    assert s.offset(s.warmup_count) == 2.0  # first measured arrival opens the window
    assert s.offset(s.total - 1) < 12.0  # the last one is due inside it


def test_no_warmup() -> None:
    s = Schedule(rate=20, duration_s=1)
    assert s.warmup_count == 0
    assert s.total == s.measured_count == 20
    assert not s.is_warmup(0)


def test_fractional_rate_and_float_noise() -> None:
    # 10 * 0.3 is 3.0000000000000004 in floats; still exactly 3 arrivals.
    assert Schedule(rate=10, duration_s=0.3).total == 3
    # 0.5/s for 3 s: arrivals at 0 s and 2 s (4 s is outside).
    s = Schedule(rate=0.5, duration_s=3)
    assert s.total == 2
    assert s.offset(1) == 2.0


@pytest.mark.parametrize(
    ("rate", "duration", "warmup"),
    [(0, 1, 0), (-1, 1, 0), (1, 0, 0), (1, 1, -0.5)],
)
def test_invalid(rate: float, duration: float, warmup: float) -> None:
    with pytest.raises(ValueError, match="must"):
        Schedule(rate, duration, warmup)
