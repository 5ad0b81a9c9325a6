"""Scenario ``ledger``: reserve+commit pairs per second, and the latency of a pair.

A pair is what one turn costs the ledger: a Reserve of its worst case, then a Commit
of one priced generation. ``--concurrency`` callers run pairs back to back, ``--runs``
rounds of ``--pairs`` each, against each store:

1. the store in-process (no gRPC): what the store itself sustains; for the embedded
   store that is the group-committed journal (every pair's two records fsynced before
   they are acknowledged), for PostgreSQL the conditional updates and COMMITs;
2. over gRPC against a real ``python -m ledger`` (production interceptors, validation,
   the same store), the client on the same machine: as unary Reserve and Commit calls,
   and as the gateway makes them, operations on one Exchange stream
   (``gateway.ledger_stream``); beside them the baseline, two GetBudget reads in place of
   the two writes: what unary round trips alone cost on this machine.

Medians of the per-run figures are reported, with every run's values in the JSON. The
PostgreSQL rows need one at ``--pg-dsn``; a fresh schema is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from waybill.common.v1 import money_pb2, usage_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from bench import stats
from cli.arguments import positive_int
from cli.launcher import Mesh, MeshError
from cli.ports import free_base_port
from gateway.budgets import LedgerClient
from runtime import mesh
from runtime.deadlines import DeadlinePolicy

NAME = "ledger"
DESCRIPTION = "ledger reserve+commit pairs/s and pair latency (embedded journal, PostgreSQL)"
TARGET_PAIRS_PER_S = 5000
EXIT_OK = 0
EXIT_SETUP = 1
DEFAULT_DSN = os.environ.get("WAYBILL_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BUDGET = 10**15
"""The bench team's limit: never the bottleneck."""

