"""Nearest-rank percentiles against hand-computed values."""

from __future__ import annotations

import pytest

from bench import stats

# The textbook nearest-rank example: n = 5.
FIVE = [15.0, 20.0, 35.0, 40.0, 50.0]


@pytest.mark.parametrize(
    ("pct", "expected"),
    [
        (0, 15.0),  # rank clamps to 1
        (5, 15.0),  # ceil(0.25) = 1
        (30, 20.0),  # ceil(1.5) = 2
        (40, 20.0),  # ceil(2.0) = 2: an exact rank is not rounded up
        (50, 35.0),  # ceil(2.5) = 3
        (95, 50.0),  # ceil(4.75) = 5
        (100, 50.0),
    ],
)
def test_nearest_rank_textbook(pct: float, expected: float) -> None:
    assert stats.nearest_rank(FIVE, pct) == expected


def test_one_to_hundred() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert stats.percentile(samples, 50) == 50.0
    assert stats.percentile(samples, 95) == 95.0
    assert stats.percentile(samples, 99) == 99.0
    assert stats.percentile(samples, 99.5) == 100.0  # ceil(99.5) = 100


def test_twenty_samples_float_noise() -> None:
    # 0.95 * 20 is 19.000000000000004 in floats; the rank must still be 19.
    samples = [float(i) for i in range(1, 21)]
    assert stats.percentile(samples, 95) == 19.0
    assert stats.percentile(samples, 99) == 20.0


def test_unsorted_input_and_single_sample() -> None:
    assert stats.percentile([9.0, 1.0, 5.0, 3.0, 7.0], 50) == 5.0
    assert stats.percentile([4.2], 99) == 4.2


def test_percentiles_many_at_once() -> None:
    result = stats.percentiles([3.0, 1.0, 2.0, 4.0], (50, 75, 100))
    assert result == {50: 2.0, 75: 3.0, 100: 4.0}


def test_empty_samples() -> None:
    assert stats.percentile([], 50) is None
    assert stats.percentiles([], (50, 99)) == {50: None, 99: None}
    with pytest.raises(ValueError, match="no samples"):
        stats.nearest_rank([], 50)


@pytest.mark.parametrize("pct", [-1, 100.5])
def test_percentile_out_of_range(pct: float) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        stats.nearest_rank(FIVE, pct)
