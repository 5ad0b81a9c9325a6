"""Turning a tally into a summary: the human report, the JSON line, the table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from bench import stats
from bench.loadgen import Tally
from bench.schedule import Schedule


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Everything one run reports; ``to_json`` is the machine-readable line.

    Latency percentiles cover turns that ended OK (failed turns are counted in
    ``errors`` instead, so a fast failure cannot flatter the tail); ``None``
    means no turn ended OK.
    """

    scenario: str
    rate: float
    duration_s: float
    concurrency: int
    sent: int
    completed: int
    throughput: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    first_event_p50_ms: float | None
    first_event_p95_ms: float | None
    errors: int
    error_buckets: dict[str, int]
    warmup_s: float = 0.0
    deadline_s: float = 0.0
    seed: int = 0
    channels: int = 0
    target: str = ""
    mean_ms: float | None = None
    first_event_p99_ms: float | None = None
    queue_timeouts: int = 0
    max_in_flight: int = 0
    dispatch_lag_max_ms: float = 0.0
    window_s: float = 0.0
    started_at: str = ""
    client_error: str | None = None

    def to_json(self) -> str:
        """One JSON line (no newline)."""
        return json.dumps(asdict(self), separators=(",", ":"))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def summarize(
    tally: Tally,
    schedule: Schedule,
    *,
    scenario: str,
    concurrency: int,
    deadline_s: float,
    seed: int,
    channels: int,
    target: str,
    started_at: str,
) -> RunSummary:
    """The summary of a finished run."""
    lat = stats.percentiles(tally.latencies_ms, (50, 95, 99, 100))
    first = stats.percentiles(tally.first_event_ms, (50, 95, 99))
    # The window runs from the first measured arrival's intended start to the
    # last measured turn's end, but never counts as shorter than the scheduled
    # duration: finishing early must not inflate throughput above the rate.
    window_s = max(schedule.duration_s, tally.window_end - tally.window_start)
    mean = sum(tally.latencies_ms) / len(tally.latencies_ms) if tally.latencies_ms else None
    return RunSummary(
        scenario=scenario,
        rate=schedule.rate,
        duration_s=schedule.duration_s,
        concurrency=concurrency,
        sent=tally.sent,
        completed=tally.completed,
        throughput=round(tally.completed / window_s, 3),
        p50_ms=_ms(lat[50]),
        p95_ms=_ms(lat[95]),
        p99_ms=_ms(lat[99]),
        max_ms=_ms(lat[100]),
        first_event_p50_ms=_ms(first[50]),
        first_event_p95_ms=_ms(first[95]),
        errors=tally.errors,
        error_buckets=dict(sorted(tally.buckets.items())),
        warmup_s=schedule.warmup_s,
        deadline_s=deadline_s,
        seed=seed,
        channels=channels,
        target=target,
        mean_ms=_ms(mean),
        first_event_p99_ms=_ms(first[99]),
        queue_timeouts=tally.queue_timeouts,
        max_in_flight=tally.max_in_flight,
        dispatch_lag_max_ms=round(tally.dispatch_lag_max_ms, 3),
        window_s=round(window_s, 3),
        started_at=started_at,
        client_error=tally.client_error,
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(s: RunSummary) -> str:
    """The human-readable report of one run."""
    buckets = ", ".join(f"{k}={v}" for k, v in s.error_buckets.items()) or "none"
    lines = [
        f"scenario {s.scenario} -> {s.target}",
        f"  offered    {s.rate:g} turns/s for {s.duration_s:g} s "
        f"(warm-up {s.warmup_s:g} s, concurrency {s.concurrency}, deadline {s.deadline_s:g} s, "
        f"{s.channels} channels, seed {s.seed})",
        f"  turns      sent {s.sent}, ok {s.completed}, errors {s.errors}",
        f"  throughput {s.throughput:.1f} ok turns/s over {s.window_s:.1f} s",
        f"  latency ms p50 {_fmt(s.p50_ms)}  p95 {_fmt(s.p95_ms)}  p99 {_fmt(s.p99_ms)}  "
        f"max {_fmt(s.max_ms)}  (ok turns, from intended start)",
        f"  first evt  p50 {_fmt(s.first_event_p50_ms)}  p95 {_fmt(s.first_event_p95_ms)}",
        f"  errors     {buckets}",
        f"  generator  max in flight {s.max_in_flight}, queue timeouts {s.queue_timeouts}, "
        f"max dispatch lag {s.dispatch_lag_max_ms:.1f} ms",
    ]
    if s.client_error:
        lines.append(f"  client error (first): {s.client_error}")
    return "\n".join(lines)


_COLUMNS: tuple[tuple[str, int], ...] = (
    ("scenario", 10),
    ("rate", 6),
    ("sent", 6),
    ("ok", 6),
    ("errors", 6),
    ("thrpt/s", 8),
    ("p50 ms", 8),
    ("p95 ms", 8),
    ("p99 ms", 8),
    ("max ms", 8),
    ("1st p50", 8),
)


def comparison_table(summaries: Sequence[RunSummary]) -> str:
    """A fixed-width table with one row per run."""
    header = " ".join(name.rjust(width) for name, width in _COLUMNS)
    rows = [header, "-" * len(header)]
    for s in summaries:
        cells = (
            s.scenario,
            f"{s.rate:g}",
            str(s.sent),
            str(s.completed),
            str(s.errors),
            f"{s.throughput:.1f}",
            _fmt(s.p50_ms),
            _fmt(s.p95_ms),
            _fmt(s.p99_ms),
            _fmt(s.max_ms),
            _fmt(s.first_event_p50_ms),
        )
        rows.append(" ".join(c.rjust(w) for c, (_, w) in zip(cells, _COLUMNS, strict=True)))
    return "\n".join(rows)
