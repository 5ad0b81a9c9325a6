"""Scenario ``pool-overhead``: what the LLM pool (and the mesh) add to a Triton generation.

Each round calls the same Triton model with the same prompt three ways, in a
rotating order so drift hits all alike: directly with ``tritonclient.grpc.aio``
(the baseline), through the ``TritonBackend`` alone, and through ``LLMPool``
(chain ``triton-small -> composer``: breaker, retry policy, pricing, metrics).
Time to first delta and time to the end of the stream are taken per call; the
figures of merit are the pool's added TTFT (p50 target < 2 ms) and per-turn
overhead against the direct call in the same run. ``--mesh`` also runs whole
turns through the gateway with Triton at the head of the tracking chain (that
path adds guardrails, routing and the order lookups: it is reported beside
the others, not subtracted). The breaker-and-fallback decision is timed in
isolation (target < 0.1 ms).

By default it starts the CPU test Triton server (nvidia-pytriton; see
docs/inference.md); ``--triton-url`` points it at another server, e.g. a GPU
node. The machine's cores are shared: figures are noisy, compare within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio  # type: ignore[import-untyped, unused-ignore]
from tritonclient.grpc import (  # type: ignore[import-untyped, unused-ignore]
    InferInput,
    InferRequestedOutput,
)

from bench import stats
from llm_pool.breaker import BreakerPolicy
from llm_pool.composer import Composer
from llm_pool.generation import AnswerPlan, GenerationRequest, Prompt, TextDelta
from llm_pool.pool import LinkOptions, LLMPool
from llm_pool.prompting import render_text
from llm_pool.triton import OUTPUTS, TritonBackend

NAME = "pool-overhead"
DESCRIPTION = "LLM pool added TTFT and per-turn overhead vs direct tritonclient, same run"
TARGET_ADDED_TTFT_P50_MS = 2.0
TARGET_DECISION_MS = 0.1
_EPILOG = """\
examples:
  python -m bench --scenario pool-overhead                   # CPU test Triton, 200 rounds
  python -m bench --scenario pool-overhead --rounds 50 --mesh
  python -m bench --scenario pool-overhead --triton-url gpu-node:8001 --prompt-format llama3

exit codes: 0 completed, 1 Triton or mesh unavailable, 2 usage error, 130 interrupted.
"""
FACTS = {
    "awb": "WB4536762395",
    "status": "out_for_delivery",
    "title": "Desk lamp and 2 more",
    "eta": "by Mon 23 Nov",
}


def _request(max_tokens: int) -> GenerationRequest:
    return GenerationRequest(
        use_case="tracking",
        prompt=Prompt(
            instructions="You are Waybill's tracking assistant. Answer only from the facts.",
            context_block="[CONTEXT v1] tier=standard region=US-TX active_orders=1",
            message="where is my order?",
        ),
        plan=AnswerPlan("tracking.status", FACTS),
        max_tokens=max_tokens,
    )


Sample = tuple[float, float]
"""(time to first delta, time to end of stream), seconds."""


def _flag(name: str, value: Any, dtype: Any, kind: str) -> Any:
    tensor = InferInput(name, [1, 1], kind)
    tensor.set_data_from_numpy(np.array([[value]], dtype=dtype))
    return tensor


async def _direct(client: Any, model: str, prompt: str, max_tokens: int) -> Sample:
    """The baseline: the same wire request as the backend's, with tritonclient alone."""
    started = time.perf_counter()
    inputs = [
        _flag("text_input", prompt.encode(), np.object_, "BYTES"),
        _flag("max_tokens", max_tokens, np.int32, "INT32"),
        _flag("stream", True, np.bool_, "BOOL"),
        _flag("exclude_input_in_output", True, np.bool_, "BOOL"),
        _flag("temperature", 0.0, np.float32, "FP32"),
        _flag("top_k", 1, np.int32, "INT32"),
        _flag("return_num_input_tokens", True, np.bool_, "BOOL"),
        _flag("return_num_output_tokens", True, np.bool_, "BOOL"),
    ]
    outputs = [InferRequestedOutput(n) for n in OUTPUTS]

    async def one() -> Any:
        yield {"model_name": model, "inputs": inputs, "outputs": outputs}

    first = 0.0
    async for result, error in client.stream_infer(one(), stream_timeout=30):
        if error is not None:
            raise RuntimeError(str(error))
        if not first and result.as_numpy("text_output") is not None:
            first = time.perf_counter()
    return first - started, time.perf_counter() - started


async def _through(stream: Any) -> Sample:
    started = time.perf_counter()
    first = 0.0
    async for event in stream:
        if not first and isinstance(event, TextDelta):
            first = time.perf_counter()
    return first - started, time.perf_counter() - started


