"""``waybill report weekly``: the weekly ops review, written as HTML and Markdown.

Reads the Parquet exports of the audit log (``--audit``, as ``waybill audit export`` writes
them) and of the ledger's journal (``--ledger``, as ``waybill costs --from-ledger`` writes
them), or exports them first (``--from-audit DIR``: verify and export the audit log in DIR;
``--from-ledger``: the ledger's own store; both exports are kept in ``OUT/exports/``), and
writes ``OUT/weekly-YYYY-Www.html`` (inline SVG charts, a table per section) and
``OUT/weekly-YYYY-Www.md`` (headline numbers, what changed, anomalies). ``--json`` also
prints every figure as JSON. See docs/weekly-report.md for what each number means.

The week is ``--week YYYY-Www`` (ISO, UTC) or the ISO week holding ``--end DATE``; by default
the last complete week. Budgets (monthly limits in micro units): ``--budgets FILE``, JSON
``{"tenant/team": micro_units}``; else, with ``--from-ledger``, each team's limit in the ledger's
store as it stands now (the ledger's default where a team has none); else none are shown.

Exit statuses: 0 the report was written, 1 anomalies were found and ``--fail-on-anomaly`` was
given (the report is written all the same), 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ledger.settings import LedgerSettings
    from runtime.progress import Progress
    from runtime.reports.weekly import Week, WeeklyReport

EXIT_OK = 0
EXIT_ANOMALY = 1
EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``report`` and its subcommands."""
    report = sub.add_parser(
        "report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="reports people read without writing SQL (weekly ops review)",
        description=__doc__,
    )
    kinds = report.add_subparsers(dest="report_kind", metavar="KIND", required=True)
    weekly = kinds.add_parser(
        "weekly",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="one ISO week against the week before: volume, endings, cost, latency, anomalies",
        description=__doc__,
    )
    weekly.add_argument(
        "--ledger", type=Path, nargs="+", default=[], metavar="PARQUET", help="journal exports"
    )
    weekly.add_argument(
        "--audit", type=Path, nargs="+", default=[], metavar="PARQUET", help="audit exports"
    )
    weekly.add_argument(
        "--from-ledger", action="store_true", help="export the ledger's own store first"
    )
    weekly.add_argument(
        "--from-audit", type=Path, metavar="DIR", help="verify and export this audit log first"
    )
    when = weekly.add_mutually_exclusive_group()
    when.add_argument("--week", metavar="YYYY-Www", help="the ISO week (UTC)")
    when.add_argument(
        "--end", type=date.fromisoformat, metavar="DATE", help="the ISO week holding this date"
    )
    weekly.add_argument(
        "--budgets", type=Path, metavar="FILE", help='JSON {"tenant/team": monthly micro units}'
    )
    weekly.add_argument(
        "--out",
        type=Path,
        default=Path(".waybill/reports"),
        metavar="DIR",
        help="where the report goes (default: .waybill/reports)",
    )
    weekly.add_argument("--json", action="store_true", help="also print the figures as JSON")
    weekly.add_argument(
        "--fail-on-anomaly", action="store_true", help="exit 1 when the week has an anomaly"
    )
    weekly.add_argument(
        "--no-progress", action="store_true", help="no progress lines on standard error"
    )


def _week(args: argparse.Namespace, today: date) -> Week:
    from runtime.reports.weekly import Week

    if args.week:
        return Week.parse(args.week)
    if args.end:
        return Week.containing(args.end)
    return Week.containing(today - timedelta(days=7))


def _budgets(path: Path) -> dict[tuple[str, str], int]:
    document = json.loads(path.read_text())
    if not isinstance(document, dict):
        raise ValueError("budgets must be a JSON object")
    budgets: dict[tuple[str, str], int] = {}
    for key, value in document.items():
        tenant, _, team = str(key).partition("/")
        if not tenant or not team or type(value) is not int or value < 0:
            raise ValueError(f'budgets: {key!r}: want "tenant/team": non-negative micro units')
        budgets[(tenant, team)] = value
    return budgets


@contextmanager
def _bar(label: str, unit: str, *, err: TextIO, shown: bool) -> Iterator[Progress]:
    """A progress bar on ``err``, or nothing shown."""
    if not shown:
        yield lambda done, total: None
        return
    from runtime.progress import bar

    with bar(label, unit=unit, out=err) as show:
        yield show


def _export_audit(directory: Path, target: Path, *, err: TextIO, shown: bool) -> None:
    """Verify the audit log in ``directory``, then export it to ``target``."""
    from runtime.audit.export import export_parquet
    from runtime.audit.verify import verify

    if not directory.is_dir():
        raise ValueError(f"{directory}: no such directory")
    with _bar("verify audit log", "MiB", err=err, shown=shown) as show:
        result = verify(directory, progress=show)
    if not result.ok:
        raise ValueError(
            f"the audit log's chain is broken ({result.problem}): run waybill audit verify"
        )
    # A torn last line (a crash during a write) is no tampering: leave it out.
    torn = result.torn is not None
    with _bar("export audit log", "segments", err=err, shown=shown) as show:
        export_parquet(directory, target, skip_torn_tail=torn, progress=show)


