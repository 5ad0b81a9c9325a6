"""Rate limits: GCRA semantics on an injected clock, the configuration and its file, the
Redis script (exact across processes, atomic across buckets, Redis's own clock), what
happens when Redis dies, freezes or forgets the script, and the servicer's refusals."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as redis
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY

from gateway.ratelimit import RATE_LIMITED, InProcessBuckets, RateLimiter
from gateway.ratelimit_config import (
    DEFAULT_POLICY,
    LIMITS_FILE_ENV,
    Policy,
    Rate,
    RateLimitSettings,
    ScopeLimits,
    load_overrides,
)
from gateway.redis_ratelimit import SCRIPT_SHA, RedisBuckets, client_for
from gateway.settings import GatewaySettings
from runtime.errors import ResourceExhausted
from runtime.principal import CUSTOMER_ROLE, Principal
from runtime.settings import SettingsError
from tests.conftest import StartServer
from tests.gateway.clock import FakeClock
from tests.gateway.standins import ACME_KEY, build, full_status
from tests.support import redis_process as own_redis
from tests.support.redis_process import RedisProcess
from tests.support.redis_server import REDIS_URL, cleanup, connect

ROOT = Path(__file__).resolve().parents[2]
TEAM = Principal("acme-retail", "support", "service")
OTHER_TEAM = Principal("acme-retail", "billing", "service")
OFF = Rate(0, 1)


def policy(
    *,
    team_rpm: Rate = OFF,
    user_rpm: Rate = OFF,
    team_tpm: Rate = OFF,
    user_tpm: Rate = OFF,
) -> Policy:
    return Policy(
        team=ScopeLimits(requests=team_rpm, tokens=team_tpm),
        user=ScopeLimits(requests=user_rpm, tokens=user_tpm),
    )


def local(p: Policy, clock: FakeClock) -> RateLimiter:
    return RateLimiter(RateLimitSettings(defaults=p), InProcessBuckets(clock=clock))


async def refused(limiter: RateLimiter, principal: Principal = TEAM, user: str = "") -> Any:
    with pytest.raises(ResourceExhausted) as caught:
        await limiter.admit(principal, user)
    return caught.value


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- GCRA on an injected clock --------------------------------------------------------------


async def test_an_idle_bucket_admits_its_burst_at_once_then_one_per_interval() -> None:
    clock = FakeClock()
    limiter = local(policy(team_rpm=Rate(60, 3)), clock)  # one a second, three at once
    for _ in range(3):
        await limiter.admit(TEAM, "")
    error = await refused(limiter)
    assert error.retry_after_s == pytest.approx(1.0, abs=1e-9)
    clock.advance(0.25)
    assert (await refused(limiter)).retry_after_s == pytest.approx(0.75, abs=1e-9)
    clock.advance(0.75)
    await limiter.admit(TEAM, "")  # exactly when it said
    assert (await refused(limiter)).retry_after_s == pytest.approx(1.0, abs=1e-9)


async def test_retry_after_is_exactly_the_time_until_admission() -> None:
    clock = FakeClock()
    limiter = local(policy(team_rpm=Rate(7, 2)), clock)  # an interval of 60/7 s
    await limiter.admit(TEAM, "")
    await limiter.admit(TEAM, "")
    wait = (await refused(limiter)).retry_after_s
    assert wait == pytest.approx(60 / 7, abs=1e-9)
    clock.advance(wait - 1e-6)
    await refused(limiter)
    clock.advance(1e-6)
    await limiter.admit(TEAM, "")


async def test_a_steady_overload_gets_the_rate_plus_the_burst() -> None:
    clock = FakeClock()
    limiter = local(policy(team_rpm=Rate(60, 5)), clock)
    admitted = 0
    for _ in range(600):  # ten calls a second for a minute: ten times the rate
        try:
            await limiter.admit(TEAM, "")
            admitted += 1
        except ResourceExhausted:
            pass
        clock.advance(0.1)
    # t = 0 .. 59.9: the burst of 5, then one for each whole second elapsed (1 .. 59).
    assert admitted == 5 + 59


async def test_a_refused_call_takes_nothing_from_any_bucket() -> None:
    clock = FakeClock()
    limiter = local(policy(team_rpm=Rate(1, 5), user_rpm=Rate(1, 2)), clock)
    await limiter.admit(TEAM, "acme-0001")
    await limiter.admit(TEAM, "acme-0001")
    error = await refused(limiter, TEAM, "acme-0001")
    assert error.metadata == {"scope": "user", "limit": "requests"}
    # The user's refusals did not spend the team's units: three more customers fit.
    for user in ("acme-0002", "acme-0003", "acme-0004"):
        await limiter.admit(TEAM, user)
    error = await refused(limiter, TEAM, "acme-0005")
    assert error.metadata == {"scope": "team", "limit": "requests"}
    assert error.reason == RATE_LIMITED
    # Another team of the same tenant has its own buckets.
    await limiter.admit(OTHER_TEAM, "acme-0006")


async def test_the_refusal_names_the_limit_that_binds_longest() -> None:
    clock = FakeClock()
    limiter = local(policy(team_rpm=Rate(1, 1), user_rpm=Rate(60, 1)), clock)
    await limiter.admit(TEAM, "acme-0001")
    error = await refused(limiter, TEAM, "acme-0001")  # both full: the team waits 60 s
    assert error.metadata == {"scope": "team", "limit": "requests"}
    assert error.retry_after_s == pytest.approx(60.0)
    assert "acme" not in error.message
    assert "support" not in error.message


async def test_tokens_are_debited_after_the_turn_and_refuse_the_next_call() -> None:
    clock = FakeClock()
    # 600 tokens a minute (one per 0.1 s), 100 at once.
    limiter = local(policy(team_tpm=Rate(600, 100)), clock)
    await limiter.admit(TEAM, "acme-0001")  # checks, takes nothing
    await limiter.admit(TEAM, "acme-0001")
    await limiter.spend(TEAM, "acme-0001", 250)  # the turn overshot what was left
    error = await refused(limiter, TEAM, "acme-0002")
    assert error.metadata == {"scope": "team", "limit": "tokens"}
    # 250 tokens of debt on a 100-token burst: room for one token after 15.1 s.
    assert error.retry_after_s == pytest.approx(15.1, abs=1e-9)
    clock.advance(15.1)
    await limiter.admit(TEAM, "acme-0002")


async def test_a_user_who_burned_tokens_is_refused_while_the_team_goes_on() -> None:
    clock = FakeClock()
    limiter = local(policy(user_tpm=Rate(60, 10), team_tpm=Rate(60_000, 10_000)), clock)
    await limiter.admit(TEAM, "acme-0001")
    await limiter.spend(TEAM, "acme-0001", 10)
    error = await refused(limiter, TEAM, "acme-0001")
    assert error.metadata == {"scope": "user", "limit": "tokens"}
    assert error.retry_after_s == pytest.approx(1.0)
    await limiter.admit(TEAM, "acme-0002")
    await limiter.spend(TEAM, "acme-0001", 0)  # a turn without tokens debits nothing


async def test_a_rate_of_zero_is_no_limit() -> None:
    limiter = local(policy(), FakeClock())
    for _ in range(1000):
        await limiter.admit(TEAM, "acme-0001")
    await limiter.spend(TEAM, "acme-0001", 10**9)
    await limiter.admit(TEAM, "acme-0001")


async def test_a_credential_bound_to_a_customer_is_limited_as_that_customer() -> None:
    limiter = local(policy(user_rpm=Rate(1, 1)), FakeClock())
    me = Principal("acme-retail", "support", CUSTOMER_ROLE, user_id="acme-0001")
    await limiter.admit(me, "acme-0001")
    # Whatever user id the request names, the bucket is the bound customer's.
    error = await refused(limiter, me, "acme-0002")
    assert error.metadata["scope"] == "user"


async def test_concurrent_admissions_in_one_process_are_exact() -> None:
    limiter = local(policy(team_rpm=Rate(1, 10)), FakeClock())

    async def one() -> bool:
        await asyncio.sleep(0)
        try:
            await limiter.admit(TEAM, "")
        except ResourceExhausted:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(results) == 10


async def test_drained_buckets_are_forgotten() -> None:
    clock = FakeClock()
    buckets = InProcessBuckets(clock=clock)
    limiter = RateLimiter(RateLimitSettings(defaults=policy(user_rpm=Rate(60, 5))), buckets)
    for i in range(5000):
        await limiter.admit(TEAM, f"user-{i:05d}")
    assert len(buckets) == 5000
    clock.advance(2.0)
    for i in range(5000):
        await limiter.admit(TEAM, f"next-{i:05d}")
    assert len(buckets) == 5000  # a sweep ran: the first users' buckets had drained


async def test_decisions_are_counted_by_scope_limit_and_decision() -> None:
    limiter = local(policy(team_rpm=Rate(1, 1), user_tpm=Rate(60, 10)), FakeClock())
    name = "waybill_ratelimit_decisions_total"
    before = {
        (s, lim, d): sample(name, scope=s, limit=lim, decision=d)
        for s in ("team", "user")
        for lim in ("requests", "tokens")
        for d in ("admitted", "refused")
    }
    await limiter.admit(TEAM, "acme-0001")
    await refused(limiter, TEAM, "acme-0001")

    def delta(s: str, lim: str, d: str) -> float:
        return sample(name, scope=s, limit=lim, decision=d) - before[(s, lim, d)]

    assert delta("team", "requests", "admitted") == 1
    assert delta("team", "requests", "refused") == 1
    assert delta("user", "tokens", "admitted") == 2  # checked both times, never short
    assert delta("team", "tokens", "admitted") == 0  # off: not checked


# -- configuration ---------------------------------------------------------------------------


def test_defaults_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_RATELIMIT_USER_RPM", "30")
    monkeypatch.setenv("WAYBILL_RATELIMIT_USER_RPM_BURST", "60")
    monkeypatch.setenv("WAYBILL_RATELIMIT_TEAM_TPM", "0")
    monkeypatch.setenv("WAYBILL_RATELIMIT_REPLICAS", "4")
    settings = RateLimitSettings.from_env()
    assert settings.defaults.user.requests == Rate(30, 60)
    assert not settings.defaults.team.tokens.limited
    assert settings.defaults.team.requests == DEFAULT_POLICY.team.requests
    assert settings.replicas == 4
    assert settings.teams == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WAYBILL_RATELIMIT_TEAM_RPM", "-1"),
        ("WAYBILL_RATELIMIT_USER_TPM_BURST", "0"),
        ("WAYBILL_RATELIMIT_REPLICAS", "0"),
        ("WAYBILL_RATELIMIT_TEAM_RPM", "many"),
    ],
)
def test_a_bad_default_fails_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        RateLimitSettings.from_env()


def test_a_limits_file_overrides_per_team_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(
        "teams:\n"
        "  acme-retail/support:\n"
        "    team: {requests_per_minute: 6000, requests_burst: 600}\n"
        "    user: {tokens_per_minute: 0}\n"
        "  globex-home/support:\n"
    )
    monkeypatch.setenv(LIMITS_FILE_ENV, str(path))
    settings = GatewaySettings.from_env().rate_limits
    acme = settings.policy("acme-retail", "support")
    assert acme.team.requests == Rate(6000, 600)
    assert acme.team.tokens == DEFAULT_POLICY.team.tokens
    assert acme.user.requests == DEFAULT_POLICY.user.requests
    assert not acme.user.tokens.limited
    assert settings.policy("globex-home", "support") == DEFAULT_POLICY
    assert settings.policy("acme-retail", "billing") == DEFAULT_POLICY


def test_a_json_limits_file_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    path.write_text(json.dumps({"teams": {"acme-retail/support": {"user": {"requests_burst": 5}}}}))
    policies = load_overrides(path, DEFAULT_POLICY)
    assert policies[("acme-retail", "support")].user.requests == Rate(20, 5)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            "teams:\n  acme-retail/support:\n    team: {requests_per_mnute: 5}\n",
            "teams.acme-retail/support.team.requests_per_mnute: unknown field",
        ),
        (
            "teams:\n  acme-retail/support:\n    user: {tokens_burst: 0}\n",
            "teams.acme-retail/support.user.tokens_burst: must be at least 1",
        ),
        (
            "teams:\n  acme-retail/support:\n    team: {requests_per_minute: -5}\n",
            "teams.acme-retail/support.team.requests_per_minute: must be at least 0",
        ),
        (
            "teams:\n  acme-retail/support:\n    team: {requests_per_minute: '100'}\n",
            "teams.acme-retail/support.team.requests_per_minute: must be an integer",
        ),
        (
            "teams:\n  acme-retail/support:\n    team: {requests_burst: true}\n",
            "teams.acme-retail/support.team.requests_burst: must be an integer",
        ),
        ("teams:\n  acme-retail:\n    team: {}\n", "teams.acme-retail: a team is named"),
        ("teams:\n  acme-retail/support:\n    admin: {}\n", "teams.acme-retail/support.admin"),
        ("team:\n  acme-retail/support: {}\n", "team: unknown field"),
        ("teams: [1, 2]\n", "teams: must be a mapping"),
        ("teams: {a/b: [\n", "is not valid YAML"),
    ],
)
def test_a_bad_limits_file_stops_the_gateway_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, named: str
) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    monkeypatch.setenv(LIMITS_FILE_ENV, str(path))
    with pytest.raises(SettingsError) as caught:
        GatewaySettings.from_env()
    assert named in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_limits_file_stops_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LIMITS_FILE_ENV, str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsError, match=f"{LIMITS_FILE_ENV}=.*cannot be read"):
        GatewaySettings.from_env()


def test_the_fallback_share_never_drops_below_one() -> None:
    assert Rate(1000, 100).share(4) == Rate(250, 25)
    assert Rate(1, 1).share(3) == Rate(1, 1)
    assert OFF.share(3) == OFF
    assert Rate(10, 5).share(1) == Rate(10, 5)


# -- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own (killed after)."""
    yield from own_redis.started(tmp_path)


