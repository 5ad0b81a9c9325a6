"""Latency against load, drawn as an SVG (no plotting library needed).

``python -m bench.plot RUNS.jsonl [-o OUT.svg]`` reads the JSON lines the runs
ended with and draws p50, p95 and p99 turn latency against the offered rate,
one panel per scenario, with the error count under each point.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, PAD = 560, 320, 56
SERIES = (("p50_ms", "#1b6ac9", "p50"), ("p95_ms", "#d9822b", "p95"), ("p99_ms", "#c23030", "p99"))


def load(paths: Sequence[Path]) -> dict[str, list[dict[str, Any]]]:
    """Runs by scenario, sorted by rate (lines that are not run summaries are skipped)."""
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in paths:
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if {"scenario", "rate", "p50_ms"} <= row.keys():
                runs[row["scenario"]].append(row)
    return {name: sorted(rows, key=lambda r: r["rate"]) for name, rows in runs.items()}


def _panel(name: str, rows: list[dict[str, Any]], top: int) -> list[str]:
    rates = [float(r["rate"]) for r in rows]
    peak = max((float(r[key] or 0) for r in rows for key, _, _ in SERIES), default=1.0) or 1.0
    x0, x1 = PAD, WIDTH - PAD // 2
    y0, y1 = top + HEIGHT - PAD, top + PAD // 2

    def x(rate: float) -> float:
        lo, hi = min(rates), max(rates)
        return (x0 + x1) / 2 if hi == lo else x0 + (rate - lo) / (hi - lo) * (x1 - x0)

    def y(ms: float) -> float:
        return y0 - ms / (peak * 1.1) * (y0 - y1)

    out = [
        f'<text x="{x0}" y="{top + 20}" font-weight="bold">{escape(name)}: turn latency (ms)'
        " against offered rate (turns/s)</text>",
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>',
    ]
    for frac in (0.25, 0.5, 0.75, 1.0):
        ms = peak * 1.1 * frac
        out.append(f'<text x="{x0 - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:.0f}</text>')
        out.append(f'<line x1="{x0}" y1="{y(ms):.1f}" x2="{x1}" y2="{y(ms):.1f}" stroke="#eee"/>')
    for r in rows:
        px = x(float(r["rate"]))
        out.append(f'<text x="{px:.1f}" y="{y0 + 16}" text-anchor="middle">{r["rate"]:g}</text>')
        errors = int(r.get("errors", 0))
        colour = "#c23030" if errors else "#555"
        out.append(
            f'<text x="{px:.1f}" y="{y0 + 30}" text-anchor="middle" fill="{colour}">'
            f"{errors} err</text>"
        )
    for n, (key, colour, label) in enumerate(SERIES):
        points = [(x(float(r["rate"])), y(float(r[key] or 0))) for r in rows]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.extend(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points
        )
        out.append(f'<text x="{x1 - 110 + n * 38}" y="{top + 38}" fill="{colour}">{label}</text>')
    return out


def render(runs: dict[str, list[dict[str, Any]]]) -> str:
    """The SVG document."""
    body: list[str] = []
    for i, (name, rows) in enumerate(sorted(runs.items())):
        body.extend(_panel(name, rows, i * HEIGHT))
    height = max(1, len(runs)) * HEIGHT
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" '
        f'fill="white"/>{"".join(body)}</svg>\n'
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 drawn, 1 nothing to draw, 2 usage error."""
    parser = argparse.ArgumentParser(prog="python -m bench.plot", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="JSON-lines files of bench runs")
    parser.add_argument("-o", "--out", type=Path, help="SVG to write (default: beside the input)")
    args = parser.parse_args(argv)
    missing = [p for p in args.runs if not p.exists()]
    if missing:
        parser.error(f"no such file: {missing[0]}")
    runs = load(args.runs)
    if not runs:
        print("nothing to draw: no run summaries in the input", file=sys.stderr)
        return 1
    out: Path = args.out or args.runs[0].with_suffix(".svg")
    out.write_text(render(runs))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
