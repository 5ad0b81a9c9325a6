"""Waybill's model API beside today's LLM gateways (the anchor bench), in one run.

``python -m bench.anchor [--rounds 1 --duration 5 --rates 50,200,500 --targets ...]``

Runs ``../shared/bench/anchor-bench/run_all.sh`` (the stub provider, the LiteLLM proxy, the
Portkey gateway, the same open-loop load for every target, target after target) with two
more targets: ``waybill`` (the gateway's model API with every governance step on: key,
rate limits, input guardrail, ledger reservation and commit, audit) and
``waybill-noguard`` (the same without the input guardrail). Each is started fresh per
round by ``bench.model_api_target`` in one run directory whose demo key the load uses.

Then it writes ``summary.md`` (the anchor bench's own report) and ``anchor.svg`` (p50, p95
and p99 against the offered rate, one panel per target) into the run's output folder and
prints where they are. Flags it does not know go to the anchor bench's runner unchanged.

Exit codes: 0 measured; 1 the anchor bench failed; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import plot
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


def chart(results: Path, out: Path) -> bool:
    """Draw every load cell of ``results`` (medians over rounds); False when there are none."""
    cells: dict[tuple[str, float], list[dict[str, float]]] = {}
    for line in results.read_text().splitlines():
        row = json.loads(line)
        if "p50_ms" not in row or row.get("p50_ms") is None:
            continue
        name = row["label"] + (" (stream: first chunk)" if row.get("stream") else "")
        key = "ttfc_" if row.get("stream") else ""
        cells.setdefault((name, float(row["rate"])), []).append(
            {
                "p50_ms": row.get(f"{key}p50_ms") or 0.0,
                "p95_ms": row.get(f"{key}p95_ms") or 0.0,
                "p99_ms": row.get(f"{key}p99_ms") or 0.0,
                "errors": row.get("errors", 0),
            }
        )
    runs: dict[str, list[dict[str, Any]]] = {}
    for (name, rate), rows in sorted(cells.items()):
        middle = sorted(rows, key=lambda r: r["p95_ms"])[len(rows) // 2]
        runs.setdefault(name, []).append({**middle, "rate": rate, "scenario": name})
    if not runs:
        return False
    out.write_text(plot.render(runs))
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
    run_id = "waybill-anchor"
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
        found = sorted(out_dir.rglob("results.jsonl"))
        if not found:
            print("the anchor bench wrote no results", file=sys.stderr)
            return EXIT_FAILED
        results = found[-1]
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