@pytest.fixture
async def shared_redis() -> AsyncIterator[tuple[redis.Redis, str]]:
    client, prefix = await connect()
    yield client, prefix
    await cleanup(client, prefix)


def redis_limiter(
    client: redis.Redis, prefix: str, p: Policy, **options: Any
) -> tuple[RateLimiter, RedisBuckets]:
    buckets = RedisBuckets(client, **options)
    return RateLimiter(RateLimitSettings(defaults=p), buckets, prefix=prefix), buckets


@pytest.mark.redis
async def test_redis_admits_the_burst_and_refuses_with_the_server_clock_wait(
    shared_redis: tuple[redis.Redis, str],
) -> None:
    client, prefix = shared_redis
    limiter, buckets = redis_limiter(client, prefix, policy(team_rpm=Rate(60, 3)))
    for _ in range(3):
        await limiter.admit(TEAM, "")
    error = await refused(limiter)
    assert 0 < error.retry_after_s <= 1.0  # one interval, less the time the calls took
    assert error.metadata == {"scope": "team", "limit": "requests"}
    key = f"{prefix}ratelimit:{{acme-retail}}:team:support:requests"
    ttl_ms = await client.pttl(key)
    assert 0 < ttl_ms <= 3000  # expires when the bucket has drained (3 s of work)
    assert not buckets.degraded


