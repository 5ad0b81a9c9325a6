"""The summary, its JSON line and the human report."""

from __future__ import annotations

import json

from bench.loadgen import Tally
from bench.report import RunSummary, comparison_table, render, summarize
from bench.schedule import Schedule

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "scenario": str,
    "rate": (int, float),
    "duration_s": (int, float),
    "concurrency": int,
    "sent": int,
    "completed": int,
    "throughput": (int, float),
    "p50_ms": (int, float),
    "p95_ms": (int, float),
    "p99_ms": (int, float),
    "max_ms": (int, float),
    "first_event_p50_ms": (int, float),
    "first_event_p95_ms": (int, float),
    "errors": int,
    "error_buckets": dict,
}


def _tally() -> Tally:
    t = Tally()
    # Ten measured OK turns of 1..10 ms from intended start, first events at half that.
    for i in range(1, 11):
        t.sent += 1
        t.record(warmup=False, intended=0.0, first_event=i / 2000, end=i / 1000, bucket="OK")
    for bucket in ("UNAVAILABLE", "UNAVAILABLE", "REFUSAL"):
        t.sent += 1
        t.record(warmup=False, intended=0.0, first_event=None, end=0.02, bucket=bucket)
    # A warm-up turn: counted for progress only.
    t.record(warmup=True, intended=0.0, first_event=None, end=0.5, bucket="UNAVAILABLE")
    return t


def _summary(tally: Tally) -> RunSummary:
    return summarize(
        tally,
        Schedule(rate=13, duration_s=1),
        scenario="skeleton",
        concurrency=256,
        deadline_s=5.0,
        seed=7,
        channels=4,
        target="127.0.0.1:1",
        started_at="2026-01-01T00:00:00+00:00",
    )


def test_json_line_has_required_keys_and_types() -> None:
    line = _summary(_tally()).to_json()
    assert "\n" not in line
    data = json.loads(line)
    for key, kind in REQUIRED.items():
        assert key in data, key
        assert isinstance(data[key], kind), (key, data[key])


def test_summary_values() -> None:
    tally = _tally()
    s = _summary(tally)
    assert (s.sent, s.completed, s.errors) == (13, 10, 3)
    assert s.sent == s.completed + s.errors
    assert s.error_buckets == {"REFUSAL": 1, "UNAVAILABLE": 2}  # warm-up failure not counted
    assert (s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms) == (5.0, 10.0, 10.0, 10.0)
    assert (s.first_event_p50_ms, s.first_event_p95_ms) == (2.5, 5.0)
    # Everything ended inside the 1 s window, so the window counts as the full second.
    assert s.throughput == 10.0
    assert tally.failed == 4  # progress counters do include the warm-up turn


def test_no_ok_turns_gives_null_latencies() -> None:
    t = Tally()
    t.sent = 1
    t.record(warmup=False, intended=0.0, first_event=None, end=1.0, bucket="DEADLINE_EXCEEDED")
    data = json.loads(_summary(t).to_json())
    assert data["p50_ms"] is None
    assert data["first_event_p95_ms"] is None
    assert data["throughput"] == 0.0
    assert data["error_buckets"] == {"DEADLINE_EXCEEDED": 1}


def test_render_and_table_mention_the_numbers() -> None:
    s = _summary(_tally())
    text = render(s)
    assert "UNAVAILABLE=2" in text
    assert "p99 10.0" in text
    table = comparison_table([s, s])
    assert len(table.splitlines()) == 4  # header, rule, two rows
    assert table.splitlines()[2].split()[:5] == ["skeleton", "13", "13", "10", "3"]