def _decision_cost(pool: LLMPool, *, iterations: int) -> dict[str, float]:
    """Microseconds per breaker-and-fallback decision, closed and with the head open."""
    links = pool.links("tracking")

    def decide() -> None:
        for link in pool.links("tracking"):
            permit = link.breaker.try_acquire()
            if permit is not None:
                permit.success()
                return

    def timed(fn: Callable[[], None]) -> float:
        started = time.perf_counter()
        for _ in range(iterations):
            fn()
        return (time.perf_counter() - started) / iterations * 1e6

    closed = timed(decide)
    head = links[0].breaker
    for _ in range(head.policy.failure_threshold):
        permit = head.try_acquire()
        if permit is not None:
            permit.failure()
    open_head = timed(decide)  # the head is skipped, the composer is chosen
    return {"closed_us": closed, "head_open_us": open_head}


def _ms(samples: Sequence[float], pct: float) -> float:
    value = stats.percentile([s * 1000 for s in samples], pct)
    return round(value or 0.0, 3)


async def _measure(args: argparse.Namespace, address: str) -> dict[str, Any]:
    request = _request(args.max_tokens)
    backend = TritonBackend(
        name="triton-small",
        url=address,
        served_model=args.served_model,
        prompt_format=args.prompt_format,
    )
    pool_backend = TritonBackend(
        name="triton-small",
        url=address,
        served_model=args.served_model,
        prompt_format=args.prompt_format,
    )
    pool = LLMPool(
        [pool_backend, Composer({})],
        {"tracking": ["triton-small", "composer"]},
        options={"triton-small": LinkOptions(timeout_s=30, breaker=BreakerPolicy())},
    )
    client = triton_aio.InferenceServerClient(address)
    prompt = render_text(request, args.prompt_format)
    paths: dict[str, Callable[[], Any]] = {
        "direct": lambda: _direct(client, args.model, prompt, args.max_tokens),
        "backend": lambda: _through(backend.stream(request, timeout_s=30)),
        "pool": lambda: _through(pool.stream(request)),
    }
    samples: dict[str, list[Sample]] = {name: [] for name in paths}
    order = list(paths)
    try:
        for _ in range(args.warmup):
            for name in order:
                await paths[name]()
        for i in range(args.rounds):
            rotated = order[i % len(order) :] + order[: i % len(order)]
            for name in rotated:
                samples[name].append(await paths[name]())
    finally:
        await client.close()
        await backend.close()
        await pool.close()
    decision = _decision_cost(pool, iterations=args.decision_iterations)
    figures: dict[str, Any] = {"scenario": NAME, "rounds": args.rounds}
    for name, values in samples.items():
        ttft = [v[0] for v in values]
        turn = [v[1] for v in values]
        figures[f"{name}_ttft_p50_ms"] = _ms(ttft, 50)
        figures[f"{name}_ttft_p95_ms"] = _ms(ttft, 95)
        figures[f"{name}_turn_p50_ms"] = _ms(turn, 50)
    paired = [(p[0] - d[0]) * 1000 for p, d in zip(samples["pool"], samples["direct"], strict=True)]
    turn_paired = [
        (p[1] - d[1]) * 1000 for p, d in zip(samples["pool"], samples["direct"], strict=True)
    ]
    figures["added_ttft_p50_ms"] = round(
        figures["pool_ttft_p50_ms"] - figures["direct_ttft_p50_ms"], 3
    )
    figures["added_ttft_p95_ms"] = round(
        figures["pool_ttft_p95_ms"] - figures["direct_ttft_p95_ms"], 3
    )
    figures["added_ttft_paired_median_ms"] = round(statistics.median(paired), 3)
    figures["added_turn_paired_median_ms"] = round(statistics.median(turn_paired), 3)
    figures["decision_closed_us"] = round(decision["closed_us"], 3)
    figures["decision_head_open_us"] = round(decision["head_open_us"], 3)
    return figures


