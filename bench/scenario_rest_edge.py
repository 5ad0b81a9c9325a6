"""Scenario ``rest-edge``: what the REST edge adds to a turn's first event.

Each run interleaves the same tracking turns over two paths against one mesh:
even arrivals go through the edge (HTTP/1.1 + SSE), odd ones straight to the
gateway (gRPC). Arrivals are open-loop at the offered rate (both paths
together) and latency counts from each turn's intended start, as in the rest
of the bench. The figure of merit is the difference between the paths'
first-event percentiles (p50 and p95) in the same run; the edge's own share
(the ``Server-Timing`` it reports: request to gateway call, plus first gateway
event to response start) is printed beside it.

The HTTP client is a small keep-alive HTTP/1.1 client on asyncio streams,
so that client-side parsing costs about what the gRPC client's does and the
difference measured is the edge's. The machine's cores are shared with the
mesh: figures are noisy; compare runs made in one go.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import corpus, endpoints, gateway, load_limits, loadgen, scenarios, stats
from bench.runner import run_async
from bench.schedule import Schedule
from cli.arguments import positive_float, positive_floats

NAME = "rest-edge"
DESCRIPTION = "REST edge added latency: first SSE event vs first gRPC event, same run and mesh"
TARGET_ADDED_P95_MS = 2.0
_LEAD_S = 0.05
_EPILOG = """\
examples:
  python -m bench --scenario rest-edge                      # 50 and 200 turns/s, 3 runs each
  python -m bench --scenario rest-edge --rates 50 --runs 1 --duration 5

Starts its own mesh with the edge on free ports (or --attach to a running `waybill up`).
exit codes: 0 completed, 1 mesh/edge/setup unavailable, 2 usage error, 130 interrupted.
"""


# -- a keep-alive HTTP/1.1 + SSE client ----------------------------------------------------


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class HttpPool:
    """Keep-alive connections to one host:port, reused one request at a time."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self._idle: list[_Conn] = []

    async def acquire(self, *, fresh: bool = False) -> tuple[_Conn, bool]:
        """An idle connection (and True), or a new one (and False)."""
        if self._idle and not fresh:
            return self._idle.pop(), True
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Conn(reader, writer), False

    def release(self, conn: _Conn, *, reusable: bool) -> None:
        """Keep ``conn`` for the next request, or close it."""
        if reusable and not conn.reader.at_eof():
            self._idle.append(conn)
        else:
            conn.writer.close()

    async def close(self) -> None:
        """Close every idle connection."""
        for conn in self._idle:
            conn.writer.close()
        self._idle.clear()


@dataclass(slots=True)
class RestOutcome:
    """How one turn through the edge went."""

    bucket: str
    first: float | None = None
    edge_ms: float | None = None
    """edge-in + edge-out from Server-Timing."""
    client_error: str | None = None
    """What went wrong on the client side, for the report."""


def _server_timing(value: str) -> float | None:
    total = 0.0
    found = False
    for part in value.split(","):
        _, _, dur = part.partition(";dur=")
        try:
            total += float(dur)
            found = True
        except ValueError:
            continue
    return total if found else None


async def _read_headers(conn: _Conn) -> tuple[int, dict[str, str]]:
    status_line = await conn.reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = await conn.reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers


async def _chunks(conn: _Conn) -> Any:
    """The chunks of a chunked body, as they arrive."""
    while True:
        size_line = await conn.reader.readline()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await conn.reader.readline()  # the CRLF after the last chunk (no trailers)
            return
        data = await conn.reader.readexactly(size)
        await conn.reader.readexactly(2)
        yield data


def _bucket_of(last_event: str | None, error_status: str | None) -> str:
    if error_status:
        return error_status
    if last_event == "final":
        return loadgen.OK
    if last_event == "refusal":
        return loadgen.REFUSAL
    return loadgen.NO_FINAL