def _usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the inputs asked for, if anything."""
    if (args.from_audit and args.audit) or (args.from_ledger and args.ledger):
        return "give --audit or --from-audit, --ledger or --from-ledger, not both"
    if not (args.audit or args.from_audit or args.ledger or args.from_ledger):
        return "give an audit export, a ledger export, or both"
    return None


@dataclass(frozen=True, slots=True)
class _Inputs:
    audit: list[Path]
    ledger: list[Path]
    ledger_settings: LedgerSettings | None
    """Set when the ledger's store was exported: its budgets can be read too."""


def _export_ledger(target: Path, *, err: TextIO, shown: bool) -> LedgerSettings:
    """Export the ledger's store to ``target``; the settings it was read with."""
    import asyncio

    from ledger.export import export
    from ledger.settings import LedgerSettings

    settings = LedgerSettings.from_env()
    with _bar("export ledger", "rows", err=err, shown=shown) as show:
        asyncio.run(export(settings, target, progress=show))
    return settings


def _exports(args: argparse.Namespace, err: TextIO, say: Callable[[str], None]) -> _Inputs:
    """The audit and ledger Parquet files, exported first where asked."""
    inputs = _Inputs(list(args.audit), list(args.ledger), None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    exports = args.out / "exports"
    if args.from_audit:
        target = exports / f"audit-{stamp}.parquet"
        say(f"exporting the audit log in {args.from_audit} to {target}")
        _export_audit(args.from_audit, target, err=err, shown=not args.no_progress)
        inputs = replace(inputs, audit=[target])
    if args.from_ledger:
        target = exports / f"ledger-{stamp}.parquet"
        say(f"exporting the ledger's charges to {target}")
        settings = _export_ledger(target, err=err, shown=not args.no_progress)
        inputs = replace(inputs, ledger=[target], ledger_settings=settings)
    return inputs


def _ledger_budgets(
    settings: LedgerSettings, pairs: list[tuple[str, str]], week: Week
) -> dict[tuple[str, str], int]:
    import asyncio

    from ledger.export import budgets

    return asyncio.run(budgets(settings, pairs, now=week.end - timedelta(microseconds=1)))


def run(
    args: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    today: Callable[[], date] = lambda: datetime.now(UTC).date(),
) -> int:
    """Write the report; the exit status."""
    import duckdb

    from runtime.audit.verify import UnreadableLog
    from runtime.reports.weekly import (
        ReportInputError,
        read_audit,
        read_ledger,
        teams,
        weekly_report,
    )
    from runtime.settings import SettingsError

    def say(line: str) -> None:
        if not args.no_progress:
            print(f"report: {line}", file=err, flush=True)

    try:
        week = _week(args, today())
        problem = _usage(args)
        if problem is not None:
            raise ValueError(problem)
        budgets = _budgets(args.budgets) if args.budgets else {}
    except (OSError, ValueError) as exc:
        print(f"report: {exc}", file=err)
        return EXIT_USAGE
    try:
        inputs = _exports(args, err, say)
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            audit = read_audit(inputs.audit, con=con) if inputs.audit else None
            journal = read_ledger(inputs.ledger, con=con) if inputs.ledger else None
            if journal is not None and inputs.ledger_settings is not None and not args.budgets:
                say("reading the teams' budgets from the ledger")
                pairs = teams(con, journal, week)
                budgets = _ledger_budgets(inputs.ledger_settings, pairs, week)
            report = weekly_report(
                week,
                con=con,
                audit=audit,
                journal=journal,
                budgets=budgets,
                step=lambda stage: say(f"{week.label}: {stage}"),
            )
    except (ReportInputError, UnreadableLog, SettingsError, ValueError, OSError) as exc:
        print(f"report: {exc}", file=err)
        return EXIT_USAGE
    except duckdb.Error as exc:
        print(f"report: cannot read the exports: {exc}", file=err)
        return EXIT_USAGE
    say("writing the report")
    _write(report, args, out=out, err=err)
    if report.anomalies and args.fail_on_anomaly:
        print(f"report: {len(report.anomalies)} anomalies in {week.label}", file=err)
        return EXIT_ANOMALY
    return EXIT_OK


def _write(report: WeeklyReport, args: argparse.Namespace, *, out: TextIO, err: TextIO) -> None:
    from cli import weekly_render

    week = report.week
    args.out.mkdir(parents=True, exist_ok=True)
    page = args.out / f"weekly-{week.label}.html"
    summary = args.out / f"weekly-{week.label}.md"
    page.write_text(weekly_render.html(report))
    summary.write_text(weekly_render.markdown(report))
    if report.empty:
        print(
            f"report: no turns and no charges in {week.label}"
            f" ({week.start.date()} to {week.days[-1]}): the report says so",
            file=err,
        )
    where = out
    if args.json:
        json.dump(weekly_render.as_json(report), out, indent=2)
        out.write("\n")
        where = err
    print(f"wrote {page}", file=where)
    print(f"wrote {summary}", file=where)
