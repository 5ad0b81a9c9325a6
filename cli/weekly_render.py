"""The weekly ops report as a self-contained HTML page (inline SVG charts, a table per
section), a short Markdown summary and JSON, from a ``runtime.reports.weekly.WeeklyReport``."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape
from typing import Any

from cli.charts import grouped_bars, line_chart
from ledger.reports import Anomaly
from runtime.reports.weekly import Cost, Count, WeeklyReport, change, team_label

ENDING_NAMES = {
    "resolved": "resolved by the assistant",
    "handed_to_person": "handed to a person",
    "refused": "refused (input check, rate limit, budget)",
    "failed": "failed (unavailable, deadline, cancelled, internal)",
}


def money(micro_units: int | float, currency: str) -> str:
    """``1,234.56 USD`` (rounded to the cent)."""
    return f"{Decimal(round(micro_units)).scaleb(-6):,.2f} {currency}"


def percent_change(value: float | None) -> str:
    """``+12.5%``, ``-3.0%``, or ``new`` when there was nothing last week."""
    return "new" if value is None else f"{value:+.1f}%"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _anomaly_text(a: Anomaly) -> str:
    times = f"{a.ratio:.1f}x" if a.ratio is not None else "after a quiet week"
    average = money(a.trailing_average_micro_units, a.currency_code)
    return (
        f"{a.day.isoformat()} {a.tenant_id} {a.dimension} {a.key or '-'}: "
        f"{money(a.cost_micro_units, a.currency_code)} vs {average} a day ({times})"
    )


def headline(report: WeeklyReport) -> list[tuple[str, str, str, str]]:
    """The week-over-week table: (figure, this week, last week, change)."""
    rows: list[tuple[str, str, str, str]] = []
    if report.has_audit:
        turns = report.turns
        rows.append(
            ("turns", f"{turns.this_week:,}", f"{turns.last_week:,}", percent_change(turns.change))
        )
        for ending in report.endings:
            this = _share(ending.this_week, turns.this_week)
            last = _share(ending.last_week, turns.last_week)
            moved = "-" if this is None or last is None else f"{100 * (this - last):+.1f} pts"
            rows.append((f"share {ENDING_NAMES[ending.key]}", _pct(this), _pct(last), moved))
        this_p95, last_p95 = report.p95_ms
        moved = (
            "-"
            if this_p95 is None or last_p95 is None
            else percent_change(change(this_p95, last_p95))
        )
        rows.append(("latency p95", _ms(this_p95), _ms(last_p95), moved))
    if report.has_ledger:
        for total in report.total_cost:
            rows.append(
                (
                    f"cost ({total.currency_code})",
                    money(total.this_week, total.currency_code),
                    money(total.last_week, total.currency_code),
                    percent_change(total.change),
                )
            )
        rows.append(
            (
                "cost anomalies (3x rule)",
                str(len(report.anomalies)),
                str(report.last_week_anomalies),
                f"{len(report.anomalies) - report.last_week_anomalies:+d}",
            )
        )
    return rows


NOTABLE_CHANGE = 10.0
"""The summary lists keys that moved by at least this many percent (or appeared)."""


def _notable(this: int, last: int) -> bool:
    moved = change(this, last)
    return this != last and (moved is None or abs(moved) >= NOTABLE_CHANGE)


def _moves(counts: Sequence[Count], what: str, limit: int = 3) -> list[str]:
    moved = [c for c in counts if _notable(c.this_week, c.last_week)]
    moved.sort(key=lambda c: (-abs(c.this_week - c.last_week), c.key))
    return [
        f"{what} {c.key}: {c.last_week:,} -> {c.this_week:,} turns ({percent_change(c.change)})"
        for c in moved[:limit]
    ]


def _cost_moves(costs: Sequence[Cost], what: str, limit: int = 3) -> list[str]:
    moved = [c for c in costs if _notable(c.this_week, c.last_week)]
    moved.sort(key=lambda c: (-abs(c.this_week - c.last_week), c.key))
    return [
        f"{what} {c.key}: {money(c.last_week, c.currency_code)} ->"
        f" {money(c.this_week, c.currency_code)} ({percent_change(c.change)})"
        for c in moved[:limit]
    ]


def markdown(report: WeeklyReport) -> str:
    """The short summary: headline numbers, what changed (the three biggest moves of each kind
    by at least ``NOTABLE_CHANGE`` percent, teams at 80% of their budget), anomalies."""
    week = report.week
    lines = [
        f"# Weekly ops report {week.label}",
        "",
        f"{week.start.date().isoformat()} to {week.days[-1].isoformat()} (UTC),"
        f" against {week.previous.label}.",
        "",
    ]
    if report.empty:
        lines += [f"**No turns and no charges in {week.label}.**", ""]
    lines += ["## Headline", "", "| | this week | last week | change |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in headline(report)]
    if not report.has_audit:
        lines += ["", "No audit export: turns, endings and latency are not reported."]
    if not report.has_ledger:
        lines += ["", "No ledger export: cost, budgets and anomalies are not reported."]
    changed = [
        *_moves(report.by_intent, "intent"),
        *_moves(report.by_tenant, "tenant"),
        *_cost_moves(report.by_team, "team"),
        *_cost_moves(report.by_model, "model"),
    ]
    over = [
        f"team {c.key}: {c.budget_used:.0f}% of its monthly budget"
        f" ({money(c.month_to_date, c.currency_code)} of {money(c.budget or 0, c.currency_code)})"
        for c in report.by_team
        if c.budget_used is not None and c.budget_used >= 80
    ]
    lines += ["", "## What changed", ""]
    lines += [f"- {line}" for line in [*changed, *over]] or [
        f"- no intent, tenant, team or model moved by {NOTABLE_CHANGE:g}% or more"
    ]
    if report.has_ledger:
        lines += ["", "## Anomalies", ""]
        lines += [f"- {_anomaly_text(a)}" for a in report.anomalies] or [
            "- none (no day at 3x its trailing 7-day average)"
        ]
    return "\n".join(lines) + "\n"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    if not rows:
        return f"<p class='empty'>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _count_rows(counts: Sequence[Count]) -> list[list[str]]:
    return [
        [c.key, f"{c.this_week:,}", f"{c.last_week:,}", percent_change(c.change)] for c in counts
    ]


def _cost_rows(costs: Sequence[Cost], *, budgets: bool) -> list[list[str]]:
    rows = []
    for c in costs:
        row = [
            c.key,
            money(c.this_week, c.currency_code),
            money(c.last_week, c.currency_code),
            percent_change(c.change),
        ]
        if budgets:
            row += [
                money(c.month_to_date, c.currency_code),
                "-" if c.budget is None else money(c.budget, c.currency_code),
                "-" if c.budget_used is None else f"{c.budget_used:.1f}%",
            ]
        rows.append(row)
    return rows


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1000px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.empty { color: #777; font-style: italic; }
"""


