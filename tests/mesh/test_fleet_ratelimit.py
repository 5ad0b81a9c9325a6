"""Fleet rate limits: three gateway processes on one Redis hold a team's limit exactly
between them, the refusal carries RetryInfo, and the REST edge answers 429 with
Retry-After."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
import redis
from google.rpc import error_details_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli.launcher import REPO_ROOT, Mesh
from cli.ports import free_base_port
from runtime import credentials, mesh
from runtime.errors import details_of, error_info_of, unpack
from tests.support.redis_server import REDIS_URL
from tests.support.replicas import gateway_replicas

pytestmark = pytest.mark.mesh

TEAM_BURST = 6
USER_BURST = 2
# One a minute: nothing refills during the test, so the bursts are the counts.
LIMITS = {
    "teams": {
        "acme-retail/support": {"team": {"requests_per_minute": 1, "requests_burst": TEAM_BURST}},
        "globex-home/support": {"user": {"requests_per_minute": 1, "requests_burst": USER_BURST}},
    }
}


@pytest.fixture(scope="module")
def limited_fleet(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str) -> Iterator[Mesh]:
    run_dir = tmp_path_factory.mktemp("fleet-limits")
    limits = run_dir / "limits.json"
    limits.write_text(json.dumps(LIMITS))
    with Mesh(
        run_dir=run_dir,
        base_port=free_base_port(len(mesh.SERVICES) + 1),
        services=["orders", "guardrails", "router", "tracking", "ledger", "gateway"],
        env={
            "WAYBILL_REDIS_URL": REDIS_URL,
            "WAYBILL_REDIS_PREFIX": redis_prefix,
            "WAYBILL_LIMITS_FILE": str(limits),
        },
        edge=True,
    ) as started:
        yield started


@pytest.fixture(scope="module")
def replicas(limited_fleet: Mesh) -> Iterator[list[str]]:
    """The mesh's gateway and two more processes on the same Redis."""
    with gateway_replicas(limited_fleet, 2) as more:
        yield [limited_fleet.addresses["gateway"], *more]


def _retry_s(error: grpc.RpcError) -> float | None:
    status = details_of(error)
    for detail in status.details if status else ():
        info = unpack(detail, error_details_pb2.RetryInfo())
        if info is not None:
            return float(info.retry_delay.ToNanoseconds() / 1e9)
    return None


def test_three_gateways_share_the_team_limit_exactly(
    limited_fleet: Mesh, replicas: list[str], redis_prefix: str
) -> None:
    key = credentials.key_for(limited_fleet.credentials_path, "acme-retail")
    calls = 4 * TEAM_BURST  # twice the limit, over all three replicas at once

    def turn(i: int) -> tuple[str, float | None, dict[str, str]]:
        with grpc.insecure_channel(replicas[i % 3]) as ch:
            request = gw.ConverseRequest(
                session_id=f"limits-{uuid.uuid4().hex[:8]}",
                user_id=f"acme-{i % 20 + 1:04d}",  # many customers: only the team binds
                message="where is my package?",
            )
            try:
                events = list(
                    gw_grpc.GatewayServiceStub(ch).Converse(
                        request, metadata=(("x-api-key", key),), timeout=30
                    )
                )
            except grpc.RpcError as exc:
                info = error_info_of(exc)
                return (
                    str(exc.code().name),
                    _retry_s(exc),
                    {"reason": info.reason, **info.metadata} if info else {},
                )
        return events[-1].event.WhichOneof("kind") or "", None, {}

    with ThreadPoolExecutor(calls) as pool:
        outcomes = list(pool.map(turn, range(calls)))
    refused = [o for o in outcomes if o[0] == "RESOURCE_EXHAUSTED"]
    admitted = [o for o in outcomes if o[0] != "RESOURCE_EXHAUSTED"]
    assert len(admitted) == TEAM_BURST, outcomes
    assert {o[0] for o in admitted} <= {"final", "refusal"}, outcomes  # real turns, answered
    assert len(refused) == calls - TEAM_BURST
    for _, retry, info in refused:
        assert info == {"reason": "RATE_LIMITED", "scope": "team", "limit": "requests"}
        assert retry is not None
        assert 30.0 < retry <= 60.0  # a minute's unit, less the time the turns took
    direct = redis.Redis.from_url(REDIS_URL)
    try:
        bucket = f"{redis_prefix}ratelimit:{{acme-retail}}:team:support:requests"
        assert 0 < direct.pttl(bucket) <= TEAM_BURST * 60_000
    finally:
        direct.close()


def test_the_rest_edge_answers_429_with_retry_after(limited_fleet: Mesh) -> None:
    assert limited_fleet.edge_url is not None
    key = credentials.key_for(limited_fleet.credentials_path, "globex-home")
    user = "globex-0001"
    answers = []
    for _ in range(USER_BURST + 1):
        answers.append(
            httpx.post(
                limited_fleet.edge_url + f"v1/sessions/limits-{uuid.uuid4().hex[:8]}/turns",
                json={"userId": user, "message": "where is my order?"},
                headers={"x-api-key": key},
                timeout=30,
            )
        )
    assert [r.status_code for r in answers[:USER_BURST]] == [200] * USER_BURST, [
        r.text for r in answers
    ]
    last = answers[-1]
    assert last.status_code == 429, last.text
    retry_after = int(last.headers["retry-after"])
    assert 30 <= retry_after <= 60
    error = last.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    (info,) = [d for d in error["details"] if d["@type"].endswith("ErrorInfo")]
    assert info["reason"] == "RATE_LIMITED"
    assert info["metadata"] == {"scope": "user", "limit": "requests"}
    (retry,) = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
    assert math.ceil(float(retry["retryDelay"].rstrip("s"))) == retry_after


def test_the_limits_file_is_checked_before_the_gateway_serves(tmp_path: Path) -> None:
    bad = tmp_path / "limits.yaml"
    bad.write_text("teams:\n  acme-retail/support:\n    team: {requests_per_mnute: 5}\n")
    env = {
        **os.environ,
        "WAYBILL_LIMITS_FILE": str(bad),
        mesh.spec("gateway").env_var: f"127.0.0.1:{free_base_port(1)}",
        credentials.CREDENTIALS_ENV: str(tmp_path / "credentials.json"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "teams.acme-retail/support.team.requests_per_mnute" in done.stdout + done.stderr