async def rest_turn(
    pool: HttpPool, turn: scenarios.Turn, timeout_s: float, clock: Any = time.perf_counter
) -> RestOutcome:
    """One turn through the edge, read to the end."""
    body = json.dumps({"userId": turn.request.user_id, "message": turn.request.message}).encode()
    request = (
        f"POST /v1/sessions/{turn.request.session_id}/turns HTTP/1.1\r\n"
        f"Host: {pool.host}:{pool.port}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: text/event-stream\r\n"
        f"X-Api-Key: {turn.api_key}\r\n"
        f"X-Request-Timeout: {timeout_s:.3f}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reusable = False
    outcome = RestOutcome(loadgen.CANCELLED)
    conn: _Conn | None = None
    try:
        async with asyncio.timeout(timeout_s):
            conn, reused = await pool.acquire()
            try:
                conn.writer.write(request)
                status, headers = await _read_headers(conn)
            except (ConnectionError, asyncio.IncompleteReadError, IndexError):
                if not reused:
                    raise
                # The server closed an idle keep-alive connection: once more, on a new one.
                pool.release(conn, reusable=False)
                conn, _ = await pool.acquire(fresh=True)
                conn.writer.write(request)
                status, headers = await _read_headers(conn)
            if status != 200:
                length = int(headers.get("content-length", "0"))
                raw = await conn.reader.readexactly(length)
                outcome.bucket = str(json.loads(raw)["error"]["status"])
                reusable = True
                return outcome
            outcome.edge_ms = _server_timing(headers.get("server-timing", ""))
            buffer = b""
            last_event: str | None = None
            error_status: str | None = None
            async for chunk in _chunks(conn):
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    if outcome.first is None:
                        outcome.first = clock()
                    name = block.split(b"\n", 1)[0].removeprefix(b"event: ").decode()
                    last_event = name
                    if name == "error":
                        data = block.split(b"data: ", 1)[1]
                        error_status = str(json.loads(data)["error"]["status"])
            outcome.bucket = _bucket_of(last_event, error_status)
            reusable = True
            return outcome
    except TimeoutError:
        outcome.bucket = loadgen.DEADLINE_EXCEEDED
        return outcome
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError, KeyError) as exc:
        outcome.bucket = loadgen.CLIENT_ERROR
        outcome.client_error = repr(exc)
        return outcome
    finally:
        if conn is not None:
            pool.release(conn, reusable=reusable)


# -- one run: both paths interleaved ----------------------------------------------------------


@dataclass(slots=True)
class PathTally:
    """Samples of one path in one run (measured turns only)."""

    first_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    edge_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    client_error: str | None = None


@dataclass(frozen=True, slots=True)
class RunFigures:
    """The figures of one run."""

    rate: float
    rest_first_p50_ms: float | None
    rest_first_p95_ms: float | None
    grpc_first_p50_ms: float | None
    grpc_first_p95_ms: float | None
    added_p50_ms: float | None
    added_p95_ms: float | None
    edge_own_p50_ms: float | None
    edge_own_p95_ms: float | None
    rest_total_p50_ms: float | None
    grpc_total_p50_ms: float | None
    rest_sent: int
    grpc_sent: int
    rest_errors: dict[str, int]
    grpc_errors: dict[str, int]
    client_error: str | None = None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def figures(rate: float, rest: PathTally, grpc_: PathTally) -> RunFigures:
    """Percentiles of both paths and their differences."""
    rf = stats.percentiles(rest.first_ms, (50, 95))
    gf = stats.percentiles(grpc_.first_ms, (50, 95))
    own = stats.percentiles(rest.edge_ms, (50, 95))
    return RunFigures(
        rate=rate,
        rest_first_p50_ms=_r(rf[50]),
        rest_first_p95_ms=_r(rf[95]),
        grpc_first_p50_ms=_r(gf[50]),
        grpc_first_p95_ms=_r(gf[95]),
        added_p50_ms=_diff(rf[50], gf[50]),
        added_p95_ms=_diff(rf[95], gf[95]),
        edge_own_p50_ms=_r(own[50]),
        edge_own_p95_ms=_r(own[95]),
        rest_total_p50_ms=_r(stats.percentile(rest.total_ms, 50)),
        grpc_total_p50_ms=_r(stats.percentile(grpc_.total_ms, 50)),
        rest_sent=rest.sent,
        grpc_sent=grpc_.sent,
        rest_errors=dict(rest.errors),
        grpc_errors=dict(grpc_.errors),
        client_error=rest.client_error,
    )


