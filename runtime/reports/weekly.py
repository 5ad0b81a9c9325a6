"""The weekly ops review: one ISO week against the week before, from the Parquet exports of
the audit log (turns) and the ledger's journal (charges), with DuckDB.

From the audit log (one record per turn): turns by intent and by tenant; how turns ended
(``ENDINGS``); latency p50/p95 per intent. From the ledger: cost by team and by model, each
team's month to date against its monthly budget when one is known; days at 3x the trailing
7-day average (``ledger.reports.anomalies``) per team and per model. Every figure is given for
this week and last week; ``change`` is the relative change in percent (None from nothing).

Weeks are ISO weeks in UTC: Monday 00:00 inclusive to the next Monday exclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from ledger.reports import Anomaly, anomalies, parquet_files, read_parquet

ENDINGS = ("resolved", "handed_to_person", "refused", "failed")
"""How a turn ended, first match wins: ``handed_to_person`` (the human worker answered, or an
``escalate_to_human`` call succeeded), ``resolved`` (outcome OK: the assistant answered),
``refused`` (``REFUSED`` by the input check, or ``RESOURCE_EXHAUSTED:*``: rate limit or
budget), ``failed`` (any other outcome: unavailable, deadline, cancelled, internal)."""

HUMAN_WORKER = "WORKER_HUMAN"
ESCALATION_TOOL = "escalate_to_human"
AUDIT_COLUMNS = ("time", "tenant_id", "team_id", "intent", "worker", "tools", "latency_us")
"""The audit export's columns the report reads (besides ``outcome``)."""

_UTC_DAY = "(DATE '1970-01-01' + CAST(epoch_us(time) // 86400000000 AS INTEGER))"
_ENDING = f"""
    CASE
      WHEN worker = '{HUMAN_WORKER}'
        OR len(list_filter(coalesce(tools, []),
                           lambda t: t.name = '{ESCALATION_TOOL}' AND t.status = 'OK')) > 0
        THEN 'handed_to_person'
      WHEN outcome = 'OK' THEN 'resolved'
      WHEN outcome = 'REFUSED' OR starts_with(outcome, 'RESOURCE_EXHAUSTED') THEN 'refused'
      ELSE 'failed'
    END"""


class ReportInputError(ValueError):
    """An export cannot be read (no such file, not Parquet, columns missing)."""


@dataclass(frozen=True, slots=True)
class Week:
    """One ISO week in UTC."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        """``YYYY-Www`` (``2026-W45``)."""
        try:
            year, number = (int(part) for part in text.upper().split("-W"))
            date.fromisocalendar(year, number, 1)  # refuses a week the year does not have
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO week (YYYY-Www)") from None
        return cls(year, number)

    @classmethod
    def containing(cls, day: date) -> Week:
        """The week ``day`` falls in."""
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @property
    def label(self) -> str:
        """``YYYY-Www``."""
        return f"{self.year}-W{self.number:02d}"

    @property
    def start(self) -> datetime:
        """Monday 00:00 UTC (inclusive)."""
        return datetime.combine(date.fromisocalendar(self.year, self.number, 1), time(), UTC)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 UTC (exclusive)."""
        return self.start + timedelta(days=7)

    @property
    def previous(self) -> Week:
        """The week before."""
        return Week.containing((self.start - timedelta(days=7)).date())

    @property
    def days(self) -> list[date]:
        """Its seven UTC days."""
        return [(self.start + timedelta(days=n)).date() for n in range(7)]


def change(this: float, last: float) -> float | None:
    """``this`` against ``last`` in percent; None when ``last`` is 0 (nothing to compare)."""
    return None if last == 0 else 100.0 * (this - last) / last


@dataclass(frozen=True, slots=True)
class Count:
    """Turns of one key, this week and last."""

    key: str
    this_week: int
    last_week: int

    @property
    def change(self) -> float | None:
        """Percent change from last week."""
        return change(self.this_week, self.last_week)


@dataclass(frozen=True, slots=True)
class Latency:
    """Turn latency of one intent, in milliseconds (linear interpolation between turns)."""

    intent: str
    turns: int
    p50_ms: float
    p95_ms: float
    last_week_p95_ms: float | None
    """None when the intent had no turns last week."""