@pytest.mark.redis
async def test_redis_keeps_whole_microseconds_even_for_huge_rates(
    shared_redis: tuple[redis.Redis, str],
) -> None:
    client, prefix = shared_redis
    huge = Rate(10**9, 10**9)  # 0.06 us a unit: below a double's resolution at epoch time
    limiter, buckets = redis_limiter(client, prefix, policy(team_rpm=huge, team_tpm=huge))
    for _ in range(20):
        await limiter.admit(TEAM, "")
    await limiter.spend(TEAM, "", 7)
    assert not buckets.degraded  # every call was decided by the script, none failed


@pytest.mark.redis
async def test_redis_is_atomic_across_the_buckets_of_a_call(
    shared_redis: tuple[redis.Redis, str],
) -> None:
    client, prefix = shared_redis
    limiter, _ = redis_limiter(
        client, prefix, policy(team_rpm=Rate(1, 5), user_rpm=Rate(1, 2), team_tpm=Rate(600, 100))
    )
    await limiter.admit(TEAM, "acme-0001")
    await limiter.admit(TEAM, "acme-0001")
    assert (await refused(limiter, TEAM, "acme-0001")).metadata["scope"] == "user"
    for user in ("acme-0002", "acme-0003", "acme-0004"):
        await limiter.admit(TEAM, user)
    assert (await refused(limiter, TEAM, "acme-0005")).metadata["scope"] == "team"