async def one_run(
    *,
    schedule: Schedule,
    source: scenarios.TurnSource,
    http: HttpPool,
    channels: gateway.ChannelPool,
    deadline_s: float,
) -> tuple[PathTally, PathTally]:
    """Dispatch the schedule, alternating paths; wait for every turn."""
    rest, grpc_ = PathTally(), PathTally()
    clock = time.perf_counter
    tasks: set[asyncio.Task[None]] = set()

    async def turn(index: int, intended: float, item: scenarios.Turn) -> None:
        via_edge = index % 2 == 0
        tally = rest if via_edge else grpc_
        budget = intended + deadline_s - clock()
        first: float | None
        if via_edge:
            outcome = await rest_turn(http, item, budget, clock)
            bucket, first = outcome.bucket, outcome.first
            if outcome.client_error and rest.client_error is None:
                rest.client_error = outcome.client_error
            if outcome.edge_ms is not None and not schedule.is_warmup(index):
                rest.edge_ms.append(outcome.edge_ms)
        else:
            stub = channels.stub(index // 2)
            bucket, first = await loadgen.read_turn(stub, item, budget, clock)
        if schedule.is_warmup(index):
            return
        tally.sent += 1
        if bucket != loadgen.OK:
            tally.errors[bucket] += 1
            return
        tally.total_ms.append((clock() - intended) * 1000)
        if first is not None:
            tally.first_ms.append((first - intended) * 1000)

    t0 = clock() + _LEAD_S
    for index in range(schedule.total):
        item = source(index)
        intended = schedule.intended_start(t0, index)
        delay = intended - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(turn(index, intended, item))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=deadline_s + 2)
    for task in tasks:
        task.cancel()
    return rest, grpc_


# -- the whole scenario ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Targets:
    """Where the edge and the gateway are, and the keys."""

    edge: str
    gateway: str
    keys: dict[str, str]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:7.2f}"


def summarize(rate: float, runs: Sequence[RunFigures]) -> dict[str, Any]:
    """Medians over the runs of one rate."""
    keys = [
        "rest_first_p50_ms",
        "rest_first_p95_ms",
        "grpc_first_p50_ms",
        "grpc_first_p95_ms",
        "added_p50_ms",
        "added_p95_ms",
        "edge_own_p50_ms",
        "edge_own_p95_ms",
        "rest_total_p50_ms",
        "grpc_total_p50_ms",
    ]
    out: dict[str, Any] = {"rate": rate, "runs": len(runs)}
    for key in keys:
        out[key] = _median([getattr(r, key) for r in runs])
    out["added_p95_ms_per_run"] = [r.added_p95_ms for r in runs]
    out["rest_sent"] = sum(r.rest_sent for r in runs)
    out["grpc_sent"] = sum(r.grpc_sent for r in runs)
    out["rest_errors"] = dict(sum((Counter(r.rest_errors) for r in runs), Counter()))
    out["grpc_errors"] = dict(sum((Counter(r.grpc_errors) for r in runs), Counter()))
    out["client_error"] = next((r.client_error for r in runs if r.client_error), None)
    return out


def render(summary: dict[str, Any]) -> str:
    """One rate's medians as text."""
    return "\n".join(
        [
            f"rest-edge at {summary['rate']:g} turns/s (each figure: the median over"
            f" {summary['runs']} runs of that run's value;"
            f" {summary['rest_sent']} REST + {summary['grpc_sent']} gRPC measured turns)",
            "                      p50 ms   p95 ms",
            f"  first event, REST  {_fmt(summary['rest_first_p50_ms'])}  "
            f"{_fmt(summary['rest_first_p95_ms'])}",
            f"  first event, gRPC  {_fmt(summary['grpc_first_p50_ms'])}  "
            f"{_fmt(summary['grpc_first_p95_ms'])}",
            f"  added by the edge  {_fmt(summary['added_p50_ms'])}  "
            f"{_fmt(summary['added_p95_ms'])}   (target p95 < {TARGET_ADDED_P95_MS:g})",
            f"  edge's own work    {_fmt(summary['edge_own_p50_ms'])}  "
            f"{_fmt(summary['edge_own_p95_ms'])}   (Server-Timing)",
            f"  errors             REST {summary['rest_errors'] or 'none'},"
            f" gRPC {summary['grpc_errors'] or 'none'}",
            *(
                [f"  first client error {summary['client_error']}"]
                if summary["client_error"]
                else []
            ),
        ]
    )


