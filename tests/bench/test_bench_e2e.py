"""End to end: the real runner and gRPC channels against the fake gateway server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from waybill.gateway.v1 import gateway_service_pb2 as pb

from bench import corpus, endpoints, runner, scenarios
from bench.endpoints import SetupError
from runtime import paths
from tests.bench.fake_gateway import FakeGateway, awb_of, serving, write_run_dir

REPO = paths.repo_root()
REQUIRED_KEYS = {
    "scenario", "rate", "duration_s", "concurrency", "sent", "completed", "throughput",
    "p50_ms", "p95_ms", "p99_ms", "max_ms", "first_event_p50_ms", "first_event_p95_ms",
    "errors", "error_buckets",
}  # fmt: skip


async def test_skeleton_run_counts_add_up_and_unavailable_is_bucketed(tmp_path: Path) -> None:
    fake = FakeGateway()
    async with serving(fake) as address:
        write_run_dir(tmp_path, address)
        target = endpoints.resolve(tmp_path)
        assert target.target == address
        assert set(target.keys) == {"acme-retail", "globex-home"}
        config = runner.RunConfig("skeleton", rate=25, duration_s=1.0, warmup_s=0.0)
        summary = await runner.run(config, target)

    assert summary.sent == 25
    assert summary.sent == summary.completed + summary.errors
    # Warm-up is 0, so the fake saw exactly the measured turns.
    assert sum(fake.outcomes.values()) == summary.sent
    assert fake.outcomes["UNAVAILABLE"] > 0  # the seeded stream does pick acme-fail
    assert summary.error_buckets == {"UNAVAILABLE": fake.outcomes["UNAVAILABLE"]}
    assert summary.completed == fake.outcomes["OK"]
    assert summary.p50_ms is not None
    assert summary.first_event_p50_ms is not None
    assert summary.p50_ms <= summary.p95_ms <= summary.p99_ms <= summary.max_ms  # type: ignore[operator]
    # Both tenants' customers were used, each with its own key (else NOT_FOUND).
    users = {r.user_id for r in fake.requests}
    assert any(u.startswith("acme-") for u in users)
    assert any(u.startswith("globex-") for u in users)
    assert {r.message for r in fake.requests} <= set(corpus.CORE)


async def test_tracking_names_awbs_from_customer_context(tmp_path: Path) -> None:
    fake = FakeGateway(unavailable_users=frozenset())
    async with serving(fake) as address:
        target = endpoints.Endpoints(
            address, {"acme-retail": "key-acme", "globex-home": "key-globex"}
        )
        config = runner.RunConfig("tracking", rate=40, duration_s=1.0, warmup_s=0.0)
        summary = await runner.run(config, target)
    assert summary.sent == summary.completed == 40
    named = [r for r in fake.requests if "WB" in r.message]
    assert named
    assert all(awb_of(r.user_id) in r.message for r in named)


# Message i of the scripted scenario; the fake answers each kind differently.
SCRIPT = ("hello", "!unavailable", "!refuse", "!turn-error", "!no-final", "!hang")
EXPECTED = {
    "UNAVAILABLE": "UNAVAILABLE",
    "!refuse": "REFUSAL",
    "!turn-error": "TURN_ERROR",
    "!no-final": "NO_FINAL",
    "!hang": "DEADLINE_EXCEEDED",
}


async def _scripted(ctx: scenarios.ScenarioContext) -> scenarios.TurnSource:
    def turn(index: int) -> scenarios.Turn:
        request = pb.ConverseRequest(
            session_id=f"scripted-{index:04d}",
            user_id="acme-ann",
            message=SCRIPT[index % len(SCRIPT)],
        )
        return scenarios.Turn(ctx.keys["acme-retail"], request)

    return turn


async def test_every_outcome_lands_in_its_bucket() -> None:
    fake = FakeGateway()
    scenario = scenarios.Scenario("scripted", "one of each outcome", _scripted)
    async with serving(fake) as address:
        target = endpoints.Endpoints(address, {"acme-retail": "key-acme"})
        # 24 arrivals = 4 of each script line; the short deadline ends the hangs.
        config = runner.RunConfig("scripted", rate=24, duration_s=1.0, warmup_s=0.0, deadline_s=1.5)
        summary = await runner.run(config, target, scenario=scenario)
    assert summary.scenario == "scripted"
    assert summary.sent == 24
    assert summary.completed == 4
    assert summary.error_buckets == {
        "DEADLINE_EXCEEDED": 4,
        "NO_FINAL": 4,
        "REFUSAL": 4,
        "TURN_ERROR": 4,
        "UNAVAILABLE": 4,
    }
    assert summary.sent == summary.completed + summary.errors


async def test_warmup_turns_reach_the_server_but_not_the_report() -> None:
    fake = FakeGateway(unavailable_users=frozenset())
    async with serving(fake) as address:
        target = endpoints.Endpoints(address, {"acme-retail": "key-acme"})
        config = runner.RunConfig("skeleton", rate=20, duration_s=0.5, warmup_s=0.5)
        summary = await runner.run(config, target)
    assert fake.outcomes["OK"] == 20
    assert summary.sent == summary.completed == 10


async def test_bad_key_is_a_setup_error() -> None:
    async with serving(FakeGateway()) as address:
        target = endpoints.Endpoints(address, {"cli": "wrong-key"})
        with pytest.raises(SetupError, match="UNAUTHENTICATED"):
            await runner.run(runner.RunConfig("skeleton", rate=10, duration_s=0.1), target)


async def test_cli_prints_report_and_ends_with_one_json_line(tmp_path: Path) -> None:
    fake = FakeGateway()
    json_out = tmp_path / "out" / "runs.jsonl"
    async with serving(fake) as address:
        write_run_dir(tmp_path, address)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([".", "gen"])}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench",
            "--scenario", "skeleton", "--rate", "20", "--duration", "0.5", "--warmup", "0.2",
            "--run-dir", str(tmp_path), "--json-out", str(json_out),
            cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    lines = stdout.decode().rstrip("\n").splitlines()
    data = json.loads(lines[-1])
    assert set(data) >= REQUIRED_KEYS
    assert data["sent"] == 10
    assert data["sent"] == data["completed"] + data["errors"]
    assert data["error_buckets"].get("UNAVAILABLE", 0) == data["errors"]
    assert not any(line.startswith("{") for line in lines[:-1])  # exactly one JSON line
    assert "latency ms" in stdout.decode()
    assert "in_flight=" in stderr.decode()  # progress goes to stderr
    assert json.loads(json_out.read_text()) == data