@dataclass(frozen=True, slots=True)
class Cost:
    """Cost of one key in micro units of ``currency_code``, this week and last."""

    key: str
    """``tenant/team`` or ``backend/model``."""
    currency_code: str
    this_week: int
    last_week: int
    month_to_date: int = 0
    """Teams only: from the 1st of the month of the week's last day to the week's end."""
    budget: int | None = None
    """Teams only: the monthly limit, when known."""

    @property
    def change(self) -> float | None:
        """Percent change from last week."""
        return change(self.this_week, self.last_week)

    @property
    def budget_used(self) -> float | None:
        """Month to date over the monthly budget, in percent (None: no budget known)."""
        return None if not self.budget else 100.0 * self.month_to_date / self.budget


@dataclass(frozen=True, slots=True)
class Daily:
    """A value per day of the week per series (for the charts)."""

    days: list[str]
    series: list[tuple[str, list[float]]]


@dataclass(slots=True)
class WeeklyReport:
    """Everything the report shows; a section is empty when its export was not given."""

    week: Week
    has_audit: bool
    has_ledger: bool
    turns: Count = field(default_factory=lambda: Count("turns", 0, 0))
    by_intent: list[Count] = field(default_factory=list)
    by_tenant: list[Count] = field(default_factory=list)
    endings: list[Count] = field(default_factory=list)
    """One per ``ENDINGS``, in that order."""
    latency: list[Latency] = field(default_factory=list)
    p95_ms: tuple[float | None, float | None] = (None, None)
    """Every turn's p95, this week and last."""
    by_team: list[Cost] = field(default_factory=list)
    by_model: list[Cost] = field(default_factory=list)
    total_cost: list[Cost] = field(default_factory=list)
    """One per currency."""
    anomalies: list[Anomaly] = field(default_factory=list)
    last_week_anomalies: int = 0
    turns_per_day: Daily = field(default_factory=lambda: Daily([], []))
    """Per intent."""
    cost_per_day: Daily = field(default_factory=lambda: Daily([], []))
    """Per team (``tenant/team currency`` when there are several)."""

    @property
    def empty(self) -> bool:
        """No turn and no charge this week."""
        return self.turns.this_week == 0 and not any(c.this_week for c in self.total_cost)


