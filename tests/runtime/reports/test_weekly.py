"""ISO weeks and week-over-week change."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from runtime.reports.weekly import Week, change


def test_a_week_runs_monday_to_monday_in_utc() -> None:
    week = Week.parse("2026-W46")
    assert week.start == datetime(2026, 11, 9, tzinfo=UTC)
    assert week.end == datetime(2026, 11, 16, tzinfo=UTC)
    assert week.days[0] == date(2026, 11, 9)
    assert week.days[-1] == date(2026, 11, 15)
    assert week.label == "2026-W46"
    assert Week.parse("2026-w46") == week


def test_weeks_across_the_year_boundary() -> None:
    assert Week.containing(date(2026, 12, 31)).label == "2026-W53"
    assert Week.containing(date(2027, 1, 3)).label == "2026-W53"
    assert Week.parse("2027-W01").previous.label == "2026-W53"
    assert Week.parse("2026-W01").start == datetime(2025, 12, 29, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-W54", "2025-W53", "2026-46", "W46", "2026-W", ""])
def test_what_is_not_a_week(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO week"):
        Week.parse(text)


def test_change_is_relative_and_none_from_nothing() -> None:
    assert change(150, 100) == pytest.approx(50.0)
    assert change(0, 4) == pytest.approx(-100.0)
    assert change(3, 0) is None
