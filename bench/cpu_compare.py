"""CPU per turn and latency of two checkouts, alternated in one session.

``python -m bench.cpu_compare --before DIR --after DIR`` runs the standard bench
(``python -m bench --standard``) of each checkout in turn, ``--rounds`` times, and reads
every mesh process's CPU time from ``/proc`` at the start and the end of each run's load
(the bench's own progress lines mark them). A checkout's mesh is the one whose processes
work in its directory. It prints, per side, the median over rounds of CPU milliseconds per
turn (all services, then each), p50/p95 latency and throughput.

Why CPU per turn: on a shared 2-core machine p95 at a high rate swings by a factor of
several between identical runs, because it measures queueing; the CPU a turn costs is
stable to a few percent and says where the time went. Both figures are printed.

**Which side goes first alternates** (before-after, then after-before, ...): measured on
the development machine, the side that runs second in a round came out slower whatever
code it ran (+3% CPU on every service, even those the change did not touch, and a higher
p50), so a fixed order credited the position to the change. With an even number of
rounds each side leads equally often, and the paired line (the median over rounds of
after minus before) compares runs that ran back to back.

Exit codes: 0 measured; 1 a run failed or nothing could be read (no ``/proc``); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_SKIP_MODULES = frozenset({"bench", "bench.cpu_compare"})


def mesh_cpu(directory: Path) -> dict[str, float]:
    """CPU seconds so far of each ``python -m <service>`` process working in ``directory``,
    summed per module."""
    out: dict[str, float] = {}
    root = directory.resolve()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(os.readlink(f"/proc/{entry}/cwd")) != root:
                continue
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if b"-m" not in argv:
                continue
            module = argv[argv.index(b"-m") + 1].decode()
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue  # gone, or not ours to read
        if module in _SKIP_MODULES:
            continue
        out[module] = out.get(module, 0.0) + (int(stat[11]) + int(stat[12])) / _TICK
    return out


@dataclass
class Run:
    """One standard-bench run of one side."""

    cpu_ms_per_turn: dict[str, float] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    throughput: float = 0.0

    @property
    def total(self) -> float:
        """CPU milliseconds per turn, every service together."""
        return sum(self.cpu_ms_per_turn.values())


def run_once(
    directory: Path,
    *,
    scenario: str,
    rate: float,
    duration: float,
    warmup: float,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """One standard-bench run of the checkout in ``directory`` (RuntimeError if it fails),
    its mesh started with ``extra_env`` on top of this process's environment."""
    env = dict(os.environ) | (extra_env or {})
    env["PYTHONPATH"] = f"{directory}:{directory / 'gen'}"
    with tempfile.TemporaryDirectory(prefix="cpu-compare-") as out_dir:
        command = [
            sys.executable,
            "-m",
            "bench",
            "--standard",
            "--scenario",
            scenario,
            "--rates",
            f"{rate:g}",
            "--durations",
            f"{duration:g}",
            "--warmup",
            f"{warmup:g}",
            "--out-dir",
            out_dir,
        ]
        process = subprocess.Popen(
            command,
            cwd=directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        start: tuple[float, dict[str, float]] | None = None
        end: tuple[float, dict[str, float]] | None = None
        summary: dict[str, object] = {}
        for line in process.stdout:
            if start is None and line.startswith(f"== {scenario} at "):
                start = (time.monotonic(), mesh_cpu(directory))
            elif start is not None and end is None and line.startswith('{"scenario"'):
                end = (time.monotonic(), mesh_cpu(directory))
                summary = json.loads(line)
        if process.wait() != 0 or start is None or end is None:
            raise RuntimeError(f"the bench in {directory} failed (exit {process.returncode})")
    turns = rate * (warmup + duration)
    cpu = {module: (end[1][module] - start[1].get(module, 0.0)) * 1000 / turns for module in end[1]}
    p50, p95 = summary.get("p50_ms"), summary.get("p95_ms")
    return Run(
        cpu_ms_per_turn={k: v for k, v in cpu.items() if v > 0.005},
        p50_ms=float(p50) if isinstance(p50, (int, float)) else None,
        p95_ms=float(p95) if isinstance(p95, (int, float)) else None,
        throughput=float(summary.get("throughput", 0.0)),  # type: ignore[arg-type]
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def order(round_index: int) -> tuple[str, str]:
    """Which side runs first in a round (0-based): before in even rounds, after in odd."""
    return ("before", "after") if round_index % 2 == 0 else ("after", "before")


def paired(sides: dict[str, list[Run]]) -> str:
    """The median over rounds of after minus before: CPU per turn, p50 and p95."""
    pairs = list(zip(sides["before"], sides["after"], strict=False))

    def change(of: str) -> str:
        deltas = [
            getattr(a, of) - getattr(b, of)
            for b, a in pairs
            if getattr(a, of) is not None and getattr(b, of) is not None
        ]
        return f"{statistics.median(deltas):+.2f}" if deltas else "-"

    return (
        f"paired (median over {len(pairs)} rounds of after - before): CPU ms/turn "
        f"{change('total')}, p50 ms {change('p50_ms')}, p95 ms {change('p95_ms')}"
    )


def render(sides: dict[str, list[Run]]) -> str:
    """The comparison table: medians over rounds, per side."""
    modules = sorted({m for runs in sides.values() for r in runs for m in r.cpu_ms_per_turn})
    lines = [
        "| side | CPU ms/turn | "
        + " | ".join(modules)
        + " | p50 ms | p95 ms (each round) | throughput |",
        "|---|---|" + "---|" * len(modules) + "---|---|---|",
    ]
    for side, runs in sides.items():
        per = [_median([r.cpu_ms_per_turn.get(m, 0.0) for r in runs]) for m in modules]
        p50 = _median([r.p50_ms for r in runs])
        rounds = ", ".join(f"{r.p95_ms:.1f}" if r.p95_ms is not None else "-" for r in runs)
        lines.append(
            f"| {side} | {_median([r.total for r in runs]):.2f} | "
            + " | ".join(f"{v:.2f}" if v is not None else "-" for v in per)
            + f" | {p50 if p50 is None else round(p50, 1)} | {rounds} | "
            f"{_median([r.throughput for r in runs]):.1f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cpu_compare",
        description="Alternate the standard bench of two checkouts and report CPU per turn "
        "(from /proc) and latency, medians over rounds.",
        epilog="example: git worktree add /tmp/before <commit> && python -m bench.cpu_compare "
        "--before /tmp/before --after . --rate 100 --rounds 3\n"
        "a setting: python -m bench.cpu_compare --before . --after . "
        "--before-env WAYBILL_BUDGETS=0\n"
        "exit codes: 0 measured, 1 a run failed or /proc is unreadable, 2 usage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--before", type=Path, required=True, help="the baseline checkout")
    parser.add_argument("--after", type=Path, required=True, help="the changed checkout")
    parser.add_argument("--scenario", default="tracking", help="bench scenario (tracking)")
    parser.add_argument("--rate", type=float, default=100.0, help="turns/s (100)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured s (20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up s (2)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="rounds, each side once per round; which leads alternates, so even is fair (4)",
    )
    for side in ("before", "after"):
        parser.add_argument(
            f"--{side}-env",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"a variable for the {side} side's mesh (repeatable); the same checkout on "
            "both sides with different settings compares a setting",
        )
    return parser


def _env_pairs(items: Sequence[str]) -> dict[str, str] | None:
    """``NAME=VALUE`` items as a mapping, None if one is malformed."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            return None
        pairs[name] = value
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        print("cpu_compare: --rate, --duration and --rounds must be positive", file=sys.stderr)
        return 2
    envs = {side: _env_pairs(getattr(args, f"{side}_env")) for side in ("before", "after")}
    if any(env is None for env in envs.values()):
        print("cpu_compare: --before-env/--after-env take NAME=VALUE", file=sys.stderr)
        return 2
    if not Path("/proc/self/stat").exists():
        print("cpu_compare: /proc is not readable here", file=sys.stderr)
        return EXIT_FAILED
    sides: dict[str, list[Run]] = {"before": [], "after": []}
    for i in range(args.rounds):
        for side in order(i):
            runs = sides[side]
            directory = getattr(args, side).resolve()
            print(f"== round {i + 1}/{args.rounds}: {side} ({directory})", file=sys.stderr)
            try:
                run = run_once(
                    directory,
                    scenario=args.scenario,
                    rate=args.rate,
                    duration=args.duration,
                    warmup=args.warmup,
                    extra_env=envs[side],
                )
            except (OSError, RuntimeError) as exc:
                print(f"cpu_compare: {exc}", file=sys.stderr)
                return EXIT_FAILED
            print(
                f"   CPU {run.total:.2f} ms/turn, p95 {run.p95_ms} ms, "
                f"{run.throughput:.1f} turns/s",
                file=sys.stderr,
            )
            runs.append(run)
    print(render(sides))
    print(paired(sides))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
