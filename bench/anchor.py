"""Waybill's model API beside today's LLM gateways (the anchor bench), in one run.

``python -m bench.anchor [--rounds 1 --duration 5 --rates 50,200,500 --targets ...]``

Runs ``../shared/bench/anchor-bench/run_all.sh`` (the stub provider, the LiteLLM proxy, the
Portkey gateway, the same open-loop load for every target, target after target) with two
more targets: ``waybill`` (the gateway's model API with every governance step on: key,
rate limits, input guardrail, ledger reservation and commit, audit) and
``waybill-noguard`` (the same without the input guardrail). Each is started fresh per
round by ``bench.model_api_target`` in one run directory whose demo key the load uses.

Then it writes ``summary.md`` (the anchor bench's own report) and ``anchor.svg`` (p95
against the offered rate, one line per target, log scale) into the run's output folder and
prints where they are. Flags it does not know go to the anchor bench's runner unchanged.

Exit codes: 0 measured; 1 the anchor bench failed; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from html import escape
from pathlib import Path

from cli import discovery
from cli.launcher import TENANTS
from gateway import local_keys
from runtime import paths

REPO = paths.repo_root()
ANCHOR = REPO.parent / "shared" / "bench" / "anchor-bench"
DEFAULT_TARGETS = "direct,waybill,waybill-noguard,portkey,litellm,direct2"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def target_command(run_dir: Path, *, guardrails: bool) -> str:
    """The ``--target-cmd`` of a Waybill target (placeholders filled by the runner)."""
    python = shlex.quote(sys.executable)
    repo = shlex.quote(str(REPO))
    flags = "" if guardrails else " --no-guardrails"
    return (
        f"cd {repo} && PYTHONPATH={repo}:{repo}/gen exec {python} -m bench.model_api_target"
        f" --run-dir {shlex.quote(str(run_dir))} --port {{port}} --upstream {{stub_base}}{flags}"
    )


COLOURS = ("#1b6ac9", "#d9822b", "#2e8b57", "#c23030", "#7b4fb0", "#777777", "#b8860b")
WIDTH, HEIGHT, PAD = 640, 380, 60


def cells(results: Path) -> dict[str, dict[float, float]]:
    """p95 (non-streaming) per target and offered rate, the median over rounds."""
    found: dict[str, dict[float, list[float]]] = {}
    for line in results.read_text().splitlines():
        row = json.loads(line)
        if row.get("stream") or row.get("p95_ms") is None or "label" not in row:
            continue
        found.setdefault(row["label"], {}).setdefault(float(row["rate"]), []).append(
            float(row["p95_ms"])
        )
    return {
        label: {rate: sorted(v)[len(v) // 2] for rate, v in sorted(rates.items())}
        for label, rates in found.items()
    }


def chart(results: Path, out: Path) -> bool:
    """Draw p95 against the offered rate, one line per target, on a log scale (a target
    that cannot keep up is seconds above the rest); False when there is nothing to draw."""
    lines = cells(results)
    points = [ms for rates in lines.values() for ms in rates.values() if ms > 0]
    rates = sorted({r for v in lines.values() for r in v})
    if not points or not rates:
        return False
    lo, hi = math.log10(min(points) / 1.5), math.log10(max(points) * 1.5)
    x0, x1, y0, y1 = PAD, WIDTH - 150, HEIGHT - PAD, PAD // 2

    def x(rate: float) -> float:
        i = rates.index(rate)
        return x0 + (x1 - x0) * (i / max(1, len(rates) - 1))

    def y(ms: float) -> float:
        return y0 - (math.log10(max(ms, 1e-3)) - lo) / (hi - lo) * (y0 - y1)

    parts = [
        f'<text x="{x0}" y="18" font-weight="bold">p95 latency (ms, log scale) against '
        "offered load (req/s), one hop, non-streaming</text>",
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>',
    ]
    for decade in range(math.floor(lo), math.ceil(hi) + 1):
        ms = 10.0**decade
        if lo <= decade <= hi:
            parts.append(
                f'<line x1="{x0}" y1="{y(ms):.1f}" x2="{x1}" y2="{y(ms):.1f}" stroke="#eee"/>'
            )
            parts.append(f'<text x="{x0 - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:g}</text>')
    for rate in rates:
        parts.append(f'<text x="{x(rate):.1f}" y="{y0 + 16}" text-anchor="middle">{rate:g}</text>')
    for n, (label, by_rate) in enumerate(sorted(lines.items())):
        colour = COLOURS[n % len(COLOURS)]
        path = " ".join(f"{x(r):.1f},{y(ms):.1f}" for r, ms in by_rate.items())
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.extend(
            f'<circle cx="{x(r):.1f}" cy="{y(ms):.1f}" r="3" fill="{colour}"/>'
            for r, ms in by_rate.items()
        )
        parts.append(
            f'<text x="{x1 + 12}" y="{y1 + 16 + 18 * n}" fill="{colour}">{escape(label)}</text>'
        )
    out.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" '
        f'fill="white"/>{"".join(parts)}</svg>\n'
    )
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.anchor",
        description=__doc__.split("\n\n")[0],
        epilog="Other flags (--rounds, --duration, --rates, --stream-rates ...) go to the "
        "anchor bench's runner.",
    )
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help="comma list, in run order")
    parser.add_argument(
        "--root", type=Path, help="the anchor bench's folder (default: a new temporary one)"
    )
    parser.add_argument("--run-id", default="waybill-anchor", help="the run's results folder")
    args, rest = parser.parse_known_args(argv)
    if not (ANCHOR / "run_all.sh").exists():
        print(f"the anchor bench is not at {ANCHOR}", file=sys.stderr)
        return EXIT_USAGE
    root = args.root or Path(tempfile.mkdtemp(prefix="anchor-"))
    run_dir = root / "waybill-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    key = local_keys.ensure(
        store=run_dir / discovery.API_KEYS_FILE,
        clients=run_dir / discovery.CREDENTIALS_FILE,
        tenants=TENANTS,
    )[0].api_key
    out_dir = root / "results"
    run_id = args.run_id
    command = ["bash", str(ANCHOR / "run_all.sh"), "--targets", args.targets]
    command += ["--out-dir", str(out_dir), "--run-id", run_id]
    for name, guardrails in (("waybill", True), ("waybill-noguard", False)):
        command += ["--target-cmd", f"{name}={target_command(run_dir, guardrails=guardrails)}"]
        command += ["--target-key", f"{name}={key}", "--target-model", f"{name}=gpt-4o-mini"]
    command += rest
    print(f"anchor bench in {root} (progress below; results in {out_dir})", flush=True)
    done = subprocess.run(command, env={**os.environ, "ANCHOR_BENCH_ROOT": str(root)}, check=False)
    if done.returncode != 0:
        return EXIT_FAILED
    results = out_dir / run_id / "results.jsonl"
    if not results.exists():
        print("the anchor bench wrote no results", file=sys.stderr)
        return EXIT_FAILED
    summary = results.with_name("summary.md")
    subprocess.run(
        [sys.executable, str(ANCHOR / "report.py"), str(results), "--md", str(summary)],
        check=False,
    )
    svg = results.with_name("anchor.svg")
    if chart(results, svg):
        print(f"wrote {svg}")
    print(f"wrote {summary}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
