"""What observability costs a turn: the standard bench with OTLP export and metrics scraping
on, against the same bench with both off, alternated in one session.

``python -m bench.obs_cost --rate 200 --rounds 3`` runs the standard bench (``python -m
bench --standard``, the ``tracking`` scenario) ``--rounds`` times per configuration,
alternating ``off`` and ``on`` so drift on a shared machine falls on both alike:

- ``on``: every service exports its spans (``OTEL_TRACES_EXPORTER=otlp``, the SDK's default
  batching) to a real OTLP/gRPC receiver this command runs (a gRPC server on the official
  OTLP protos that counts what it receives), and serves ``/metrics``, which a scraper here
  reads from every service every ``--scrape-interval`` seconds, as Prometheus would.
- ``off``: no exporter (spans are not recorded; trace ids still flow) and no metrics port.

It prints each round's p50 and p95 turn latency and CPU per turn, then the medians per
configuration and the change of the median p95 (the figure held to within 10%), and draws
every round's p50 and p95 as an SVG. The receiver's span count and the scrapes that
succeeded show that ``on`` really exported and scraped.

Exit codes: 0 measured; 1 a run failed (or nothing was exported or scraped while on); 2
usage.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from bench.cpu_compare import Run, run_once
from cli.ports import free_base_port
from runtime import paths
from runtime.mesh import SERVICES

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
CONFIGS = ("off", "on")
TARGET_PCT = 10.0
"""The budget: observability on may add at most this share to the median p95."""
SUSTAINED = 0.95
"""A configuration whose median throughput is below this share of the rate is saturated."""


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that counts what it is sent and keeps nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans = 0
        self.requests = 0

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        count = sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        with self._lock:
            self.spans += count
            self.requests += 1
        return trace_service_pb2.ExportTraceServiceResponse()

    def taken(self) -> int:
        """Spans received so far."""
        with self._lock:
            return self.spans


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Sink]]:
    """A running receiver on a free loopback port: its endpoint URL and its counts."""
    sink = Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", sink
    finally:
        server.stop(None)


class Scraper:
    """Reads every ``/metrics`` URL once per interval on a thread of its own, as Prometheus
    does; a service not up yet (or gone) is a failed scrape, not an error."""

    def __init__(self, urls: Sequence[str], interval_s: float) -> None:
        self._urls = list(urls)
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)
        self.ok = 0
        self.failed = 0
        self.bytes = 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            for url in self._urls:
                try:
                    with urllib.request.urlopen(url, timeout=self._interval) as reply:
                        self.bytes += len(reply.read())
                    self.ok += 1
                except (OSError, urllib.error.URLError):
                    self.failed += 1
            self._stop.wait(self._interval)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Round:
    """One standard-bench run of one configuration."""

    config: str
    round: int
    p50_ms: float | None
    p95_ms: float | None
    throughput: float
    cpu_ms_per_turn: float
    spans: int = 0
    scrapes: int = 0


def metrics_env(first_port: int) -> dict[str, str]:
    """A metrics port per service from ``first_port`` on (``WAYBILL_<NAME>_METRICS_PORT``)."""
    return {
        f"WAYBILL_{spec.name.upper()}_METRICS_PORT": str(first_port + i)
        for i, spec in enumerate(SERVICES)
    }


def config_env(config: str, *, endpoint: str, first_metrics_port: int) -> dict[str, str]:
    """The mesh's variables for ``config``: set both ways, so nothing leaks in from the
    caller's environment."""
    if config == "on":
        return {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        } | metrics_env(first_metrics_port)
    return {"OTEL_TRACES_EXPORTER": "none"} | dict.fromkeys(metrics_env(0), "0")


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _range(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    present = [v for v in values if v is not None]
    return (min(present), max(present)) if present else (None, None)


def _overlap(rounds: Sequence[Round]) -> bool:
    """Whether the p95 ranges of the two configurations overlap."""
    off_low, off_high = _range([r.p95_ms for r in rounds if r.config == "off"])
    on_low, on_high = _range([r.p95_ms for r in rounds if r.config == "on"])
    if off_low is None or off_high is None or on_low is None or on_high is None:
        return False
    return off_low <= on_high and on_low <= off_high


def p95_change_pct(rounds: Sequence[Round]) -> float | None:
    """How much the median p95 of ``on`` exceeds that of ``off``, in percent."""
    off = _median([r.p95_ms for r in rounds if r.config == "off"])
    on = _median([r.p95_ms for r in rounds if r.config == "on"])
    if off is None or on is None or off <= 0:
        return None
    return (on - off) / off * 100


def render(rounds: Sequence[Round], *, rate: float) -> str:
    """Each round, then the medians per configuration and the verdict."""
    lines = [
        "| config | round | p50 ms | p95 ms | turns/s | CPU ms/turn | spans received | scrapes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.config} | {r.round} | {_fmt(r.p50_ms)} | {_fmt(r.p95_ms)} | {r.throughput:.1f} "
        f"| {r.cpu_ms_per_turn:.2f} | {r.spans} | {r.scrapes} |"
        for r in rounds
    ]
    lines += [
        "",
        "| config | median p50 ms | median p95 ms | p95 range ms | median CPU ms/turn |",
        "|---|---|---|---|---|",
    ]
    for config in CONFIGS:
        mine = [r for r in rounds if r.config == config]
        low, high = _range([r.p95_ms for r in mine])
        lines.append(
            f"| {config} | {_fmt(_median([r.p50_ms for r in mine]))} "
            f"| {_fmt(_median([r.p95_ms for r in mine]))} | {_fmt(low)}-{_fmt(high)} "
            f"| {_fmt(_median([r.cpu_ms_per_turn for r in mine]), 2)} |"
        )
    for config in CONFIGS:
        held = _median([r.throughput for r in rounds if r.config == config])
        if held is not None and held < SUSTAINED * rate:
            lines.append(
                f"\n{config}: {held:.1f} of {rate:g} turns/s (median): the rate was not "
                "sustained, so its p95 measures a growing queue more than a turn"
            )
    change = p95_change_pct(rounds)
    if change is None:
        lines.append("\np95 change: not measured")
    else:
        verdict = "within" if change <= TARGET_PCT else "over"
        lines.append(
            f"\np95 with observability on at {rate:g} turns/s: {change:+.1f}% against off "
            f"({verdict} the {TARGET_PCT:g}% budget)"
        )
        if _overlap(rounds):
            lines.append(
                "the two configurations' p95 ranges overlap: at these rounds the change is "
                "not told apart from the machine's noise (more or longer rounds)"
            )
    return "\n".join(lines)


WIDTH, HEIGHT, PAD = 560, 320, 56
SERIES = (
    ("off", "p50_ms", "#1b6ac9", "4 3"),
    ("off", "p95_ms", "#1b6ac9", ""),
    ("on", "p50_ms", "#d9822b", "4 3"),
    ("on", "p95_ms", "#d9822b", ""),
)


def plot(rounds: Sequence[Round], *, rate: float) -> str:
    """Every round's p50 (dashed) and p95 (solid) per configuration, as an SVG document."""
    count = max((r.round for r in rounds), default=1)
    peak = max((v for r in rounds for v in (r.p50_ms, r.p95_ms) if v is not None), default=1.0)
    peak = peak or 1.0
    x0, x1, y0, y1 = PAD, WIDTH - PAD // 2, HEIGHT - PAD, PAD // 2 + 24

    def x(n: int) -> float:
        return (x0 + x1) / 2 if count == 1 else x0 + (n - 1) / (count - 1) * (x1 - x0)

    def y(ms: float) -> float:
        return y0 - ms / (peak * 1.1) * (y0 - y1)

    change = p95_change_pct(rounds)
    title = f"tracking at {rate:g} turns/s: turn latency (ms) per round, observability off/on"
    out = [
        f'<text x="{x0}" y="20" font-weight="bold">{escape(title)}</text>',
        f'<text x="{x0}" y="38">median p95 change: '
        f"{'-' if change is None else f'{change:+.1f}%'} (budget +{TARGET_PCT:g}%)</text>",
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>',
    ]
    for frac in (0.25, 0.5, 0.75, 1.0):
        ms = peak * 1.1 * frac
        out.append(f'<text x="{x0 - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:.0f}</text>')
        out.append(f'<line x1="{x0}" y1="{y(ms):.1f}" x2="{x1}" y2="{y(ms):.1f}" stroke="#eee"/>')
    for n in range(1, count + 1):
        out.append(f'<text x="{x(n):.1f}" y="{y0 + 16}" text-anchor="middle">round {n}</text>')
    for i, (config, key, colour, dash) in enumerate(SERIES):
        points = [
            (x(r.round), y(value))
            for r in rounds
            if r.config == config and (value := getattr(r, key)) is not None
        ]
        if not points:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )
        out.extend(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points
        )
        label = f"{config} {key.removesuffix('_ms')}"
        out.append(f'<text x="{x0 + 8 + i * 90}" y="{y0 + 36}" fill="{colour}">{label}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 20}" '
        f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" '
        f'fill="white"/>{"".join(out)}</svg>\n'
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.obs_cost",
        description="The standard bench with OTLP export and metrics scraping on, against "
        "both off, alternated in one session: p50/p95 per round, medians, a plot.",
        epilog="example: python -m bench.obs_cost --rate 200 --duration 20 --rounds 3\n"
        "exit codes: 0 measured, 1 a run failed or nothing was exported/scraped, 2 usage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="tracking", help="bench scenario (tracking)")
    parser.add_argument("--rate", type=float, default=200.0, help="turns/s (200)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured s (20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up s (2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per configuration (3)")
    parser.add_argument(
        "--scrape-interval", type=float, default=1.0, help="seconds between scrapes (1)"
    )
    parser.add_argument("--checkout", type=Path, default=Path("."), help="checkout to run (.)")
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON lines of the rounds (default artifacts/bench/obs-cost-<UTC>.jsonl); "
        "the plot is written beside it as .svg",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    if (
        args.rate <= 0
        or args.duration <= 0
        or args.warmup < 0
        or args.rounds < 1
        or args.scrape_interval <= 0
    ):
        print(
            "obs_cost: --rate, --duration, --rounds and --scrape-interval must be positive",
            file=sys.stderr,
        )
        return EXIT_USAGE
    directory: Path = args.checkout.resolve()
    rounds: list[Round] = []
    with otlp_receiver() as (endpoint, sink):
        for n in range(1, args.rounds + 1):
            for config in CONFIGS if n % 2 else reversed(CONFIGS):
                print(f"== round {n}/{args.rounds}: {config}", file=sys.stderr, flush=True)
                first = free_base_port(len(SERVICES))
                env = config_env(config, endpoint=endpoint, first_metrics_port=first)
                urls = [f"http://127.0.0.1:{first + i}/metrics" for i in range(len(SERVICES))]
                before = sink.taken()
                try:
                    if config == "on":
                        with Scraper(urls, args.scrape_interval) as scraper:
                            run = _run(directory, args, env)
                        scrapes = scraper.ok
                    else:
                        run, scrapes = _run(directory, args, env), 0
                except (OSError, RuntimeError) as exc:
                    print(f"obs_cost: {exc}", file=sys.stderr)
                    return EXIT_FAILED
                done = Round(
                    config=config,
                    round=n,
                    p50_ms=run.p50_ms,
                    p95_ms=run.p95_ms,
                    throughput=run.throughput,
                    cpu_ms_per_turn=run.total,
                    spans=sink.taken() - before,
                    scrapes=scrapes,
                )
                print(
                    f"   p50 {_fmt(done.p50_ms)} ms, p95 {_fmt(done.p95_ms)} ms, "
                    f"{done.throughput:.1f} turns/s, CPU {done.cpu_ms_per_turn:.2f} ms/turn, "
                    f"{done.spans} spans received, {done.scrapes} scrapes",
                    file=sys.stderr,
                    flush=True,
                )
                rounds.append(done)
    rounds.sort(key=lambda r: (CONFIGS.index(r.config), r.round))
    print(render(rounds, rate=args.rate))
    out: Path = args.out or paths.artifacts_dir("bench") / (
        f"obs-cost-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rounds))
    out.with_suffix(".svg").write_text(plot(rounds, rate=args.rate))
    print(f"obs_cost: wrote {out} and {out.with_suffix('.svg')}", file=sys.stderr)
    on = [r for r in rounds if r.config == "on"]
    if any(r.spans == 0 or r.scrapes == 0 for r in on):
        print(
            "obs_cost: a round with observability on exported or scraped nothing", file=sys.stderr
        )
        return EXIT_FAILED
    return EXIT_OK


def _run(directory: Path, args: argparse.Namespace, env: dict[str, str]) -> Run:
    return run_once(
        directory,
        scenario=args.scenario,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        extra_env=env,
    )


if __name__ == "__main__":
    raise SystemExit(main())