Pair = Callable[[str, int], Awaitable[None]]
"""Reserves and commits one turn with this request id, for team number ``i % teams``."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench --scenario ledger",
        description=DESCRIPTION + ". " + (__doc__ or "").split("\n\n")[1],
    )
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=positive_int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--pairs", type=positive_int, default=5000, help="pairs per round (default 5000)"
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=128, help="callers at once (default 128)"
    )
    parser.add_argument(
        "--teams",
        type=positive_int,
        default=1,
        help="teams the pairs are spread over (default 1: every pair on one budget)",
    )
    parser.add_argument(
        "--stores",
        default="embedded,postgres",
        help="comma-separated: embedded, postgres (default both)",
    )
    parser.add_argument(
        "--modes", default="store,grpc", help="comma-separated: store, grpc (default both)"
    )
    parser.add_argument("--pg-dsn", default=DEFAULT_DSN, help="PostgreSQL for the postgres rows")
    parser.add_argument("--json-out", type=Path, help="append the summary line to this file")
    return parser


async def _round(pair: Pair, *, pairs: int, concurrency: int) -> dict[str, float]:
    """One round: pairs/s over the round, and p50/p95 of a pair in milliseconds."""
    tag = uuid.uuid4().hex[:8]
    numbers = iter(range(pairs))
    samples: list[float] = []

    async def caller() -> None:
        for i in numbers:
            began = time.perf_counter()
            await pair(f"bench-{tag}-{i:08d}", i)
            samples.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    ms = [s * 1000 for s in samples]
    return {
        "pairs_per_s": round(pairs / elapsed, 1),
        "p50_ms": round(stats.percentile(ms, 50) or 0.0, 3),
        "p95_ms": round(stats.percentile(ms, 95) or 0.0, 3),
    }


async def _rounds(pair: Pair, args: argparse.Namespace, label: str) -> dict[str, Any]:
    await _round(pair, pairs=min(args.pairs, 500), concurrency=args.concurrency)  # warm up
    runs = []
    for run in range(args.runs):
        figures = await _round(pair, pairs=args.pairs, concurrency=args.concurrency)
        runs.append(figures)
        print(f"  {label} run {run + 1}: {figures}", file=sys.stderr, flush=True)
    return {
        "runs": runs,
        **{k: statistics.median(r[k] for r in runs) for k in ("pairs_per_s", "p50_ms", "p95_ms")},
    }


# -- in-process ------------------------------------------------------------------------------


async def _store_rows(store_name: str, location: str, args: argparse.Namespace) -> dict[str, Any]:
    from ledger.core import PricedGeneration, PricedUsage, ReserveInput
    from ledger.embedded_store import EmbeddedLedgerStore
    from ledger.store import LedgerStore

    store: LedgerStore
    if store_name == "embedded":
        store = await EmbeddedLedgerStore.open(Path(location), default_limit=BUDGET, ttl_s=300)
    else:
        from ledger.pg_store import PostgresLedgerStore

        store = await PostgresLedgerStore.open(
            args.pg_dsn, schema=location, default_limit=BUDGET, ttl_s=300, max_size=16
        )
    priced = PricedUsage((PricedGeneration("openai/gpt-4o-mini", 1000, 100, 210),), "bench")

    async def pair(request_id: str, i: int) -> None:
        now = datetime.now(UTC)
        team = f"bench-{i % args.teams}"
        held = await store.reserve(
            ReserveInput(request_id, "acme-retail", team, "", "order-support", 5000), now=now
        )
        await store.commit("acme-retail", held.reservation_id, priced, now=now)

    try:
        figures = await _rounds(pair, args, f"{store_name} in-process")
        if isinstance(store, EmbeddedLedgerStore):
            journal = store.journal
            figures["records_per_flush"] = round(journal.appended / max(journal.batches, 1), 1)
        return figures
    finally:
        await store.close()


# -- over gRPC -------------------------------------------------------------------------------


async def _grpc_rows(address: str, args: argparse.Namespace, label: str) -> dict[str, Any]:
    usage = usage_pb2.Usage(
        input_tokens=1000,
        output_tokens=100,
        generations=[
            usage_pb2.Generation(
                backend="openai", model="gpt-4o-mini", input_tokens=1000, output_tokens=100
            )
        ],
    )
    estimate = money_pb2.Cost(currency_code="USD", micro_units=5000)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.LedgerServiceStub(channel)

        async def pair(request_id: str, i: int) -> None:
            held = await stub.Reserve(
                pb.ReserveRequest(
                    request_id=request_id,
                    tenant_id="acme-retail",
                    team_id=f"bench-{i % args.teams}",
                    feature_id="order-support",
                    estimate=estimate,
                ),
                timeout=30,
            )
            await stub.Commit(
                pb.CommitRequest(
                    reservation_id=held.reservation_id, tenant_id="acme-retail", usage=usage
                ),
                timeout=30,
            )

        async def baseline(request_id: str, i: int) -> None:
            """Two reads in place of the two writes: what the round trips alone cost."""
            for _ in range(2):
                await stub.GetBudget(
                    pb.GetBudgetRequest(tenant_id="acme-retail", team_id=f"bench-{i % args.teams}"),
                    timeout=30,
                )

        client = LedgerClient(stub, policy=DeadlinePolicy(default_s=30))

        async def exchanged(request_id: str, i: int) -> None:
            """The same pair as the gateway sends it: two operations on its one stream."""
            held = await client.reserve(
                pb.ReserveRequest(
                    request_id=request_id,
                    tenant_id="acme-retail",
                    team_id=f"bench-{i % args.teams}",
                    feature_id="order-support",
                    estimate=estimate,
                )
            )
            await client.commit(
                pb.CommitRequest(
                    reservation_id=held.reservation_id, tenant_id="acme-retail", usage=usage
                )
            )

        figures = await _rounds(pair, args, label)
        figures["exchange"] = await _rounds(exchanged, args, f"{label}, Exchange stream")
        await client.close()
        figures["baseline"] = await _rounds(baseline, args, f"{label}, 2 x GetBudget")
        return figures


def _over_grpc(store_name: str, location: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {
        "WAYBILL_ACCESS_LOG": "0",
        "WAYBILL_LOG_LEVEL": "WARNING",
        "WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS": str(BUDGET),
    }
    if store_name == "embedded":
        env["WAYBILL_LEDGER_DIR"] = location
    else:
        env |= {"WAYBILL_LEDGER_POSTGRES_URL": args.pg_dsn, "WAYBILL_LEDGER_PG_SCHEMA": location}
    with tempfile.TemporaryDirectory(prefix="bench-ledger-run-") as run_dir:
        launcher = Mesh(
            run_dir=Path(run_dir),
            services=["ledger"],
            base_port=free_base_port(len(mesh.SERVICES)),
            env=env,
        )
        launcher.start(timeout_s=60)
        try:
            return asyncio.run(
                _grpc_rows(launcher.addresses["ledger"], args, f"{store_name} over gRPC")
            )
        finally:
            launcher.stop()


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _measure(store_name: str, args: argparse.Namespace) -> dict[str, Any]:
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    out: dict[str, Any] = {}
    for mode in modes:
        print(f"== ledger: {store_name}, {mode} ==", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            location = tmp if store_name == "embedded" else f"bench_ledger_{uuid.uuid4().hex[:10]}"
            try:
                if mode == "store":
                    out[mode] = asyncio.run(_store_rows(store_name, location, args))
                else:
                    out[mode] = _over_grpc(store_name, location, args)
            finally:
                if store_name == "postgres":
                    _drop_schema(args.pg_dsn, location)
    return out


def main(argv: Sequence[str]) -> int:
    """Run the scenario; the exit status."""
    args = build_parser().parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    results: dict[str, Any] = {}
    try:
        for store_name in stores:
            if store_name not in {"embedded", "postgres"}:
                print(f"ledger: unknown store {store_name!r}", file=sys.stderr)
                return EXIT_SETUP
            results[store_name] = _measure(store_name, args)
    except (MeshError, OSError) as exc:
        print(f"ledger: setup failed: {exc}", file=sys.stderr)
        return EXIT_SETUP
    print(
        f"\nledger, medians of {args.runs} runs x {args.pairs} pairs,"
        f" {args.concurrency} callers, {args.teams} team(s)"
        f" (target >= {TARGET_PAIRS_PER_S} pairs/s)\n"
    )
    print(f"{'':34} {'pairs/s':>9} {'p50 ms':>8} {'p95 ms':>8}")
    line: dict[str, Any] = {
        "scenario": NAME,
        "runs": args.runs,
        "pairs": args.pairs,
        "concurrency": args.concurrency,
        "teams": args.teams,
    }
    for store_name, modes in results.items():
        for mode, figures in modes.items():
            label = f"{store_name}, {'in-process store' if mode == 'store' else 'over gRPC'}"
            print(
                f"{label:34} {figures['pairs_per_s']:9.0f} {figures['p50_ms']:8.2f}"
                f" {figures['p95_ms']:8.2f}"
            )
            for key in ("pairs_per_s", "p50_ms", "p95_ms", "records_per_flush"):
                if key in figures:
                    line[f"{store_name}_{mode}_{key}"] = figures[key]
            if "exchange" in figures:
                ex = figures["exchange"]
                print(
                    f"{'  on one Exchange stream':34} {ex['pairs_per_s']:9.0f}"
                    f" {ex['p50_ms']:8.2f} {ex['p95_ms']:8.2f}"
                )
                line[f"{store_name}_{mode}_exchange_pairs_per_s"] = ex["pairs_per_s"]
            if "baseline" in figures:
                base = figures["baseline"]
                print(
                    f"{'  baseline: 2 x GetBudget (reads)':34} {base['pairs_per_s']:9.0f}"
                    f" {base['p50_ms']:8.2f} {base['p95_ms']:8.2f}"
                )
                line[f"{store_name}_{mode}_baseline_pairs_per_s"] = base["pairs_per_s"]
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        with args.json_out.open("a") as fh:
            fh.write(json.dumps({**line, "detail": results}) + "\n")
    print(json.dumps(line), flush=True)
    return EXIT_OK
