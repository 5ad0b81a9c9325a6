"""Scenario ``cache``: what the answer cache costs on a lookup, and what a hit saves.

Part 1, lookup (in this process): one partition is filled with ``--entries`` entries
(random unit vectors: search cost does not depend on what they say), then each run times
``--lookups`` lookups of questions that are not in it (the slowest path: normalise, exact
key, embed, nearest of all entries), on the in-process backend and on Redis (a sequence
GET, the local index, no payload read on a miss). ``search`` is the nearest-entry step
alone (the vector index at that size); ``lookup_router`` is a policy turn's lookup as the
gateway makes it: normalising, the exact key, the router's vector of the question (the
one it classified with, sent in its answer: decoded here, not embedded again) and the
search; ``lookup_fp32``/``lookup_int8`` embed the question in the gateway instead (the
platform's all-MiniLM-L6-v2, fp32 and int8), as a lookup without the router's vector does.

Part 2, end to end (``--turns`` > 0): the embedded mesh is started, one policy question
is asked once (answered by the policy worker and kept), then each run sends it again in
``--turns`` fresh sessions, timing each Converse from send to its last event; every one
must come back with ``Final.cache_hit``. For comparison the same number of fresh policy
questions (misses) are timed too.

Figures are per-run median and p95, then the median of those over ``--runs`` runs.
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
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from waybill.router.v1 import router_service_pb2 as router

from bench.load_limits import GATEWAY_ENV
from embeddings import Embedder, EmbedderOptions
from gateway.cache.core import (
    AnswerCache,
    CacheBackend,
    MemoryBackend,
    Partition,
    UseCase,
    embedder_embed,
)
from gateway.cache.redis_backend import RedisBackend
from gateway.redis_ratelimit import client_for
from gateway.turn_cache import embedded_of
from router.normalize import for_embedding

NAME = "cache"
DESCRIPTION = "answer cache: lookup latency at N entries per partition; a cached policy turn"
QUESTION = "Do I have a right of withdrawal in the EU?"
MISSES = (
    "how do I send back a parcel that arrived damaged",
    "what happens if my courier loses the package",
    "can a gift be returned without the receipt",
    "who pays for shipping when I return something",
    "are sale items final or can they come back",
)


def _p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


Run = tuple[float, float, float, float]
"""Wall median, wall p95, CPU median, CPU p95 (ms) of one run."""


def _summary(per_run: list[Run]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(r[0] for r in per_run), 3),
        "p95_ms": round(statistics.median(r[1] for r in per_run), 3),
        "median_ms_by_run": [round(r[0], 3) for r in per_run],
        "p95_ms_by_run": [round(r[1], 3) for r in per_run],
        "cpu_median_ms": round(statistics.median(r[2] for r in per_run), 3),
        "cpu_p95_ms": round(statistics.median(r[3] for r in per_run), 3),
    }


async def _timed(call: Callable[[int], Awaitable[object]], count: int) -> Run:
    """Wall time per call, and this process's CPU time per call (all its threads: the
    embedding runs in one), which a busy shared machine does not inflate."""
    took, cpu = [], []
    for i in range(count):
        started, started_cpu = time.perf_counter(), time.process_time()
        await call(i)
        took.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(took), _p95(took), statistics.median(cpu), _p95(cpu)


async def _fill(backend: CacheBackend, partition: Partition, entries: int, dim: int) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((entries, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for i in range(0, entries, 50):
        await asyncio.gather(
            *(
                backend.put(partition, f"{j:032x}", b"x" * 400, vector=vectors[j], ttl_s=3600)
                for j in range(i, min(entries, i + 50))
            )
        )


async def _lookups(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    embedders = {
        "fp32": Embedder.load(options=EmbedderOptions()),
        "int8": Embedder.load(options=EmbedderOptions(quantized=True)),
    }
    for embedder in embedders.values():
        embedder.warm()
    dim = embedders["fp32"].dim
    prefix = f"bench-cache-{uuid.uuid4().hex[:8]}:"
    partition = Partition("bench-tenant", "policy", "INTENT_POLICY_RETURN_WINDOW", "v1")
    backends: dict[str, CacheBackend] = {
        "memory": MemoryBackend(dim=dim, entries=args.entries),
        "redis": RedisBackend(
            client_for(args.redis_url), prefix=prefix, dim=dim, entries=args.entries
        ),
    }
    questions = [
        f"{q} please tell me more about option {chr(97 + i % 26)}"
        for i, q in enumerate(MISSES * (args.lookups // len(MISSES) + 1))
    ][: args.lookups]
    # What the router sends for each question: its int8 vector of it, in the proto.
    routed = [
        router.Embedding(model_version="", values=v.tolist())
        for v in embedders["int8"].embed([for_embedding(q) for q in questions])
    ]
    rng = np.random.default_rng(11)
    queries = rng.standard_normal((args.lookups, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    try:
        for name, backend in backends.items():
            started = time.perf_counter()
            cache = {
                variant: AnswerCache(
                    backend,
                    {"policy": UseCase("policy", ttl_s=3600)},
                    embed=embedder_embed(embedder.embed),
                    model_id="",  # one partition for both variants: the search is what is timed
                )
                for variant, embedder in embedders.items()
            }
            # Where the caches look (both variants: model_id ""), so lookups search 10k too.
            placed = cache["fp32"].placed(partition)
            await _fill(backend, placed, args.entries, dim)
            await backend.nearest(placed, queries[0], 0.95)  # a replica's first sync
            fill_s = time.perf_counter() - started

            async def search(
                i: int, backend: CacheBackend = backend, placed: Partition = placed
            ) -> object:
                return await backend.nearest(placed, queries[i], 0.95)

            async def routed_lookup(i: int, answers: AnswerCache = cache["fp32"]) -> object:
                return await answers.lookup(
                    partition, questions[i], embedded=embedded_of(routed[i])
                )

            runs: dict[str, list[Run]] = {"search": [], "lookup_router": []}
            runs.update({f"lookup_{v}": [] for v in cache})
            for _ in range(args.runs):
                runs["search"].append(await _timed(search, args.lookups))
                runs["lookup_router"].append(await _timed(routed_lookup, args.lookups))
                for variant, answers in cache.items():

                    async def lookup(i: int, answers: AnswerCache = answers) -> object:
                        return await answers.lookup(partition, questions[i])

                    runs[f"lookup_{variant}"].append(await _timed(lookup, args.lookups))
            out[name] = {k: _summary(v) for k, v in runs.items()}
            out[name]["fill_s"] = round(fill_s, 1)
    finally:
        client = client_for(args.redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
            for i in range(0, len(keys), 1000):
                await client.delete(*keys[i : i + 1000])
        finally:
            await client.aclose()
        for backend in backends.values():
            await backend.aclose()
    return out


async def _turns(gateway: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    md = [("x-api-key", key)]
    tag = uuid.uuid4().hex[:8]
    async with grpc.aio.insecure_channel(gateway) as channel:
        stub = gw_grpc.GatewayServiceStub(channel)

        async def converse(message: str, session: str) -> gw.Final:
            request = gw.ConverseRequest(session_id=session, user_id="globex-0001", message=message)
            events = [r.event async for r in stub.Converse(request, metadata=md, timeout=10)]
            final: gw.Final = events[-1].final
            return final

        first = await converse(QUESTION, f"bench-{tag}-first")
        if first.cache_hit or not first.answer:
            raise RuntimeError("the first policy question was not answered by the worker")
        counter = iter(range(10**9))

        async def hit(i: int) -> object:
            final = await converse(QUESTION, f"bench-{tag}-h{next(counter)}")
            if not final.cache_hit:
                raise RuntimeError("a repeated policy question was not served from the cache")
            return final

        async def miss(i: int) -> object:
            n = next(counter)
            return await converse(f"{MISSES[i % len(MISSES)]} ({n})", f"bench-{tag}-m{n}")

        for i in range(3):  # warm the channels and code paths
            await hit(i)
        runs: dict[str, list[Run]] = {"hit": [], "miss": []}
        for _ in range(args.runs):
            runs["hit"].append(await _timed(hit, args.turns))
            runs["miss"].append(await _timed(miss, max(5, args.turns // 5)))
    # The client's CPU time is not the turn's (that is spent in the services): wall only.
    return {
        k: {f: x for f, x in _summary(v).items() if not f.startswith("cpu")}
        for k, v in runs.items()
    }


def _end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    from cli.launcher import Mesh
    from cli.ports import free_base_port
    from runtime import credentials, mesh

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as run_dir:
        env = {
            "WAYBILL_ACCESS_LOG": "0",
            "WAYBILL_LOG_LEVEL": "WARNING",
            **GATEWAY_ENV,
            "WAYBILL_CACHE": "memory",  # (the other scenarios' meshes turn it off)
        }
        with Mesh(
            run_dir=Path(run_dir), base_port=free_base_port(len(mesh.SERVICES)), env=env
        ) as started:
            key = credentials.key_for(started.credentials_path, "globex-home")
            return asyncio.run(_turns(started.addresses["gateway"], key, args))


def build_parser() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog=f"python -m bench --scenario {NAME}")
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument("--entries", type=int, default=10_000, help="entries in the partition")
    parser.add_argument("--lookups", type=int, default=500, help="lookups per run and mode")
    parser.add_argument("--turns", type=int, default=100, help="cached turns per run (0: skip)")
    parser.add_argument("--runs", type=int, default=5, help="runs")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("WAYBILL_REDIS_URL") or "redis://127.0.0.1:6379/0",
        help="the Redis to time (default: $WAYBILL_REDIS_URL, else local)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the scenario; the exit code."""
    args = build_parser().parse_args(list(argv))
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        # As the gateway runs (gateway/__main__.py): one BLAS thread, which must be set
        # before numpy loads, and the bench's other modules have loaded it already.
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "bench", *argv])
    if min(args.entries, args.lookups, args.runs) < 1 or args.turns < 0:
        print("error: --entries, --lookups and --runs must be >= 1", file=sys.stderr)
        return 2
    try:
        figures: dict[str, Any] = {"scenario": NAME, "entries": args.entries, "runs": args.runs}
        figures["lookup"] = asyncio.run(_lookups(args))
        if args.turns:
            figures["turn"] = _end_to_end(args)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"answer cache, {args.entries} entries in one partition, {args.runs} runs")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"{'backend':<8}{'step':<14}{'median ms':>11}{'p95 ms':>9}{'cpu med':>9}{'cpu p95':>9}"
        "   per-run p95"
    )
    for backend, steps in figures["lookup"].items():
        for step, row in steps.items():
            if isinstance(row, dict):
                print(
                    f"{backend:<8}{step:<14}{row['median_ms']:>11}{row['p95_ms']:>9}"
                    f"{row['cpu_median_ms']:>9}{row['cpu_p95_ms']:>9}   {row['p95_ms_by_run']}"
                )
    for kind, row in figures.get("turn", {}).items():
        print(
            f"{'turn':<8}{kind:<14}{row['median_ms']:>11}{row['p95_ms']:>9}{'-':>9}{'-':>9}   "
            f"{row['p95_ms_by_run']}"
        )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