def read_audit(paths: Sequence[Path], *, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The turns held by audit exports (``waybill audit export``; files or directories)."""
    try:
        files = [str(p) for p in parquet_files(paths)]
    except ValueError as exc:
        raise ReportInputError(str(exc)) from None
    try:
        raw = con.read_parquet(files, union_by_name=True)
    except duckdb.Error as exc:
        raise ReportInputError(f"cannot read the audit exports: {exc}") from None
    missing = [c for c in (*AUDIT_COLUMNS, "outcome") if c not in raw.columns]
    if missing:
        raise ReportInputError(f"not an audit export: missing columns {', '.join(missing)}")
    return raw


def read_ledger(
    paths: Sequence[Path], *, con: duckdb.DuckDBPyConnection
) -> duckdb.DuckDBPyRelation:
    """The charges held by ledger journal exports."""
    try:
        return read_parquet(paths, con=con)
    except ValueError as exc:
        raise ReportInputError(str(exc)) from None


def _int(value: object) -> int:
    """A count or sum DuckDB returned (None: nothing to count)."""
    if value is None:
        return 0
    if not isinstance(value, int | Decimal):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return int(value)


def _float(value: object) -> float | None:
    """A quantile DuckDB returned (None: no rows)."""
    if value is None:
        return None
    if not isinstance(value, int | float | Decimal):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _counts(
    con: duckdb.DuckDBPyConnection, key: str, week: Week, *, order: Sequence[str] = ()
) -> list[Count]:
    """Turns per ``key`` (SQL over ``turns``), this week and last, most this week first."""
    sql = f"""
        SELECT CAST({key} AS VARCHAR) AS k,
               count(*) FILTER (WHERE time >= $start) AS this_week,
               count(*) FILTER (WHERE time < $start) AS last_week
        FROM turns WHERE time >= $before AND time < $end
        GROUP BY k ORDER BY this_week DESC, last_week DESC, k
    """  # noqa: S608 - fixed expressions
    found = {
        str(k): Count(str(k) or "(none)", _int(this), _int(last))
        for k, this, last in con.execute(
            sql, {"start": week.start, "before": week.previous.start, "end": week.end}
        ).fetchall()
    }
    if order:
        return [found.get(name, Count(name, 0, 0)) for name in order]
    return list(found.values())


def _audit(con: duckdb.DuckDBPyConnection, report: WeeklyReport) -> None:
    week = report.week
    (report.turns,) = _counts(con, "'turns'", week) or [Count("turns", 0, 0)]
    report.by_intent = _counts(con, "intent", week)
    report.by_tenant = _counts(con, "tenant_id", week)
    report.endings = _counts(con, "ending", week, order=ENDINGS)
    window = {"start": week.start, "before": week.previous.start, "end": week.end}
    latency = con.execute(
        """
        SELECT coalesce(nullif(intent, ''), '(none)') AS k,
               count(*) FILTER (WHERE time >= $start),
               quantile_cont(latency_us, 0.5) FILTER (WHERE time >= $start) / 1000.0,
               quantile_cont(latency_us, 0.95) FILTER (WHERE time >= $start) / 1000.0,
               quantile_cont(latency_us, 0.95) FILTER (WHERE time < $start) / 1000.0
        FROM turns WHERE time >= $before AND time < $end
        GROUP BY k HAVING count(*) FILTER (WHERE time >= $start) > 0
        ORDER BY 2 DESC, k
        """,
        window,
    ).fetchall()
    report.latency = [
        Latency(str(k), _int(n), _float(p50) or 0.0, _float(p95) or 0.0, _float(last))
        for k, n, p50, p95, last in latency
    ]
    ((this_p95, last_p95),) = con.execute(
        """
        SELECT quantile_cont(latency_us, 0.95) FILTER (WHERE time >= $start) / 1000.0,
               quantile_cont(latency_us, 0.95) FILTER (WHERE time < $start) / 1000.0
        FROM turns WHERE time >= $before AND time < $end
        """,
        window,
    ).fetchall()
    report.p95_ms = (_float(this_p95), _float(last_p95))
    per_day = con.execute(
        f"""
        SELECT coalesce(nullif(intent, ''), '(none)'), {_UTC_DAY} AS day, count(*)
        FROM turns WHERE time >= $start AND time < $end GROUP BY ALL
        """,  # noqa: S608 - a fixed expression
        {"start": week.start, "end": week.end},
    ).fetchall()
    report.turns_per_day = _daily(week, [(str(k), d, float(_int(n))) for k, d, n in per_day])


def _daily(week: Week, points: Sequence[tuple[str, object, float]]) -> Daily:
    index = {day: i for i, day in enumerate(week.days)}
    series: dict[str, list[float]] = {}
    for name, day, value in points:
        if isinstance(day, date) and day in index:
            series.setdefault(name, [0.0] * 7)[index[day]] += value
    ordered = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    return Daily([d.isoformat() for d in week.days], ordered)


def _costs(
    con: duckdb.DuckDBPyConnection, key: str, week: Week, month_start: datetime
) -> list[Cost]:
    sql = f"""
        SELECT {key} AS k, currency_code,
               coalesce(sum(cost_micro_units) FILTER (WHERE time >= $start), 0)::BIGINT,
               coalesce(sum(cost_micro_units) FILTER (WHERE time >= $before
                                                        AND time < $start), 0)::BIGINT,
               coalesce(sum(cost_micro_units) FILTER (WHERE time >= $month), 0)::BIGINT
        FROM charges WHERE time >= least($before, $month) AND time < $end
        GROUP BY ALL ORDER BY 3 DESC, 4 DESC, k, currency_code
    """  # noqa: S608 - fixed expressions
    params = {
        "start": week.start,
        "before": week.previous.start,
        "end": week.end,
        "month": month_start,
    }
    return [
        Cost(str(k), str(currency), _int(this), _int(last), _int(month))
        for k, currency, this, last, month in con.execute(sql, params).fetchall()
        if _int(this) or _int(last)
    ]


def _month_start(week: Week) -> datetime:
    """The 1st of the month of the week's Sunday: where its month to date starts."""
    return (week.end - timedelta(days=1)).replace(day=1)


def _ledger(
    con: duckdb.DuckDBPyConnection,
    journal: duckdb.DuckDBPyRelation,
    report: WeeklyReport,
    budgets: Mapping[tuple[str, str], int],
) -> None:
    week = report.week
    month_start = _month_start(week)
    teams = _costs(con, "tenant_id || '/' || team_id", week, month_start)
    report.by_team = []
    for c in teams:
        tenant, _, team = c.key.partition("/")
        budget = budgets.get((tenant, team))
        report.by_team.append(
            Cost(c.key, c.currency_code, c.this_week, c.last_week, c.month_to_date, budget)
        )
    report.by_model = [
        Cost(c.key, c.currency_code, c.this_week, c.last_week)
        for c in _costs(con, "model", week, month_start)
    ]
    report.total_cost = [
        Cost("total", c.currency_code, c.this_week, c.last_week, c.month_to_date)
        for c in _costs(con, "'total'", week, month_start)
    ]
    for by in ("team", "model"):
        report.anomalies.extend(anomalies(journal, by=by, start=week.start, end=week.end))
        report.last_week_anomalies += len(
            anomalies(journal, by=by, start=week.previous.start, end=week.start)
        )
    report.anomalies.sort(key=lambda a: (a.day, a.tenant_id, a.dimension, a.key))
    currencies = {c.currency_code for c in report.by_team}
    per_day = con.execute(
        f"""
        SELECT tenant_id, team_id, currency_code, {_UTC_DAY} AS day,
               sum(cost_micro_units)::BIGINT
        FROM charges WHERE time >= $start AND time < $end GROUP BY ALL
        """,  # noqa: S608 - a fixed expression
        {"start": week.start, "end": week.end},
    ).fetchall()
    report.cost_per_day = _daily(
        week,
        [
            (
                team_label(str(tenant), str(team), str(currency), several=len(currencies) > 1),
                day,
                _int(cost) / 1e6,
            )
            for tenant, team, currency, day, cost in per_day
        ],
    )


def teams(
    con: duckdb.DuckDBPyConnection, journal: duckdb.DuckDBPyRelation, week: Week
) -> list[tuple[str, str]]:
    """The (tenant, team) pairs charged in ``week`` or the week before: whose budgets the
    report needs."""
    journal.create_view("journal_export", replace=True)
    found = con.execute(
        "SELECT DISTINCT tenant_id, team_id FROM journal_export"
        " WHERE time >= $before AND time < $end ORDER BY ALL",
        {"before": week.previous.start, "end": week.end},
    ).fetchall()
    return [(str(tenant), str(team)) for tenant, team in found]


def team_label(tenant: str, team: str, currency: str, *, several: bool) -> str:
    """A team's name in the cost chart (with its currency when the week had several)."""
    return f"{tenant}/{team} {currency}" if several else f"{tenant}/{team}"


def weekly_report(
    week: Week,
    *,
    con: duckdb.DuckDBPyConnection,
    audit: duckdb.DuckDBPyRelation | None,
    journal: duckdb.DuckDBPyRelation | None,
    budgets: Mapping[tuple[str, str], int] | None = None,
    step: Callable[[str], None] | None = None,
) -> WeeklyReport:
    """The report of ``week`` from the turns of ``audit`` and the charges of ``journal``
    (either may be None: its sections stay empty); ``budgets``: monthly limits in micro units
    by (tenant, team); ``step`` is told each stage as it starts (progress)."""
    report = WeeklyReport(week=week, has_audit=audit is not None, has_ledger=journal is not None)
    tell = step or (lambda _: None)
    # Each export is scanned once, for the window the report reads, into a temporary table
    # that every query of its sections then reads.
    if audit is not None:
        tell("reading the turns of both weeks")
        audit.create_view("audit_export", replace=True)
        window = f"""
            CREATE OR REPLACE TEMPORARY TABLE turns AS
            SELECT *, {_ENDING} AS ending FROM audit_export
            WHERE time >= $since AND time < $end
        """  # noqa: S608 - a fixed expression
        con.execute(
            window,
            {"since": week.previous.start, "end": week.end},
        )
        tell("turns, endings and latency")
        _audit(con, report)
    if journal is not None:
        tell("reading the charges")
        journal.create_view("journal_export", replace=True)
        # Anomalies need 7 days before last week; month to date may start before that.
        since = min(week.previous.start - timedelta(days=7), _month_start(week))
        con.execute(
            "CREATE OR REPLACE TEMPORARY TABLE charges AS"
            " SELECT * FROM journal_export WHERE time >= $since AND time < $end",
            {"since": since, "end": week.end},
        )
        tell("cost, budgets and anomalies")
        _ledger(con, con.table("charges"), report, budgets or {})
    return report
