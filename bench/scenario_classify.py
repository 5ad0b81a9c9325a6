"""Scenario ``classify``: the router's latency and throughput.

Four measurements, each repeated ``--runs`` times (medians of the per-run
figures are reported, with every run's values in the JSON):

1. single-query latency in-process, through the real Classifier (event loop,
   micro-batcher, model thread), against the baseline of the same query
   classified directly on the calling thread (no batcher) in the same rounds:
   the difference is what batching costs a lone query;
2. single-query latency over gRPC against a real router process
   (``python -m router``, production interceptors), one call at a time;
3. throughput under 32 and 128 closed-loop callers over gRPC, with the mean
   batch size read from the router's own metrics;
4. the same at 32 callers against a router started with
   ``WAYBILL_ROUTER_MAX_BATCH=1`` (no batching): the baseline for 3.

The load generator runs on the same cores as the router: on a shared 2-core
machine the figures are noisy; compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from bench import stats
from cli.arguments import positive_int, positive_ints
from cli.launcher import Mesh, MeshError
from cli.ports import free_base_port
from embeddings import Embedder, EmbedderOptions, ModelMissingError
from router.calibration import Calibration
from router.classifier import Classifier, Query, classify_with, snapshot_of
from router.decision import PriorOptions
from router.server import base_exemplars
from router.settings import RouterSettings
from runtime import mesh

NAME = "classify"
DESCRIPTION = "router Classify latency (in-process, gRPC) and throughput at 32/128 callers"
TARGET_GRPC_P95_MS = 5.0
TARGET_THROUGHPUT = 400.0
EXIT_OK = 0
EXIT_SETUP = 1
_EPILOG = """\
examples:
  python -m bench --scenario classify
  python -m bench --scenario classify --runs 5 --queries 500 --duration 10
  python -m bench --scenario classify --callers 8,32,128 --json-out artifacts/bench/classify.jsonl

exit codes: 0 completed, 1 model missing or router did not start, 2 usage error.
"""
MESSAGES = (
    "where is my order?",
    "when will my parcel arrive",
    "can I see the delivery photo",
    "how long do I have to return shoes",
    "I want a refund for the broken lamp",
    "it says delivered but I never got it",
    "please cancel my order",
    "let me talk to a person",
    "hello",
    "do you ship to Canada",
    "where is WB 4536 762 395?",
    "and the other one?",
    "the jacket arrived with a big tear in the sleeve, what can you do about it",
    "what's the weather tomorrow",
)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the scenario."""
    parser = argparse.ArgumentParser(
        prog="python -m bench --scenario classify",
        description=DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=positive_int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--queries", type=positive_int, default=300, help="single queries per run (default 300)"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per throughput run (default 5)"
    )
    parser.add_argument(
        "--callers",
        type=positive_ints,
        default=(32, 128),
        help="concurrent callers (default 32,128)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the unbatched router")
    parser.add_argument("--json-out", type=Path, help="append the final JSON line to this file")
    return parser


def _ms(samples: Sequence[float], pct: float) -> float:
    value = stats.percentile([s * 1000 for s in samples], pct)
    return round(value, 3) if value is not None else float("nan")


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


# -- in-process --------------------------------------------------------------------


async def _inprocess(args: argparse.Namespace) -> dict[str, Any]:
    calibration = Calibration.load()
    embedder = Embedder.load(options=EmbedderOptions(quantized=calibration.quantized))
    settings = RouterSettings.from_env()
    snapshot = snapshot_of(embedder, base_exemplars(settings), vectors_dir=settings.index_dir)
    classifier = Classifier(embedder, snapshot, calibration)
    classifier.start()
    prior = PriorOptions()
    runs: list[dict[str, float]] = []
    try:
        for text in MESSAGES:  # warm every shape once
            await classifier.classify(text)
        for run in range(args.runs):
            batched: list[float] = []
            direct: list[float] = []
            for i in range(args.queries):
                text = MESSAGES[i % len(MESSAGES)]
                # Alternate which goes first so drift and caches hit both alike.
                order = ("batched", "direct") if (i + run) % 2 == 0 else ("direct", "batched")
                for kind in order:
                    began = time.perf_counter()
                    if kind == "batched":
                        await classifier.classify(text)
                        batched.append(time.perf_counter() - began)
                    else:
                        classify_with(embedder, snapshot, calibration, [Query(text)], prior=prior)
                        direct.append(time.perf_counter() - began)
            runs.append(
                {
                    "p50_ms": _ms(batched, 50),
                    "p95_ms": _ms(batched, 95),
                    "direct_p50_ms": _ms(direct, 50),
                    "direct_p95_ms": _ms(direct, 95),
                }
            )
            print(f"  in-process run {run + 1}: {runs[-1]}", file=sys.stderr)
    finally:
        await classifier.close()
    return {
        "runs": runs,
        **{k: _median([r[k] for r in runs]) for k in runs[0]},
        "index": _index_search(snapshot, embedder, args.runs),
    }


