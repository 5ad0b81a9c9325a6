"""Command line: one scenario against a running mesh, or the standard set.

Exit codes: 0 the run(s) completed (failed turns are data, not a failure of
the bench); 1 nothing could be measured (mesh did not start, gateway
unreachable, no keys or customers); 2 usage error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bench import endpoints, plugins, report, runner, scenarios, standard
from bench.endpoints import SetupError
from cli.arguments import non_negative_float, positive_float, positive_floats, positive_int

EXIT_OK = 0
EXIT_SETUP = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_EPILOG = """\
examples:
  python -m bench --scenario skeleton --rate 50 --duration 10
  python -m bench --scenario tracking --rate 200 --duration 30 --json-out out.jsonl
  python -m bench --standard                # what `make bench` runs

exit codes: 0 completed (errors counted as data), 1 mesh/gateway/setup unavailable,
2 usage error, 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Open-loop load generator for the Waybill gateway. Arrivals are scheduled at a "
            "fixed rate; latency is measured from each arrival's intended start, so queueing "
            "is counted. Ends with one JSON line on stdout."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_argument_group("what to run")
    mode.add_argument(
        "--scenario", choices=scenarios.names(), help="scenario to run against a running mesh"
    )
    mode.add_argument(
        "--standard",
        action="store_true",
        help=f"start a mesh and run --scenario (default {standard.SCENARIO}) at --rates "
        f"(default {', '.join(f'{r:g}' for r in standard.RATES)} turns/s)",
    )
    mode.add_argument("--list-scenarios", action="store_true", help="list scenarios and exit")

    load = parser.add_argument_group("load")
    load.add_argument("--rate", type=positive_float, help="arrivals per second (required)")
    load.add_argument(
        "--duration", type=positive_float, help="measured seconds (required with --scenario)"
    )
    load.add_argument(
        "--warmup",
        type=non_negative_float,
        help=f"unmeasured seconds first (default 1; {standard.WARMUP_S:g} with --standard)",
    )
    load.add_argument(
        "--concurrency", type=positive_int, default=256, help="max turns in flight (256)"
    )
    load.add_argument(
        "--deadline",
        type=positive_float,
        default=5.0,
        help="per-turn budget in seconds from the intended start (5)",
    )
    load.add_argument("--seed", type=int, default=7, help="RNG seed of the turn stream (7)")
    load.add_argument("--channels", type=positive_int, default=4, help="gRPC channels (4)")

    where = parser.add_argument_group("where")
    where.add_argument("--target", help="gateway host:port (default: mesh.json, then mesh table)")
    where.add_argument(
        "--run-dir",
        type=Path,
        help="mesh run dir with mesh.json and credentials "
        "(default .waybill; .waybill/bench with --standard)",
    )
    where.add_argument("--api-key", help="use this key only (its tenant's customers)")

    out = parser.add_argument_group("output")
    out.add_argument("--json-out", type=Path, help="also append the JSON line to this file")
    out.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    out.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")

    std = parser.add_argument_group("standard set")
    std.add_argument(
        "--durations",
        type=positive_float,
        default=standard.DURATION_S,
        help=f"measured seconds of each standard run ({standard.DURATION_S:g})",
    )
    std.add_argument(
        "--rates",
        type=positive_floats,
        default=standard.RATES,
        help="comma-separated rates of the standard runs (50,200)",
    )
    std.add_argument(
        "--base-port",
        type=positive_int,
        help="first port of the bench mesh (default: a free range)",
    )
    std.add_argument(
        "--out-dir",
        type=Path,
        default=standard.ARTIFACTS_DIR,
        help="where the standard set's .jsonl goes (artifacts/bench)",
    )
    return parser


def _config(args: argparse.Namespace) -> runner.RunConfig:
    return runner.RunConfig(
        scenario=args.scenario or standard.SCENARIO,
        rate=args.rate or standard.RATES[0],
        duration_s=args.duration or args.durations,
        warmup_s=1.0 if args.warmup is None else args.warmup,
        concurrency=args.concurrency,
        deadline_s=args.deadline,
        seed=args.seed,
        channels=args.channels,
    )


def _run_one(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    config = _config(args)
    try:
        target = endpoints.resolve(
            args.run_dir or Path(".waybill"), target=args.target, api_key=args.api_key
        )
        summary = runner.run_async(
            runner.run(config, target, progress=None if args.quiet else stderr),
            use_uvloop=not args.no_uvloop,
        )
    except SetupError as exc:
        print(f"bench: {exc}", file=stderr)
        return EXIT_SETUP
    line = summary.to_json()
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        with args.json_out.open("a") as fh:
            fh.write(line + "\n")
    print(report.render(summary), file=stdout)
    print(line, file=stdout, flush=True)
    return EXIT_OK


def _run_standard(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    base = _config(args)
    options = standard.StandardOptions(
        run_dir=args.run_dir or Path(".waybill/bench"),
        duration_s=args.durations,
        warmup_s=standard.WARMUP_S if args.warmup is None else args.warmup,
        rates=args.rates,
        base_port=args.base_port,
        out_dir=args.out_dir,
        base=base,
        use_uvloop=not args.no_uvloop,
        progress=not args.quiet,
    )
    return standard.run_standard(options, stdout=stdout, stderr=stderr)


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Entry point; returns the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    arguments = list(sys.argv[1:] if argv is None else argv)
    extra = plugins.discover()
    wanted = plugins.requested(arguments)
    if wanted in extra:
        return extra[wanted].main(arguments)
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.list_scenarios:
        for name in scenarios.names():
            print(f"{name:<12} {scenarios.get(name).description}", file=out)
        for plugin in extra.values():
            print(f"{plugin.name:<12} {plugin.description}", file=out)
        return EXIT_OK
    if args.standard:
        if args.target or args.api_key:
            parser.error("--standard starts its own mesh; --target/--api-key do not apply")
        runner_fn = _run_standard
    else:
        missing = [
            flag
            for flag, value in (
                ("--scenario", args.scenario),
                ("--rate", args.rate),
                ("--duration", args.duration),
            )
            if value is None
        ]
        if missing:
            parser.error(f"missing {', '.join(missing)} (or use --standard)")
        runner_fn = _run_one
    try:
        return runner_fn(args, out, err)
    except KeyboardInterrupt:
        print("bench: interrupted", file=err)
        return EXIT_INTERRUPTED
