"""``waybill shadow-report``: how a shadow candidate's tool calls compare with production's.

Reads the verdicts the workers append in shadow mode (``WAYBILL_SHADOW_LOG``, JSON lines;
``workers.shadow``) and prints, per candidate and tool, how many calls were compared and
how many agreed, differed (with the fields that differed most), were invalid (with the
rules broken) or failed. Agreement is ``agree / (agree + differ + invalid)``: a candidate
that did not answer (failed, skipped) is reported apart, not counted against it.
``--svg-out`` draws agreement per tool.

Exit statuses: 0 the report was made (and every candidate reached ``--min-agreement``),
1 a candidate fell below ``--min-agreement``, 2 usage error (no such log, a line that is
not a verdict, an empty log).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cli.charts import grouped_bars
from workers.shadow import VERDICTS

EXIT_OK = 0
EXIT_BELOW = 1
EXIT_USAGE = 2
COMPARED = ("agree", "differ", "invalid")


@dataclass
class Tally:
    """The verdicts of one candidate on one tool."""

    verdicts: Counter[str] = field(default_factory=Counter)
    fields: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)

    @property
    def compared(self) -> int:
        """Calls the candidate answered."""
        return sum(self.verdicts[v] for v in COMPARED)

    @property
    def agreement(self) -> float | None:
        """Share of answered calls with production's arguments (None: none answered)."""
        return self.verdicts["agree"] / self.compared if self.compared else None

    def add(self, record: Mapping[str, Any]) -> None:
        """Count one verdict."""
        self.verdicts[str(record["verdict"])] += 1
        self.fields.update(str(f) for f in record.get("fields") or [])
        self.rules.update(str(r) for r in record.get("rule_ids") or [])

    def merge(self, other: Tally) -> None:
        """Add another tally's counts."""
        self.verdicts.update(other.verdicts)
        self.fields.update(other.fields)
        self.rules.update(other.rules)


class ReportError(ValueError):
    """The log cannot be read as verdicts."""


def tally(lines: Iterable[str]) -> dict[str, dict[str, Tally]]:
    """Verdicts by candidate, then tool."""
    found: dict[str, dict[str, Tally]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            candidate, tool = str(record["candidate"]), str(record["tool"])
            if record["verdict"] not in VERDICTS:
                raise ValueError(record["verdict"])
        except (ValueError, KeyError, TypeError):
            raise ReportError(f"line {n} is not a shadow verdict") from None
        found.setdefault(candidate, {}).setdefault(tool, Tally()).add(record)
    return found


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``shadow-report`` and its options."""
    parser = sub.add_parser(
        "shadow-report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="how a shadow candidate's tool calls agree with production's",
        description=__doc__,
    )
    parser.add_argument(
        "log",
        type=Path,
        nargs="?",
        default=Path(".waybill/shadow/verdicts.jsonl"),
        help="verdicts (JSON lines; default: .waybill/shadow/verdicts.jsonl)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--min-agreement",
        type=float,
        metavar="FRACTION",
        help="exit 1 when a candidate's agreement is below this (0..1)",
    )
    parser.add_argument("--svg-out", type=Path, help="write agreement per tool as an SVG chart")


def _summary(tools: Mapping[str, Tally]) -> dict[str, Any]:
    total = Tally()
    for t in tools.values():
        total.merge(t)

    def row(t: Tally) -> dict[str, Any]:
        return {
            "compared": t.compared,
            **{v: t.verdicts[v] for v in VERDICTS},
            "agreement": t.agreement,
            "fields": dict(t.fields.most_common(5)),
            "rule_ids": dict(t.rules.most_common(5)),
        }

    return {"overall": row(total), "tools": {name: row(t) for name, t in sorted(tools.items())}}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print(report: Mapping[str, Mapping[str, Any]], out: TextIO) -> None:
    for candidate, summary in report.items():
        overall = summary["overall"]
        print(
            f"candidate {candidate}: agreement {_pct(overall['agreement'])} "
            f"of {overall['compared']} calls answered "
            f"({overall['failed']} failed, {overall['skipped']} skipped)",
            file=out,
        )
        print(
            f"  {'tool':<20} {'answered':>8} {'agree':>6} {'differ':>6} {'invalid':>7} "
            f"{'failed':>6} {'agreement':>9}  most often",
            file=out,
        )
        for tool, row in summary["tools"].items():
            often = ", ".join(f"{k} x{v}" for k, v in {**row["fields"], **row["rule_ids"]}.items())
            print(
                f"  {tool:<20} {row['compared']:>8} {row['agree']:>6} {row['differ']:>6} "
                f"{row['invalid']:>7} {row['failed']:>6} {_pct(row['agreement']):>9}  {often}",
                file=out,
            )


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Print the report; the exit status."""
    if args.min_agreement is not None and not 0 <= args.min_agreement <= 1:
        print("shadow-report: --min-agreement must be between 0 and 1", file=err)
        return EXIT_USAGE
    try:
        with args.log.open(encoding="utf-8") as lines:
            found = tally(lines)
    except OSError as exc:
        print(f"shadow-report: cannot read {args.log}: {exc.strerror}", file=err)
        return EXIT_USAGE
    except ReportError as exc:
        print(f"shadow-report: {args.log}: {exc}", file=err)
        return EXIT_USAGE
    if not found:
        print(f"shadow-report: {args.log} holds no verdicts yet", file=err)
        return EXIT_USAGE
    report = {candidate: _summary(tools) for candidate, tools in sorted(found.items())}
    if args.json:
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        _print(report, out)
    if args.svg_out is not None:
        tools = sorted({tool for summary in report.values() for tool in summary["tools"]})
        groups = [
            (
                tool,
                [summary["tools"].get(tool, {}).get("agreement") for summary in report.values()],
            )
            for tool in tools
        ]
        args.svg_out.parent.mkdir(parents=True, exist_ok=True)
        args.svg_out.write_text(
            grouped_bars(groups, list(report), title="Shadow agreement with production, by tool")
        )
        print(f"chart: {args.svg_out}", file=err)
    below = [
        c
        for c, summary in report.items()
        if args.min_agreement is not None
        and (summary["overall"]["agreement"] or 0.0) < args.min_agreement
    ]
    if below:
        print(
            f"shadow-report: below {_pct(args.min_agreement)} agreement: {', '.join(below)}",
            file=err,
        )
        return EXIT_BELOW
    return EXIT_OK