@pytest.mark.redis
async def test_redis_debits_tokens_after_the_turn(shared_redis: tuple[redis.Redis, str]) -> None:
    client, prefix = shared_redis
    limiter, _ = redis_limiter(client, prefix, policy(team_tpm=Rate(600, 100)))
    token_key = f"{prefix}ratelimit:{{acme-retail}}:team:support:tokens"
    await limiter.admit(TEAM, "acme-0001")
    assert await client.exists(token_key) == 0  # admission only checked
    await limiter.spend(TEAM, "acme-0001", 250)
    assert await client.exists(token_key) == 1
    error = await refused(limiter, TEAM, "acme-0002")
    assert error.metadata == {"scope": "team", "limit": "tokens"}
    assert 10.0 < error.retry_after_s <= 15.1


@pytest.mark.redis
async def test_three_processes_hammering_redis_admit_exactly_the_limit() -> None:
    client, prefix = await connect()
    try:
        users = ["acme-0001", "acme-0002", "acme-0003"]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.gateway.ratelimit_hammer",
                REDIS_URL,
                prefix,
                "20",
                *users,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}"},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        try:
            for p in procs:
                assert p.stdout is not None
                line = await asyncio.wait_for(p.stdout.readline(), 30)
                assert line.strip() == b"ready"
            for p in procs:  # all connected: now at once
                assert p.stdin is not None
                p.stdin.write(b"go\n")
            outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        reports = [json.loads(out) for out, _ in outputs]
        assert all(r["local_decisions"] == 0 for r in reports), reports  # all by Redis
        per_user = {u: sum(r["admitted"][u] for r in reports) for u in users}
        # 180 calls (3 processes x 3 users x 20): the team's 50 exactly, no user over 20.
        assert sum(per_user.values()) == 50, per_user
        assert max(per_user.values()) <= 20, per_user
    finally:
        await cleanup(client, prefix)


