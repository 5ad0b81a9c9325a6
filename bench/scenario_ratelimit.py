"""Scenario ``ratelimit``: what one admission costs, in-process against Redis.

Each run times ``RateLimiter.admit`` for ``--calls`` calls of one team spread over many
customers (four buckets per call: team and user, requests and tokens; limits high enough
that every call is admitted, so the figure is the common path), first on the in-process
buckets, then on the Redis script (one EVALSHA round trip). Runs alternate the two so
drift hits both alike; the figures are the median and p95 of each run, then the median
of those over the runs. ``--concurrency`` > 1 keeps that many admissions in flight (one
event loop, one connection pool), as a busy gateway would. The Redis keys are written
under a fresh prefix and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence

from gateway.ratelimit import BucketStore, InProcessBuckets, RateLimiter
from gateway.ratelimit_config import Policy, Rate, RateLimitSettings, ScopeLimits
from gateway.redis_ratelimit import RedisBuckets, client_for
from runtime.principal import Principal

NAME = "ratelimit"
DESCRIPTION = "admission latency of the rate limiter: in-process buckets vs the Redis script"

_POLICY = Policy(
    team=ScopeLimits(requests=Rate(10**9, 10**9), tokens=Rate(10**9, 10**9)),
    user=ScopeLimits(requests=Rate(10**9, 10**9), tokens=Rate(10**9, 10**9)),
)
_TEAM = Principal("bench-tenant", "support", "service")


def _p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def _time(limiter: RateLimiter, calls: int, concurrency: int) -> list[float]:
    """Microseconds per admission."""
    took: list[float] = []
    queue = iter(range(calls))

    async def worker() -> None:
        for i in queue:
            started = time.perf_counter_ns()
            await limiter.admit(_TEAM, f"user-{i % 1000:04d}")
            took.append((time.perf_counter_ns() - started) / 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return took


async def _measure(args: argparse.Namespace) -> dict[str, object]:
    prefix = f"bench-ratelimit-{uuid.uuid4().hex[:8]}:"
    settings = RateLimitSettings(defaults=_POLICY)
    stores: dict[str, BucketStore] = {
        "in-process": InProcessBuckets(),
        "redis": RedisBuckets(client_for(args.redis_url)),
    }
    limiters = {name: RateLimiter(settings, store, prefix=prefix) for name, store in stores.items()}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in limiters}
    redis_store = stores["redis"]
    assert isinstance(redis_store, RedisBuckets)
    try:
        for limiter in limiters.values():  # warm up: connections, the script, the code
            await _time(limiter, min(args.calls, 200), args.concurrency)
        if redis_store.degraded:
            raise RuntimeError(f"no Redis answers at {args.redis_url}")
        for _ in range(args.runs):
            for name, limiter in limiters.items():
                took = await _time(limiter, args.calls, args.concurrency)
                runs[name].append((statistics.median(took), _p95(took)))
        if redis_store.degraded:
            raise RuntimeError("Redis stopped answering during the runs")
    finally:
        client = client_for(args.redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
        for limiter in limiters.values():
            await limiter.close()
    figures: dict[str, object] = {
        "scenario": NAME,
        "calls": args.calls,
        "runs": args.runs,
        "concurrency": args.concurrency,
    }
    for name, per_run in runs.items():
        figures[name] = {
            "median_us": round(statistics.median(m for m, _ in per_run), 1),
            "p95_us": round(statistics.median(p for _, p in per_run), 1),
            "median_us_by_run": [round(m, 1) for m, _ in per_run],
            "p95_us_by_run": [round(p, 1) for _, p in per_run],
        }
    return figures


def build_parser() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog=f"python -m bench --scenario {NAME}")
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=2000, help="admissions per run and store")
    parser.add_argument("--runs", type=int, default=5, help="runs per store, alternated")
    parser.add_argument("--concurrency", type=int, default=1, help="admissions in flight")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("WAYBILL_REDIS_URL") or "redis://127.0.0.1:6379/0",
        help="the Redis to time (default: $WAYBILL_REDIS_URL, else local)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the scenario; the exit code."""
    args = build_parser().parse_args(list(argv))
    if args.calls < 1 or args.runs < 1 or args.concurrency < 1:
        print("error: --calls, --runs and --concurrency must be >= 1", file=sys.stderr)
        return 2
    try:
        figures = asyncio.run(_measure(args))
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"admission latency, {args.runs} runs x {args.calls} calls, concurrency {args.concurrency}"
    )
    print(f"{'store':<12}{'median us':>12}{'p95 us':>10}   per-run medians")
    for name in ("in-process", "redis"):
        row = figures[name]
        assert isinstance(row, dict)
        print(f"{name:<12}{row['median_us']:>12}{row['p95_us']:>10}   {row['median_us_by_run']}")
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
