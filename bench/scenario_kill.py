"""Scenario ``kill``: what ``kill -9`` of one service costs a supervised mesh under load.

Starts one supervised mesh (as ``waybill up`` runs it, without the edge) and,
for each service in turn, sends open-loop tracking turns at ``--rate``,
SIGKILLs the service ``--before`` seconds in (by its pid, as an operator or
the OOM killer would) and keeps sending until the turns have recovered, or
``--after`` seconds. Per service it reports:

- ``failed``: turns of that window that did not end OK, and how they failed;
- ``restart_s``: from the kill until the launcher saw the new process SERVING;
- ``recovery_s``: from the kill until the intended start of the first of
  ``--recovered`` consecutive OK turns (turns judged in send order); 0 when
  no turn needed the service.

The gateway's own kill necessarily fails every turn in flight through it, and
the next ones until it listens again. Client channels reconnect with a 50-100
ms backoff, as the mesh's own clients do, so that a gRPC client's default
backoff (a second and growing) is not what gets measured. Figures depend on
the machine's load: compare runs made in one go.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bench import endpoints, gateway, load_limits, loadgen, scenarios
from bench.runner import run_async
from cli.arguments import positive_float, positive_int

if TYPE_CHECKING:
    from cli.launcher import Mesh

NAME = "kill"
DESCRIPTION = "kill -9 each service under load: failed turns, restart and recovery time"
TRAIL_S = 1.0
"""Turns keep coming this long after recovery, so a relapse would show."""
_LEAD_S = 0.05
_WATCH_S = 0.02
# A turn's deadline plus this bounds the drain at the end of each window.
_DRAIN_GRACE_S = 2.0
_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 100),
)
_EPILOG = """\
examples:
  python -m bench --scenario kill                          # every service, 100 turns/s
  python -m bench --scenario kill --services tracking,gateway --rate 50 --json-out k.jsonl

