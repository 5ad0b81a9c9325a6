"""The standard set behind ``make bench``: start a mesh, run the fixed runs, stop it.

The same scenario at a comfortable and at a demanding rate, so one table shows
how latency and errors move with load. Every run's JSON line is kept under
``artifacts/bench/`` for comparison across commits.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from bench import endpoints, load_limits, plot, report, runner
from bench.endpoints import SetupError
from bench.report import RunSummary
from runtime import paths
from runtime.mesh import SERVICES as MESH_SERVICES

SCENARIO = "skeleton"
RATES: tuple[float, ...] = (50.0, 200.0)
DURATION_S = 10.0
WARMUP_S = 2.0
ARTIFACTS_DIR = paths.artifacts_dir("bench")


@dataclass(frozen=True, slots=True)
class StandardOptions:
    """How to run the standard set."""

    run_dir: Path
    duration_s: float = DURATION_S
    warmup_s: float = WARMUP_S
    rates: tuple[float, ...] = RATES
    base_port: int | None = None
    out_dir: Path = ARTIFACTS_DIR
    base: runner.RunConfig = field(
        default_factory=lambda: runner.RunConfig(SCENARIO, RATES[0], DURATION_S, WARMUP_S)
    )
    """Concurrency, deadline, seed and channels; rate and durations are replaced per run."""
    use_uvloop: bool = True
    progress: bool = True


async def _runs(
    options: StandardOptions, target: endpoints.Endpoints, stderr: TextIO, stdout: TextIO
) -> list[RunSummary]:
    summaries: list[RunSummary] = []
    for rate in options.rates:
        config = replace(
            options.base, rate=rate, duration_s=options.duration_s, warmup_s=options.warmup_s
        )
        print(f"== {config.scenario} at {rate:g} turns/s ==", file=stderr, flush=True)
        summary = await runner.run(config, target, progress=stderr if options.progress else None)
        print(report.render(summary), file=stdout)
        print(summary.to_json(), file=stdout, flush=True)
        summaries.append(summary)
    return summaries


def write_artifact(summaries: Sequence[RunSummary], out_dir: Path) -> Path:
    """Write the runs' JSON lines to ``<out_dir>/<UTC timestamp>.jsonl``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{stamp}.jsonl"
    path.write_text("".join(s.to_json() + "\n" for s in summaries))
    # The same runs as a picture: latency against load.
    path.with_suffix(".svg").write_text(plot.render(plot.load([path])))
    return path


def run_standard(
    options: StandardOptions, *, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr
) -> int:
    """Start the mesh, run the set, stop the mesh. 0: runs completed; 1: no mesh or no setup."""
    try:
        # Imported here, not at module level: only the standard set needs the
        # launcher (and its process-management dependencies).
        from cli.launcher import Mesh
        from cli.ports import free_base_port
    except ImportError as exc:
        print(f"bench: cannot import the launcher (cli.launcher): {exc}", file=stderr)
        return 1
    mesh: Mesh | None = None
    try:
        # A private port range by default, so a dev mesh on the default ports
        # (`make up`) neither blocks the bench nor gets measured by mistake.
        base_port = options.base_port or free_base_port(len(MESH_SERVICES))
        mesh = Mesh(run_dir=options.run_dir, base_port=base_port, env=load_limits.GATEWAY_ENV)
        print(
            f"bench: starting the mesh in {options.run_dir} (ports {base_port}+)",
            file=stderr,
            flush=True,
        )
        mesh.start()
    except Exception as exc:  # any start failure means there is nothing to measure
        print(f"bench: the mesh did not start: {exc}", file=stderr)
        _stop_quietly(mesh, stderr)
        return 1
    try:
        target = endpoints.resolve(options.run_dir, target=mesh.addresses.get("gateway"))
        summaries = runner.run_async(
            _runs(options, target, stderr, stdout), use_uvloop=options.use_uvloop
        )
    except SetupError as exc:
        print(f"bench: {exc}", file=stderr)
        return 1
    finally:
        print("bench: stopping the mesh", file=stderr, flush=True)
        _stop_quietly(mesh, stderr)
    print(report.comparison_table(summaries), file=stdout)
    path = write_artifact(summaries, options.out_dir)
    print(f"bench: wrote {path}", file=stderr)
    return 0


class _Stoppable(Protocol):
    def stop(self) -> object: ...


def _stop_quietly(mesh: _Stoppable | None, stderr: TextIO) -> None:
    """Stop ``mesh`` if there is one; a failing stop is reported, not raised."""
    if mesh is None:
        return
    try:
        mesh.stop()
    except Exception as exc:  # the runs' result matters more than a noisy stop
        print(f"bench: stopping the mesh failed: {exc}", file=stderr)