async def measure(
    targets: Targets, args: argparse.Namespace, out: Any, err: Any
) -> list[dict[str, Any]]:
    """Every run of every rate; the per-rate summaries."""
    results = []
    async with gateway.ChannelPool(targets.gateway, args.channels) as channels:
        customers = await gateway.customer_pool(channels.stub(0), targets.keys, timeout_s=10)
        http = HttpPool(targets.edge)
        try:
            for rate in args.rates:
                runs = []
                for run in range(args.runs):
                    source = scenarios.question_turns(
                        customers, corpus.CORE, seed=args.seed + run, run_tag=secrets.token_hex(4)
                    )
                    schedule = Schedule(rate, args.duration, args.warmup)
                    if not args.quiet:
                        print(f"[rest-edge] {rate:g} turns/s, run {run + 1}/{args.runs}", file=err)
                    rest, grpc_ = await one_run(
                        schedule=schedule,
                        source=source,
                        http=http,
                        channels=channels,
                        deadline_s=args.deadline,
                    )
                    runs.append(figures(rate, rest, grpc_))
                summary = summarize(rate, runs)
                print(render(summary), file=out, flush=True)
                results.append(summary)
        finally:
            await http.close()
    return results


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the scenario."""
    parser = argparse.ArgumentParser(
        prog=f"python -m bench --scenario {NAME}",
        description=DESCRIPTION + ". Ends with one JSON line of the figures.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rates", type=positive_floats, default=(50.0, 200.0), help="turns/s (50,200)"
    )
    parser.add_argument(
        "--duration", type=positive_float, default=10.0, help="measured s per run (10)"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured s per run (2)")
    parser.add_argument("--runs", type=int, default=3, help="runs per rate (3)")
    parser.add_argument(
        "--deadline", type=positive_float, default=5.0, help="per-turn budget s (5)"
    )
    parser.add_argument("--seed", type=int, default=7, help="RNG seed (7)")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (4)")
    parser.add_argument(
        "--attach",
        action="store_true",
        help="measure the mesh running from --run-dir (waybill up) instead of starting one",
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="mesh run dir")
    parser.add_argument("--json-out", type=Path, help="also append the JSON line to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    return parser


def _targets_of(run_dir: Path, edge: str | None, gateway_address: str | None) -> Targets:
    info = endpoints.read_mesh_json(run_dir)
    edge_address = edge or ((info or {}).get("edge") or {}).get("address")
    if not edge_address:
        raise endpoints.SetupError(f"no edge in {run_dir}/mesh.json (start it with `waybill up`)")
    resolved = endpoints.resolve(run_dir, target=gateway_address)
    return Targets(edge=str(edge_address), gateway=resolved.target, keys=resolved.keys)


def main(argv: Sequence[str]) -> int:
    """Run the scenario; the exit status."""
    args = build_parser().parse_args(list(argv))
    if args.runs < 1 or args.channels < 1 or args.warmup < 0:
        print(
            "bench: --runs and --channels must be at least 1, --warmup not negative",
            file=sys.stderr,
        )
        return 2
    out, err = sys.stdout, sys.stderr
    # Imported here: only this scenario needs the launcher (plugin discovery imports us).
    from cli.launcher import Mesh, MeshError
    from cli.ports import free_base_port
    from runtime import mesh as mesh_table

    mesh_handle: Mesh | None = None
    try:
        if args.attach:
            targets = _targets_of(args.run_dir or Path(".waybill"), None, None)
        else:
            run_dir = args.run_dir or Path(".waybill/bench-edge")
            base = free_base_port(len(mesh_table.SERVICES) + 1)
            print(f"bench: starting the mesh and the edge in {run_dir} (ports {base}+)", file=err)
            mesh_handle = Mesh(
                run_dir=run_dir, base_port=base, edge=True, env=load_limits.GATEWAY_ENV
            )
            mesh_handle.start()
            targets = _targets_of(
                run_dir, mesh_handle.edge_address, mesh_handle.addresses["gateway"]
            )
        results = run_async(measure(targets, args, out, err), use_uvloop=not args.no_uvloop)
    except (endpoints.SetupError, MeshError) as exc:
        print(f"bench: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=err)
        return 130
    finally:
        if mesh_handle is not None:
            mesh_handle.stop()
    line = json.dumps(
        {
            "scenario": NAME,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "runs": args.runs,
            "target_added_p95_ms": TARGET_ADDED_P95_MS,
            "results": results,
        },
        separators=(",", ":"),
    )
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        with args.json_out.open("a") as fh:
            fh.write(line + "\n")
    print(line, file=out, flush=True)
    return 0