def _degraded_total() -> float:
    return sample("waybill_ratelimit_degraded_total")


@pytest.mark.redis
async def test_a_dead_redis_degrades_to_a_local_share_and_recovers_when_it_is_back(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    limiter, buckets = redis_limiter(
        client_for(redis_process.url),
        "t:",
        policy(team_rpm=Rate(1, 4), team_tpm=Rate(60_000, 10_000)),
        replicas=2,
        probe_interval_s=5.0,
        clock=clock,
    )
    try:
        for _ in range(4):
            await limiter.admit(TEAM, "")
        assert (await refused(limiter)).metadata["scope"] == "team"
        before = _degraded_total()

        redis_process.kill()
        caplog.set_level(logging.INFO, logger="waybill.gateway")
        # Nothing raises but the limit itself: half of it (2 replicas), enforced locally.
        await limiter.admit(TEAM, "")
        assert buckets.degraded
        await limiter.admit(TEAM, "")
        error = await refused(limiter)
        assert error.reason == RATE_LIMITED
        assert error.retry_after_s == pytest.approx(60.0)
        assert _degraded_total() - before == 3
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "rate limits degraded" in warnings[0].getMessage()
        await limiter.spend(TEAM, "", 10)  # debits go somewhere too, without a raise

        # Back, empty (no persistence) and without the script: the first call after the
        # probe interval loads it again (NOSCRIPT) and the shared counters apply.
        redis_process.start()
        await refused(limiter)  # still within the probe interval: decided locally
        clock.advance(5.0)
        await limiter.admit(TEAM, "")
        assert not buckets.degraded
        assert any("shared again" in r.getMessage() for r in caplog.records)
        direct = redis_process.client()
        try:
            assert direct.exists("t:ratelimit:{acme-retail}:team:support:requests") == 1
            assert direct.script_exists(SCRIPT_SHA) == [True]
        finally:
            direct.close()
        for _ in range(3):
            await limiter.admit(TEAM, "")
        await refused(limiter)
        assert _degraded_total() - before == 5  # 2 + 1 above, the debit, the early retry
    finally:
        await limiter.close()


@pytest.mark.redis
async def test_a_frozen_redis_is_decided_locally_within_the_timeout(
    redis_process: RedisProcess,
) -> None:
    limiter, buckets = redis_limiter(
        client_for(redis_process.url), "t:", policy(team_rpm=Rate(1, 4))
    )
    try:
        await limiter.admit(TEAM, "")
        redis_process.pause()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await limiter.admit(TEAM, "")
        assert buckets.degraded
        assert loop.time() - started < 2.0  # not hung on the frozen server
    finally:
        redis_process.resume()
        await limiter.close()


@pytest.mark.redis
async def test_a_flushed_script_is_loaded_again_and_the_counters_go_on(
    redis_process: RedisProcess,
) -> None:
    client = redis.Redis.from_url(redis_process.url)
    limiter, buckets = redis_limiter(client, "t:", policy(team_rpm=Rate(1, 2)))
    try:
        before = _degraded_total()
        await limiter.admit(TEAM, "")
        await client.script_flush()
        await limiter.admit(TEAM, "")  # NOSCRIPT -> SCRIPT LOAD -> EVALSHA
        await refused(limiter)  # the same bucket in Redis: not a fresh local one
        assert not buckets.degraded
        assert _degraded_total() == before
    finally:
        await limiter.close()


# -- the servicer ------------------------------------------------------------------------------


def _rich(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, float | None]:
    _, _, raw = full_status(error)
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    retry: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            ri = error_details_pb2.RetryInfo()
            detail.Unpack(ri)
            retry = ri.retry_delay.ToNanoseconds() / 1e9
    return info, retry


Harnessed = Callable[[Policy], Any]


@pytest.fixture
async def limited_gateway(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> AsyncIterator[Harnessed]:
    opened: list[Any] = []

    async def _make(p: Policy) -> Any:
        limiter = RateLimiter(RateLimitSettings(defaults=p), InProcessBuckets())
        built = await build(serve, channels, limiter=limiter)
        opened.extend(built.channels)
        return built.harness

    yield _make
    for ch in opened:
        await ch.close()


async def test_converse_over_the_limit_is_resource_exhausted_with_retry_info(
    limited_gateway: Harnessed,
) -> None:
    gw = await limited_gateway(policy(user_rpm=Rate(1, 2)))
    for _ in range(2):
        _, error = await gw.converse(key=ACME_KEY)
        assert error is None
    events, error = await gw.converse()
    assert events == []
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info, retry = _rich(error)
    assert info.reason == RATE_LIMITED
    assert dict(info.metadata) == {"scope": "user", "limit": "requests"}
    assert retry is not None
    assert 50.0 < retry <= 60.0
    assert len(gw.tracking.requests) == 2  # the refused turn went nowhere
    _, error = await gw.converse(user_id="acme-0002")  # another customer is not limited
    assert error is None


async def test_a_turns_tokens_are_debited_at_its_final_event(limited_gateway: Harnessed) -> None:
    # The stand-in worker reports 12 + 5 tokens; 17 of a 20-token burst leaves room for one
    # more turn, whose debit (34 > 20) refuses the third.
    gw = await limited_gateway(policy(user_tpm=Rate(60, 20)))
    for _ in range(2):
        events, error = await gw.converse()
        assert error is None
        assert events[-1].final.usage.output_tokens == 5
    _, error = await gw.converse()
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info, retry = _rich(error)
    assert dict(info.metadata) == {"scope": "user", "limit": "tokens"}
    assert retry is not None
    assert 10.0 < retry <= 15.0


async def test_confirm_action_is_limited_too(limited_gateway: Harnessed) -> None:
    gw = await limited_gateway(policy(team_rpm=Rate(1, 1)))
    _, error = await gw.confirm()  # admitted (there is nothing to confirm yet)
    assert error is None or error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
    _, error = await gw.confirm()
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info, _ = _rich(error)
    assert info.reason == RATE_LIMITED
    assert info.metadata["scope"] == "team"