def _index_search(snapshot: Any, embedder: Embedder, runs: int) -> dict[str, float]:
    """The neighbour search alone, a batch of 32 with k = 64: ours (numpy) vs faiss's
    exhaustive flat index over the same vectors, interleaved in the same rounds."""
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(1)  # the router's one thread per model run
    queries = embedder.embed([MESSAGES[i % len(MESSAGES)] for i in range(32)])
    flat = faiss.IndexFlatIP(snapshot.index.dim)
    flat.add(snapshot.index.vectors)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(max(runs, 1) * 20):
        began = time.perf_counter()
        snapshot.index.search(queries, 64)
        ours.append(time.perf_counter() - began)
        began = time.perf_counter()
        flat.search(np.ascontiguousarray(queries), 64)
        theirs.append(time.perf_counter() - began)
    return {
        "exemplars": float(len(snapshot.index)),
        "numpy_p50_ms": _ms(ours, 50),
        "faiss_flat_p50_ms": _ms(theirs, 50),
    }


# -- over gRPC ---------------------------------------------------------------------


@dataclass(slots=True)
class Router:
    """A router process started for the bench."""

    mesh: Mesh
    address: str
    metrics_port: int


def _start_router(run_dir: Path, *, max_batch: int | None) -> Router:
    base = free_base_port(len(mesh.SERVICES) + 1)
    metrics_port = base + len(mesh.SERVICES)
    env = {
        "WAYBILL_ROUTER_METRICS_PORT": str(metrics_port),
        "WAYBILL_ACCESS_LOG": "0",
        "WAYBILL_LOG_LEVEL": "WARNING",
        # The corpus repeats; with the embedding cache on, every query after the
        # first of each text would skip the model. Measure the model path.
        "WAYBILL_ROUTER_EMBEDDING_CACHE": "0",
    }
    if max_batch is not None:
        env["WAYBILL_ROUTER_MAX_BATCH"] = str(max_batch)
    launcher = Mesh(run_dir=run_dir, services=["router"], base_port=base, env=env)
    launcher.start(timeout_s=120)
    return Router(launcher, launcher.addresses["router"], metrics_port)


def _batch_totals(port: int) -> tuple[float, float]:
    """(runs, messages) embedded so far, from the router's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    count = re.search(r"^waybill_router_batch_size_count (\S+)$", text, re.M)
    total = re.search(r"^waybill_router_batch_size_sum (\S+)$", text, re.M)
    return (float(count.group(1)) if count else 0.0, float(total.group(1)) if total else 0.0)


def _request(i: int) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(tenant_id="acme-retail", text=MESSAGES[i % len(MESSAGES)])


async def _grpc_latency(address: str, queries: int, runs: int) -> dict[str, Any]:
    per_run: list[dict[str, float]] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for i in range(len(MESSAGES)):
            await stub.Classify(_request(i), timeout=5)
        for run in range(runs):
            samples: list[float] = []
            for i in range(queries):
                began = time.perf_counter()
                await stub.Classify(_request(i), timeout=5)
                samples.append(time.perf_counter() - began)
            per_run.append({"p50_ms": _ms(samples, 50), "p95_ms": _ms(samples, 95)})
            print(f"  gRPC single run {run + 1}: {per_run[-1]}", file=sys.stderr)
    return {"runs": per_run, **{k: _median([r[k] for r in per_run]) for k in per_run[0]}}


async def _load(address: str, callers: int, duration_s: float) -> tuple[list[float], int]:
    """Closed loop: each caller sends its next call when the last one answered."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration_s
    # A few channels, as a fleet of gateways would have: one HTTP/2 connection
    # serialises its frames on one socket.
    channels = [grpc.aio.insecure_channel(address) for _ in range(min(4, callers))]
    stubs = [pb_grpc.RouterServiceStub(c) for c in channels]

    async def caller(n: int) -> None:
        nonlocal errors
        stub = stubs[n % len(stubs)]
        i = n
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            try:
                await stub.Classify(_request(i), timeout=10)
            except grpc.aio.AioRpcError:
                errors += 1
            else:
                latencies.append(time.perf_counter() - began)
            i += callers

    try:
        await asyncio.gather(*(caller(n) for n in range(callers)))
    finally:
        for channel in channels:
            await channel.close()
    return latencies, errors


async def _throughput(router: Router, callers: int, args: argparse.Namespace) -> dict[str, Any]:
    await _load(router.address, callers, 1.0)  # warm-up at this concurrency
    per_run: list[dict[str, float]] = []
    for run in range(args.runs):
        runs_before, messages_before = _batch_totals(router.metrics_port)
        began = time.perf_counter()
        latencies, errors = await _load(router.address, callers, args.duration)
        elapsed = time.perf_counter() - began
        runs_after, messages_after = _batch_totals(router.metrics_port)
        model_runs = runs_after - runs_before
        per_run.append(
            {
                "throughput": round(len(latencies) / elapsed, 1),
                "p50_ms": _ms(latencies, 50),
                "p95_ms": _ms(latencies, 95),
                "mean_batch": round((messages_after - messages_before) / max(model_runs, 1), 2),
                "errors": errors,
            }
        )
        print(f"  {callers} callers run {run + 1}: {per_run[-1]}", file=sys.stderr)
    return {"runs": per_run, **{k: _median([r[k] for r in per_run]) for k in per_run[0]}}