def html(report: WeeklyReport) -> str:
    """The page: every section with its table, charts inline."""
    week = report.week
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Weekly ops report {week.label}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Weekly ops report {week.label}</h1>",
        f"<p>{week.start.date().isoformat()} to {week.days[-1].isoformat()} (UTC),"
        f" against {week.previous.label}.</p>",
    ]
    if report.empty:
        parts.append(f"<p><strong>No turns and no charges in {week.label}.</strong></p>")
    parts += [
        '<h2 id="week-over-week">Week over week</h2>',
        _table(["figure", "this week", "last week", "change"], headline(report), "no data"),
    ]
    no_audit = "no audit export given"
    parts += ['<h2 id="volume">Turns by intent and by tenant</h2>']
    if report.turns_per_day.series:
        parts.append(
            line_chart(
                report.turns_per_day.series,
                report.turns_per_day.days,
                title="Turns per day by intent",
                unit="turns",
            )
        )
    headers = ["", "this week", "last week", "change"]
    parts += [
        "<h3>By intent</h3>",
        _table(["intent", *headers[1:]], _count_rows(report.by_intent), no_audit),
        "<h3>By tenant</h3>",
        _table(["tenant", *headers[1:]], _count_rows(report.by_tenant), no_audit),
    ]
    parts.append('<h2 id="endings">Resolved, handed to a person, refused or failed</h2>')
    if report.has_audit and (report.turns.this_week or report.turns.last_week):
        parts.append(
            grouped_bars(
                [
                    (
                        e.key.replace("_", " "),
                        [
                            _share(e.this_week, report.turns.this_week),
                            _share(e.last_week, report.turns.last_week),
                        ],
                    )
                    for e in report.endings
                ],
                [week.label, week.previous.label],
                title="Share of turns by ending (%)",
            )
        )
    ending_rows = [
        [
            ENDING_NAMES[e.key],
            f"{e.this_week:,}",
            _pct(_share(e.this_week, report.turns.this_week)),
            f"{e.last_week:,}",
            _pct(_share(e.last_week, report.turns.last_week)),
        ]
        for e in report.endings
    ]
    parts.append(
        _table(["ending", "this week", "share", "last week", "share"], ending_rows, no_audit)
    )
    no_ledger = "no ledger export given"
    parts.append('<h2 id="cost">Cost by team and by model</h2>')
    if report.cost_per_day.series:
        marks = []
        position = {name: j for j, (name, _) in enumerate(report.cost_per_day.series)}
        index = {day: i for i, day in enumerate(report.cost_per_day.days)}
        several = len({c.currency_code for c in report.by_team}) > 1
        for a in report.anomalies:
            name = team_label(a.tenant_id, a.key, a.currency_code, several=several)
            if a.dimension == "team" and name in position:
                marks.append((position[name], index[a.day.isoformat()]))
        currencies = {c.currency_code for c in report.by_team}
        parts.append(
            line_chart(
                report.cost_per_day.series,
                report.cost_per_day.days,
                title="Cost per day per team (anomalies circled)",
                unit=next(iter(currencies)) if len(currencies) == 1 else "major units",
                marks=marks,
            )
        )
    parts += [
        "<h3>By team, against the monthly budget</h3>",
        _table(
            [
                "tenant/team",
                "this week",
                "last week",
                "change",
                "month to date",
                "monthly budget",
                "used",
            ],
            _cost_rows(report.by_team, budgets=True),
            no_ledger if not report.has_ledger else "no charges",
        ),
        "<h3>By model</h3>",
        _table(
            ["model", "this week", "last week", "change"],
            _cost_rows(report.by_model, budgets=False),
            no_ledger if not report.has_ledger else "no charges",
        ),
    ]
    parts.append('<h2 id="latency">Latency per intent</h2>')
    latency_rows = [
        [
            row.intent,
            f"{row.turns:,}",
            _ms(row.p50_ms),
            _ms(row.p95_ms),
            _ms(row.last_week_p95_ms),
        ]
        for row in report.latency
    ]
    parts.append(
        _table(
            ["intent", "turns", "p50", "p95", "p95 last week"],
            latency_rows,
            no_audit if not report.has_audit else "no turns this week",
        )
    )
    parts.append('<h2 id="anomalies">Anomalies (3x the trailing 7-day average)</h2>')
    anomaly_rows = [
        [
            a.day.isoformat(),
            a.tenant_id,
            a.dimension,
            a.key,
            money(a.cost_micro_units, a.currency_code),
            money(a.trailing_average_micro_units, a.currency_code),
            "after a quiet week" if a.ratio is None else f"{a.ratio:.1f}x",
        ]
        for a in report.anomalies
    ]
    parts.append(
        _table(
            ["day", "tenant", "by", "key", "cost", "trailing average", "ratio"],
            anomaly_rows,
            no_ledger if not report.has_ledger else "none",
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _count_json(c: Count) -> dict[str, Any]:
    return {"key": c.key, "this_week": c.this_week, "last_week": c.last_week, "change": c.change}


def _cost_json(c: Cost) -> dict[str, Any]:
    return {
        "key": c.key,
        "currency_code": c.currency_code,
        "this_week_micro_units": c.this_week,
        "last_week_micro_units": c.last_week,
        "change": c.change,
        "month_to_date_micro_units": c.month_to_date,
        "budget_micro_units": c.budget,
        "budget_used": c.budget_used,
    }


def as_json(report: WeeklyReport) -> dict[str, Any]:
    """Every figure, for machines."""
    return {
        "week": report.week.label,
        "start": report.week.start.isoformat(),
        "end": report.week.end.isoformat(),
        "previous_week": report.week.previous.label,
        "empty": report.empty,
        "turns": _count_json(report.turns) if report.has_audit else None,
        "by_intent": [_count_json(c) for c in report.by_intent],
        "by_tenant": [_count_json(c) for c in report.by_tenant],
        "endings": {e.key: _count_json(e) for e in report.endings} or None,
        "latency": [
            {
                "intent": row.intent,
                "turns": row.turns,
                "p50_ms": row.p50_ms,
                "p95_ms": row.p95_ms,
                "last_week_p95_ms": row.last_week_p95_ms,
            }
            for row in report.latency
        ],
        "p95_ms": {"this_week": report.p95_ms[0], "last_week": report.p95_ms[1]},
        "cost_total": [_cost_json(c) for c in report.total_cost],
        "cost_by_team": [_cost_json(c) for c in report.by_team],
        "cost_by_model": [_cost_json(c) for c in report.by_model],
        "anomalies": [
            {
                "day": a.day.isoformat(),
                "tenant_id": a.tenant_id,
                "dimension": a.dimension,
                "key": a.key,
                "cost_micro_units": a.cost_micro_units,
                "trailing_average_micro_units": a.trailing_average_micro_units,
                "ratio": a.ratio,
                "currency_code": a.currency_code,
            }
            for a in report.anomalies
        ],
        "last_week_anomalies": report.last_week_anomalies if report.has_ledger else None,
    }
