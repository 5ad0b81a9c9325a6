"""``waybill costs``: what the platform cost, from the ledger's journal exported as Parquet.

Reads journal exports (Parquet files as ``ledger.reports.export_parquet`` writes them, or
directories searched for ``*.parquet``; ``--from-ledger`` writes one from the ledger's own
store first, read beside the running ledger) with DuckDB and prints requests, tokens and cost per
group (``--group-by``, default team), most expensive first, cost in major units of its
currency. The period is ``--since`` (inclusive) to
``--until`` (exclusive), UTC dates or ISO times. ``--anomalies`` also lists the days on which a
team (or ``--anomaly-by`` user, feature, model) cost at least ``--anomaly-ratio`` (3) times
its average over the 7 days before; ``--svg-out`` draws cost per day per team, anomalies
circled.

Anomalies: days without traffic count as 0 in the average, from the key's first day in the
export on; a key needs 3 days of history before it is judged (``--min-history``); a day after
a quiet week is flagged with no ratio. The export must reach 7 days before ``--since`` for the
first days of the period to have their full history.

Exit statuses: 0 the report was made, 1 anomalies were found and ``--fail-on-anomaly`` was
given, 2 usage error or unreadable input (no such file, not Parquet, not a journal export).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import duckdb

    from ledger.reports import Anomaly, ReportRow

EXIT_OK = 0
EXIT_ANOMALY = 1
EXIT_USAGE = 2


def _moment(text: str) -> datetime:
    """A UTC date (midnight) or an ISO time (UTC unless it says otherwise)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or ISO time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``costs`` and its options."""
    parser = sub.add_parser(
        "costs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="cost reports from the ledger's journal exports (Parquet)",
        description=__doc__,
    )
    parser.add_argument(
        "exports", type=Path, nargs="*", metavar="FILE", help="Parquet exports or directories"
    )
    parser.add_argument(
        "--from-ledger",
        action="store_true",
        help="export the ledger's own store first (the embedded journal in WAYBILL_LEDGER_DIR"
        " or WAYBILL_DATA_DIR, or WAYBILL_LEDGER_POSTGRES_URL) and report from that export",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where --from-ledger writes its Parquet"
        " (default .waybill/exports/costs-<time>.parquet)",
    )
    parser.add_argument("--tenant", help="only this tenant (default: every tenant)")
    parser.add_argument(
        "--since", type=_moment, metavar="DATE", help="from this UTC date or time (inclusive)"
    )
    parser.add_argument(
        "--until",
        type=_moment,
        metavar="DATE",
        help="up to this UTC date or time (exclusive: not included)",
    )
    parser.add_argument(
        "--group-by",
        type=_names,
        default=["team"],
        metavar="DIMS",
        help="comma-separated: tenant, team, feature, model, day, user (default: team)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--anomalies", action="store_true", help="also list days of anomalous cost")
    parser.add_argument(
        "--anomaly-by",
        type=_names,
        default=["team"],
        metavar="DIMS",
        help="whose daily cost to judge: team, user, feature, model (default: team)",
    )
    parser.add_argument(
        "--anomaly-ratio",
        type=float,
        default=3.0,
        metavar="X",
        help="flag a day at or above X times the trailing 7-day average (default: 3)",
    )
    parser.add_argument(
        "--min-history",
        type=int,
        default=3,
        metavar="DAYS",
        help="days of history a key needs before it is judged, 1..7 (default: 3)",
    )
    parser.add_argument(
        "--fail-on-anomaly",
        action="store_true",
        help="exit 1 when an anomaly is found (implies --anomalies)",
    )
    parser.add_argument(
        "--svg-out", type=Path, metavar="FILE", help="write cost per day per team as an SVG chart"
    )


@dataclass(frozen=True, slots=True)
class _Options:
    tenant: str | None
    since: datetime | None
    until: datetime | None
    group_by: list[str]
    anomaly_by: list[str]


def _amount(micro_units: int) -> Decimal:
    return Decimal(micro_units).scaleb(-6)


def _cost_json(micro_units: int, currency: str) -> dict[str, Any]:
    return {
        "currency_code": currency,
        "micro_units": micro_units,
        "amount": f"{_amount(micro_units):.6f}",
    }


def _cost_text(micro_units: int, currency: str) -> str:
    return f"{_amount(micro_units):,.4f} {currency}"


def _period(options: _Options) -> str:
    since = f"from {options.since.isoformat()}" if options.since else "from the first charge"
    until = f"to {options.until.isoformat()} (exclusive)" if options.until else "on"
    return f"{since} {until}"


def _totals(rows: Sequence[ReportRow]) -> dict[str, list[int]]:
    totals: dict[str, list[int]] = {}
    for row in rows:
        figures = totals.setdefault(row.currency_code, [0, 0, 0, 0])
        figures[0] += row.requests
        figures[1] += row.input_tokens
        figures[2] += row.output_tokens
        figures[3] += row.cost_micro_units
    return totals


def _anomaly_json(found: Anomaly) -> dict[str, Any]:
    return {
        "day": found.day.isoformat(),
        "tenant_id": found.tenant_id,
        "dimension": found.dimension,
        "key": found.key,
        "cost": _cost_json(found.cost_micro_units, found.currency_code),
        "trailing_average_micro_units": found.trailing_average_micro_units,
        "ratio": found.ratio,
        "history_days": found.history_days,
    }


def _report_json(
    options: _Options, rows: Sequence[ReportRow], found: Sequence[Anomaly] | None
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "tenant_id": options.tenant,
        "since": options.since.isoformat() if options.since else None,
        "until": options.until.isoformat() if options.until else None,
        "group_by": options.group_by,
        "rows": [
            {
                "keys": dict(zip(options.group_by, row.keys, strict=True)),
                "requests": row.requests,
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "cost": _cost_json(row.cost_micro_units, row.currency_code),
            }
            for row in rows
        ],
        "totals": [
            {
                "requests": requests,
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost": _cost_json(cost, currency),
            }
            for currency, (requests, tokens_in, tokens_out, cost) in sorted(_totals(rows).items())
        ],
    }
    if found is not None:
        report["anomalies"] = [_anomaly_json(a) for a in found]
    return report


def _print_table(options: _Options, rows: Sequence[ReportRow], out: TextIO) -> None:
    who = f"tenant {options.tenant}" if options.tenant else "every tenant"
    print(f"costs of {who}, {_period(options)}, by {', '.join(options.group_by)}", file=out)
    figures = [
        (
            [key or "-" for key in row.keys],
            [
                f"{row.requests:,}",
                f"{row.input_tokens:,}",
                f"{row.output_tokens:,}",
                _cost_text(row.cost_micro_units, row.currency_code),
            ],
        )
        for row in rows
    ]
    for currency, (requests, tokens_in, tokens_out, cost) in sorted(_totals(rows).items()):
        keys = ["total", *[""] * (len(options.group_by) - 1)]
        numbers = [f"{requests:,}", f"{tokens_in:,}", f"{tokens_out:,}"]
        figures.append((keys, [*numbers, _cost_text(cost, currency)]))
    headers = (options.group_by, ["requests", "input tokens", "output tokens", "cost"])
    key_widths = [
        max([len(h), *(len(keys[i]) for keys, _ in figures)]) for i, h in enumerate(headers[0])
    ]
    number_widths = [
        max([len(h), *(len(numbers[i]) for _, numbers in figures)])
        for i, h in enumerate(headers[1])
    ]

    def line(keys: Sequence[str], numbers: Sequence[str]) -> str:
        left = [k.ljust(w) for k, w in zip(keys, key_widths, strict=True)]
        right = [n.rjust(w) for n, w in zip(numbers, number_widths, strict=True)]
        return "  ".join([*left, *right])

    print(line(*headers), file=out)
    for i, (keys, numbers) in enumerate(figures):
        if i == len(rows):
            print("-" * len(line(keys, numbers)), file=out)
        print(line(keys, numbers), file=out)
    if not rows:
        print("(no charges in the period)", file=out)


def _print_anomalies(found: Sequence[Anomaly], ratio: float, out: TextIO) -> None:
    if not found:
        print(f"\nno anomalies (no day at {ratio:g}x its trailing 7-day average)", file=out)
        return
    print(f"\nanomalies: days at {ratio:g}x their trailing 7-day average or more", file=out)
    for a in found:
        times = f"{a.ratio:.1f}x" if a.ratio is not None else "after a quiet week"
        average = _cost_text(round(a.trailing_average_micro_units), a.currency_code)
        print(
            f"  {a.day.isoformat()}  {a.tenant_id} {a.dimension} {a.key or '-'}: "
            f"{_cost_text(a.cost_micro_units, a.currency_code)}"
            f" vs {average} a day over {a.history_days} days ({times})",
            file=out,
        )


def _chart(
    journal: duckdb.DuckDBPyRelation, options: _Options, found: Sequence[Anomaly] | None
) -> str:
    from cli.charts import line_chart
    from ledger.reports import cost_report

    rows = cost_report(
        journal,
        group_by=["day", "tenant", "team"],
        tenant_id=options.tenant,
        start=options.since,
        end=options.until,
    )
    tenants = {row.keys[1] for row in rows}
    currencies = {row.currency_code for row in rows}

    def name(tenant: str, team: str, currency: str) -> str:
        parts = [f"{tenant}/{team}" if len(tenants) > 1 else team]
        return " ".join([*parts, currency] if len(currencies) > 1 else parts)

    days: list[str] = []
    if rows:
        first = date.fromisoformat(min(row.keys[0] for row in rows))
        last = date.fromisoformat(max(row.keys[0] for row in rows))
        days = [(first + timedelta(n)).isoformat() for n in range((last - first).days + 1)]
    index = {day: i for i, day in enumerate(days)}
    costs: dict[str, list[float]] = {}
    for row in rows:
        line = costs.setdefault(
            name(row.keys[1], row.keys[2], row.currency_code), [0.0] * len(days)
        )
        line[index[row.keys[0]]] += float(_amount(row.cost_micro_units))
    series = sorted(costs.items(), key=lambda item: (-sum(item[1]), item[0]))
    position = {label: j for j, (label, _) in enumerate(series)}
    marks = [
        (position[label], index[a.day.isoformat()])
        for a in found or ()
        if a.dimension == "team"
        and (label := name(a.tenant_id, a.key, a.currency_code)) in position
        and a.day.isoformat() in index
    ]
    unit = next(iter(currencies)) if len(currencies) == 1 else "major units"
    who = f" ({options.tenant})" if options.tenant else ""
    return line_chart(series, days, title=f"Cost per day per team{who}", unit=unit, marks=marks)


def _export_ledger(out: Path | None, err: TextIO) -> Path | None:
    """Export the ledger's store to ``out`` (or a new file); None, said on ``err``, if the
    store cannot be read."""
    import asyncio

    from ledger.export import export
    from ledger.settings import LedgerSettings
    from runtime import paths
    from runtime.settings import SettingsError

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = out or paths.repo_root() / ".waybill" / "exports" / f"costs-{stamp}.parquet"
    try:
        settings = LedgerSettings.from_env()
        print(f"costs: exporting the ledger's charges to {target}", file=err, flush=True)
        count = asyncio.run(export(settings, target))
    except (SettingsError, OSError, ValueError) as exc:
        print(f"costs: cannot export the ledger: {exc}", file=err)
        return None
    print(f"costs: {count} charge rows exported", file=err, flush=True)
    return target


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Print the report; the exit status."""
    import duckdb

    from ledger.reports import DIMENSIONS, ExportError, anomalies, cost_report, read_parquet

    options = _Options(args.tenant, args.since, args.until, args.group_by, args.anomaly_by)
    if not options.group_by or not options.anomaly_by:
        print("costs: --group-by and --anomaly-by need at least one dimension", file=err)
        return EXIT_USAGE
    unknown = [d for d in [*options.group_by, *options.anomaly_by] if d not in DIMENSIONS]
    if unknown:
        print(
            f"costs: unknown dimension {', '.join(unknown)} (known: {', '.join(DIMENSIONS)})",
            file=err,
        )
        return EXIT_USAGE
    if "day" in options.anomaly_by:
        print("costs: --anomaly-by day: anomalies are found per day already", file=err)
        return EXIT_USAGE
    if options.since and options.until and options.since >= options.until:
        print("costs: --until must be after --since", file=err)
        return EXIT_USAGE
    if not args.anomaly_ratio > 0 or not 1 <= args.min_history <= 7:
        print("costs: --anomaly-ratio must be > 0 and --min-history in 1..7", file=err)
        return EXIT_USAGE
    want_anomalies = args.anomalies or args.fail_on_anomaly
    exports: list[Path] = list(args.exports)
    if args.from_ledger == bool(exports):
        print("costs: give Parquet exports or --from-ledger (one of them)", file=err)
        return EXIT_USAGE
    if args.from_ledger:
        written = _export_ledger(args.out, err)
        if written is None:
            return EXIT_USAGE
        exports = [written]
    try:
        with duckdb.connect() as con:
            journal = read_parquet(exports, con=con)
            rows = cost_report(
                journal,
                group_by=options.group_by,
                tenant_id=options.tenant,
                start=options.since,
                end=options.until,
            )
            found = None
            if want_anomalies:
                found = [
                    a
                    for by in options.anomaly_by
                    for a in anomalies(
                        journal,
                        by=by,
                        tenant_id=options.tenant,
                        start=options.since,
                        end=options.until,
                        ratio=args.anomaly_ratio,
                        min_history_days=args.min_history,
                    )
                ]
                found.sort(key=lambda a: (a.day, a.tenant_id, a.dimension, a.key))
            chart = _chart(journal, options, found) if args.svg_out is not None else None
    except ExportError as exc:
        print(f"costs: {exc}", file=err)
        return EXIT_USAGE
    except duckdb.Error as exc:
        print(f"costs: cannot read the exports: {exc}", file=err)
        return EXIT_USAGE
    if args.json:
        json.dump(_report_json(options, rows, found), out, indent=2)
        out.write("\n")
    else:
        _print_table(options, rows, out)
        if found is not None:
            _print_anomalies(found, args.anomaly_ratio, out)
    if chart is not None:
        args.svg_out.parent.mkdir(parents=True, exist_ok=True)
        args.svg_out.write_text(chart)
        print(f"chart: {args.svg_out}", file=err)
    if found and args.fail_on_anomaly:
        print(f"costs: {len(found)} anomal{'y' if len(found) == 1 else 'ies'} found", file=err)
        return EXIT_ANOMALY
    return EXIT_OK