def _mesh_turns(address: str, rounds: int) -> dict[str, float]:
    """Whole turns through the gateway with Triton at the head of the tracking chain."""
    from waybill.gateway.v1 import gateway_service_pb2 as gw
    from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

    from cli.launcher import Mesh
    from cli.ports import free_base_port
    from runtime import credentials, mesh

    env = {
        "WAYBILL_LLM_TRITON_SMALL_URL": address,
        "WAYBILL_LLM_TRITON_SMALL_MODEL": "waybill-cpu-test",
        "WAYBILL_LLM_TRITON_SMALL_PROMPT_FORMAT": "plain",
        "WAYBILL_LLM_CHAIN_TRACKING": "triton-small,composer",
    }
    firsts: list[float] = []
    turns: list[float] = []
    with tempfile.TemporaryDirectory() as run_dir:
        base = free_base_port(len(mesh.SERVICES))
        with Mesh(run_dir=Path(run_dir), base_port=base, env=env) as running:
            key = credentials.key_for(running.credentials_path, "acme-retail")
            with grpc.insecure_channel(running.addresses["gateway"]) as channel:
                stub = gw_grpc.GatewayServiceStub(channel)
                for i in range(rounds + 3):
                    started = time.perf_counter()
                    first = 0.0
                    request = gw.ConverseRequest(
                        session_id=f"bench-session-{i:04d}",
                        user_id="acme-0001",
                        message="where is my order?",
                    )
                    for response in stub.Converse(
                        request, metadata=[("x-api-key", key)], timeout=10
                    ):
                        if not first and response.event.WhichOneof("kind") == "delta":
                            first = time.perf_counter()
                    if i >= 3:
                        firsts.append(first - started)
                        turns.append(time.perf_counter() - started)
    return {
        "mesh_ttft_p50_ms": _ms(firsts, 50),
        "mesh_ttft_p95_ms": _ms(firsts, 95),
        "mesh_turn_p50_ms": _ms(turns, 50),
    }


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the scenario."""
    parser = argparse.ArgumentParser(
        prog="python -m bench --scenario pool-overhead",
        description=__doc__.split("\n\n")[0] if __doc__ else NAME,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=200, help="measured rounds (each path once)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured rounds first")
    parser.add_argument("--max-tokens", type=int, default=64, help="max_tokens of each request")
    parser.add_argument("--triton-url", help="use this Triton server instead of starting one")
    parser.add_argument("--model", default="ensemble", help="Triton model name")
    parser.add_argument("--served-model", default="waybill-cpu-test", help="model as priced")
    parser.add_argument("--prompt-format", default="plain", choices=["plain", "llama3"])
    parser.add_argument("--mesh", action="store_true", help="also time whole turns via the mesh")
    parser.add_argument("--decision-iterations", type=int, default=100_000)
    parser.add_argument("--json-out", type=Path, help="append the JSON line to this file")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the scenario; the exit code."""
    args = build_parser().parse_args(list(argv))
    # The decision timing opens a breaker on purpose: keep its warning out of the figures.
    logging.getLogger("waybill.llm_pool").setLevel(logging.ERROR)
    if args.rounds < 1 or args.warmup < 0 or args.max_tokens < 1:
        print("error: --rounds and --max-tokens must be >= 1, --warmup >= 0", file=sys.stderr)
        return 2
    from cli.triton import TritonServer, TritonStartError

    server: TritonServer | None = None
    try:
        address = args.triton_url
        if address is None:
            print("starting the CPU test Triton server ...", flush=True)
            server = TritonServer(run_dir=Path(tempfile.mkdtemp(prefix="bench-triton-")))
            server.start(timeout_s=90)
            address = server.address
        print(f"Triton at {address}; {args.rounds} rounds x 3 paths, interleaved", flush=True)
        figures = asyncio.run(_measure(args, address))
        if args.mesh:
            print("starting the mesh with Triton in the tracking chain ...", flush=True)
            figures.update(_mesh_turns(address, min(args.rounds, 50)))
    except (TritonStartError, RuntimeError, OSError, grpc.RpcError) as exc:
        # MeshError is a RuntimeError; a failed Triton call raises RuntimeError here.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None:
            server.stop()
    _report(figures)
    line = json.dumps(figures, sort_keys=True)
    print(line)
    if args.json_out:
        with args.json_out.open("a") as fh:
            fh.write(line + "\n")
    return 0


def _report(f: dict[str, Any]) -> None:
    print("\npath      ttft p50   ttft p95   turn p50   (ms; noisy: shared 2-core machine)")
    for name in ("direct", "backend", "pool"):
        print(
            f"{name:<8} {f[f'{name}_ttft_p50_ms']:>9.3f} {f[f'{name}_ttft_p95_ms']:>10.3f}"
            f" {f[f'{name}_turn_p50_ms']:>10.3f}"
        )
    if "mesh_ttft_p50_ms" in f:
        print(
            f"{'mesh':<8} {f['mesh_ttft_p50_ms']:>9.3f} {f['mesh_ttft_p95_ms']:>10.3f}"
            f" {f['mesh_turn_p50_ms']:>10.3f}   (whole turn: guardrails, router, tools)"
        )
    verdict = "ok" if f["added_ttft_p50_ms"] < TARGET_ADDED_TTFT_P50_MS else "OVER TARGET"
    print(
        f"pool added TTFT: p50 {f['added_ttft_p50_ms']:.3f} ms,"
        f" p95 {f['added_ttft_p95_ms']:.3f} ms,"
        f" paired median {f['added_ttft_paired_median_ms']:.3f} ms"
        f" (target p50 < {TARGET_ADDED_TTFT_P50_MS} ms: {verdict})"
    )
    print(f"pool added per turn (paired median): {f['added_turn_paired_median_ms']:.3f} ms")
    worst = max(f["decision_closed_us"], f["decision_head_open_us"]) / 1000
    verdict = "ok" if worst < TARGET_DECISION_MS else "OVER TARGET"
    print(
        f"breaker+fallback decision: {f['decision_closed_us']:.2f} us closed,"
        f" {f['decision_head_open_us']:.2f} us with the head open"
        f" (target < {TARGET_DECISION_MS * 1000:.0f} us: {verdict})\n"
    )