async def _over_grpc(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    router = _start_router(run_dir / "batched", max_batch=None)
    try:
        figures["grpc_single"] = await _grpc_latency(router.address, args.queries, args.runs)
        for callers in args.callers:
            figures[f"callers_{callers}"] = await _throughput(router, callers, args)
    finally:
        router.mesh.stop()
    if not args.no_baseline:
        baseline = _start_router(run_dir / "unbatched", max_batch=1)
        try:
            figures["unbatched_callers_32"] = await _throughput(baseline, 32, args)
        finally:
            baseline.mesh.stop()
    return figures


# -- report ------------------------------------------------------------------------


def _render(inproc: dict[str, Any], remote: dict[str, Any], callers: Sequence[int]) -> str:
    lines = [
        "classify (noisy: shared 2-core machine; medians of the runs)",
        f"  in-process single query   p50 {inproc['p50_ms']:.2f} ms  p95 {inproc['p95_ms']:.2f} ms"
        f"   (direct, no batcher: p50 {inproc['direct_p50_ms']:.2f} ms"
        f"  p95 {inproc['direct_p95_ms']:.2f} ms)",
        f"  index search, 32 queries  numpy p50 {inproc['index']['numpy_p50_ms']:.2f} ms"
        f"  vs faiss flat p50 {inproc['index']['faiss_flat_p50_ms']:.2f} ms"
        f"  ({inproc['index']['exemplars']:.0f} exemplars, k 64)",
        f"  gRPC single query         p50 {remote['grpc_single']['p50_ms']:.2f} ms"
        f"  p95 {remote['grpc_single']['p95_ms']:.2f} ms   (target p95 < {TARGET_GRPC_P95_MS} ms)",
    ]
    for n in callers:
        f = remote[f"callers_{n}"]
        lines.append(
            f"  {n:>3} callers over gRPC     {f['throughput']:.0f}/s  p50 {f['p50_ms']:.1f} ms"
            f"  p95 {f['p95_ms']:.1f} ms  mean batch {f['mean_batch']:.1f}"
            f"  errors {f['errors']:.0f}"
            f"   (target >= {TARGET_THROUGHPUT:.0f}/s)"
        )
    base = remote.get("unbatched_callers_32")
    if base:
        lines.append(
            f"   32 callers, no batching  {base['throughput']:.0f}/s  p50 {base['p50_ms']:.1f} ms"
            f"  p95 {base['p95_ms']:.1f} ms  (baseline)"
        )
    return "\n".join(lines)


def _summary(
    inproc: dict[str, Any], remote: dict[str, Any], callers: Sequence[int]
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "scenario": NAME,
        "inproc_p50_ms": inproc["p50_ms"],
        "inproc_p95_ms": inproc["p95_ms"],
        "inproc_direct_p50_ms": inproc["direct_p50_ms"],
        "inproc_direct_p95_ms": inproc["direct_p95_ms"],
        "index_numpy_p50_ms": inproc["index"]["numpy_p50_ms"],
        "index_faiss_flat_p50_ms": inproc["index"]["faiss_flat_p50_ms"],
        "grpc_p50_ms": remote["grpc_single"]["p50_ms"],
        "grpc_p95_ms": remote["grpc_single"]["p95_ms"],
    }
    for n in callers:
        f = remote[f"callers_{n}"]
        line[f"throughput_{n}"] = f["throughput"]
        line[f"p50_ms_{n}"] = f["p50_ms"]
        line[f"p95_ms_{n}"] = f["p95_ms"]
        line[f"mean_batch_{n}"] = f["mean_batch"]
        line[f"errors_{n}"] = f["errors"]
    if "unbatched_callers_32" in remote:
        line["unbatched_throughput_32"] = remote["unbatched_callers_32"]["throughput"]
        line["unbatched_p95_ms_32"] = remote["unbatched_callers_32"]["p95_ms"]
    return line


def main(argv: Sequence[str]) -> int:
    """Run the scenario; the exit status."""
    args = build_parser().parse_args(argv)
    print("== classify: in-process single queries ==", file=sys.stderr)
    try:
        inproc = asyncio.run(_inprocess(args))
    except ModelMissingError as exc:
        print(f"classify: {exc}", file=sys.stderr)
        return EXIT_SETUP
    print("== classify: over gRPC against python -m router ==", file=sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-classify-") as tmp:
            remote = asyncio.run(_over_grpc(args, Path(tmp)))
    except MeshError as exc:
        print(f"classify: the router did not start: {exc}", file=sys.stderr)
        return EXIT_SETUP
    print(_render(inproc, remote, args.callers))
    line = _summary(inproc, remote, args.callers)
    full = {**line, "detail": {"inprocess": inproc, "grpc": remote}}
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        with args.json_out.open("a") as fh:
            fh.write(json.dumps(full) + "\n")
    print(json.dumps(line), flush=True)
    return EXIT_OK