Starts its own supervised mesh on free ports (or under --run-dir).
exit codes: 0 completed (failed turns are data), 1 mesh/setup unavailable or a
service not restarted, 2 usage error, 130 interrupted.
"""


def _default_victims() -> tuple[str, ...]:
    from runtime import mesh

    on_path = ("orders", "guardrails", "router", "tracking", "gateway")
    return (*on_path, *(s.name for s in mesh.SERVICES if s.name not in on_path))


def _services(text: str) -> tuple[str, ...]:
    from runtime import mesh

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in mesh.BY_NAME]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown) or '(none given)'}; known: "
            + ", ".join(mesh.BY_NAME)
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    """The scenario's arguments (``python -m bench --scenario kill --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench --scenario kill",
        description=__doc__.split("\n\n")[0] if __doc__ else DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument(
        "--services",
        type=_services,
        default=None,
        help="comma-separated services to kill, one at a time"
        " (default: all, the turn's path first)",
    )
    parser.add_argument("--rate", type=positive_float, default=100.0, help="turns/s (100)")
    parser.add_argument(
        "--before", type=positive_float, default=5.0, help="seconds of load before the kill (5)"
    )
    parser.add_argument(
        "--after",
        type=positive_float,
        default=20.0,
        help="at most this many seconds of load after the kill (20)",
    )
    parser.add_argument(
        "--recovered",
        type=positive_int,
        default=50,
        help="consecutive OK turns that count as recovered (50)",
    )
    parser.add_argument(
        "--deadline", type=positive_float, default=5.0, help="per-turn budget in seconds (5)"
    )
    parser.add_argument("--seed", type=int, default=7, help="RNG seed of the turn stream (7)")
    parser.add_argument("--channels", type=positive_int, default=4, help="gRPC channels (4)")
    parser.add_argument("--run-dir", type=Path, default=Path(".waybill/bench-kill"))
    parser.add_argument("--base-port", type=positive_int, help="first port (default: free range)")
    parser.add_argument("--json-out", type=Path, help="also append the JSON lines to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    return parser


@dataclass(slots=True)
class Turn:
    """One sent turn: when it was due, when it ended, how."""

    intended: float
    end: float | None = None
    bucket: str | None = None


@dataclass(slots=True)
class Window:
    """The turns of one victim's window and the moments that matter."""

    victim: str
    turns: list[Turn] = field(default_factory=list)
    killed_at: float | None = None
    serving_at: float | None = None
    restarts: int = 0

    def recovered_at(self, run: int) -> float | None:
        """Intended start of the first of ``run`` consecutive OK turns sent after the kill."""
        if self.killed_at is None:
            return None
        streak, first = 0, 0.0
        for turn in self.turns:
            if turn.intended < self.killed_at:
                continue
            if turn.bucket is None:
                return None  # not finished: turns are judged in send order
            if turn.bucket != loadgen.OK:
                streak = 0
                continue
            if streak == 0:
                first = turn.intended
            streak += 1
            if streak == run:
                return first
        return None


def recovery(window: Window, run: int) -> dict[str, Any]:
    """The figures of one window, as its JSON line carries them."""
    failed = Counter(t.bucket for t in window.turns if t.bucket not in (loadgen.OK, None))
    recovered = window.recovered_at(run)
    killed = window.killed_at

    def since_kill(moment: float | None) -> float | None:
        if moment is None or killed is None:
            return None
        return round(max(moment - killed, 0.0), 3)

    return {
        "scenario": NAME,
        "service": window.victim,
        "turns": len(window.turns),
        "failed": sum(failed.values()),
        "failed_by": dict(sorted((str(k), v) for k, v in failed.items())),
        "restart_s": since_kill(window.serving_at),
        "recovery_s": since_kill(recovered),
        "restarts": window.restarts,
        "recovered_after": run,
    }


async def _watch_restart(mesh: Mesh, window: Window, old_pid: int) -> None:
    from cli.launcher import Phase

    while True:
        state = mesh.state(window.victim)
        if state.pid != old_pid and state.phase is Phase.SERVING:
            window.serving_at = time.perf_counter()
            window.restarts = state.restarts
            return
        await asyncio.sleep(_WATCH_S)


async def _one(stub: Any, turn: scenarios.Turn, record: Turn, deadline_s: float) -> None:
    remaining = record.intended + deadline_s - time.perf_counter()
    try:
        if remaining <= 0:
            record.bucket = loadgen.DEADLINE_EXCEEDED
        else:
            record.bucket, _ = await loadgen.read_turn(stub, turn, remaining)
    except Exception as exc:  # a client-side bug is a failed turn, not a dead bench
        record.bucket = f"{loadgen.CLIENT_ERROR}: {type(exc).__name__}"
    finally:
        record.end = time.perf_counter()


async def _window(
    mesh: Mesh,
    victim: str,
    source: scenarios.TurnSource,
    stubs: Sequence[Any],
    args: argparse.Namespace,
    progress: TextIO | None,
) -> Window:
    window = Window(victim)
    t0 = time.perf_counter() + _LEAD_S
    kill_at = t0 + args.before
    tasks: set[asyncio.Task[None]] = set()
    watcher: asyncio.Task[None] | None = None
    index = 0
    try:
        while True:
            intended = t0 + index / args.rate
            if intended > kill_at + args.after:
                break
            # Judged every few turns: each look walks the window's turns.
            recovered = window.recovered_at(args.recovered) if index % 10 == 0 else None
            back = window.serving_at
            if (
                back is not None
                and recovered is not None
                and intended > max(back, recovered) + TRAIL_S
            ):
                break
            if window.killed_at is None and intended >= kill_at:
                old_pid = mesh.state(victim).pid
                os.kill(old_pid, signal.SIGKILL)
                window.killed_at = time.perf_counter()
                watcher = asyncio.create_task(_watch_restart(mesh, window, old_pid))
                if progress is not None:
                    print(f"bench: kill -9 {victim} (pid {old_pid})", file=progress, flush=True)
            turn = source(index)
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            record = Turn(intended)
            window.turns.append(record)
            task = asyncio.create_task(_one(stubs[index % len(stubs)], turn, record, args.deadline))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if tasks:
            await asyncio.wait(set(tasks), timeout=args.deadline + _DRAIN_GRACE_S)
        if watcher is not None and window.serving_at is None:
            # The load window is over; the restart may still come, within reason.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(watcher), timeout=30.0)
    finally:
        for task in (*tasks, *([watcher] if watcher is not None else [])):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return window


async def measure(
    mesh: Mesh, target: endpoints.Endpoints, args: argparse.Namespace, err: TextIO
) -> list[dict[str, Any]]:
    """Every victim's window, in turn, against one mesh; their figures."""
    progress = None if args.quiet else err
    victims = args.services or _default_victims()
    async with gateway.ChannelPool(target.target, args.channels, options=_CHANNEL_OPTIONS) as pool:
        context = scenarios.ScenarioContext(
            stub=pool.stub(0), keys=target.keys, seed=args.seed, run_tag=secrets.token_hex(4)
        )
        source = await scenarios.get("tracking").build(context)
        results = []
        for victim in victims:
            if progress is not None:
                print(f"== {victim}: {args.rate:g} turns/s ==", file=progress, flush=True)
            window = await _window(mesh, victim, source, pool.stubs, args, progress)
            result = recovery(window, args.recovered)
            if progress is not None:
                print(f"bench: {json.dumps(result)}", file=progress, flush=True)
            results.append(result)
    return results


def render(results: Sequence[dict[str, Any]]) -> str:
    """The per-service table."""
    from cli.render import table

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = [
        [
            r["service"],
            str(r["turns"]),
            str(r["failed"]),
            ", ".join(f"{k} {v}" for k, v in r["failed_by"].items()) or "-",
            seconds(r["restart_s"]),
            seconds(r["recovery_s"]),
        ]
        for r in results
    ]
    headers = ["killed", "turns", "failed", "how", "restart s", "recovery s"]
    return table(headers, rows)


def main(argv: Sequence[str]) -> int:
    """Run the scenario; the exit status."""
    args = build_parser().parse_args(list(argv))
    out, err = sys.stdout, sys.stderr
    # Imported here: plugin discovery imports this module for --list-scenarios.
    from cli.launcher import Mesh, MeshError, RestartPolicy
    from cli.ports import free_base_port
    from runtime import mesh as mesh_table

    handle: Mesh | None = None
    try:
        base = args.base_port or free_base_port(len(mesh_table.SERVICES))
        print(f"bench: starting a supervised mesh in {args.run_dir} (ports {base}+)", file=err)
        handle = Mesh(
            run_dir=args.run_dir,
            base_port=base,
            restart=RestartPolicy(),
            env=load_limits.GATEWAY_ENV,
        )
        handle.start()
        target = endpoints.resolve(args.run_dir, target=handle.addresses["gateway"])
        results = run_async(measure(handle, target, args, err), use_uvloop=not args.no_uvloop)
    except (endpoints.SetupError, MeshError) as exc:
        print(f"bench: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=err)
        return 130
    finally:
        if handle is not None:
            handle.stop()
    lines = [json.dumps({**r, "rate": args.rate}, separators=(",", ":")) for r in results]
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        with args.json_out.open("a") as fh:
            fh.writelines(line + "\n" for line in lines)
    print(render(results), file=out)
    for line in lines:
        print(line, file=out, flush=True)
    not_back = [r["service"] for r in results if r["restart_s"] is None]
    if not_back:
        print(f"bench: not restarted: {', '.join(not_back)}", file=err)
        return 1
    return 0
