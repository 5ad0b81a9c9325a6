"""LedgerService on a real aio server, on both stores: the turn's reservation and charge
priced by the price table, precise statuses (rule ids, RetryInfo, NOT_FOUND), the soft
alert as a state, a gauge and one log line, cost reports over the committed charges, and
settings that fail naming a variable."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from prometheus_client import REGISTRY
from waybill.common.v1 import money_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb

from ledger.core import next_month_start
from ledger.settings import DEFAULT_BUDGET_MICROS, LedgerSettings
from runtime.errors import details_of, error_info_of, unpack, violations_of
from runtime.settings import SettingsError
from tests.ledger.conftest import NOW, TTL_S, Env

TURN_MICROS = 210
"""1000 prompt and 100 completion tokens of openai/gpt-4o-mini (0.15 and 0.60 USD per 1M)."""


def _stamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


async def refused(call: object, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    assert raised.value.code() == code, raised.value.details()
    return raised.value


def reason(error: grpc.aio.AioRpcError) -> str:
    info = error_info_of(error)
    assert info is not None
    assert info.domain == "ledger.waybill"
    return str(info.reason)


async def test_a_turn_reserves_commits_at_the_price_table_and_frees_the_rest(env: Env) -> None:
    held = await env.stub.Reserve(env.reserve("turn-0001", 5000))
    assert held.reservation_id.startswith("rsv_")
    assert held.state == pb.BUDGET_STATE_OK
    assert held.expire_time.ToSeconds() == int(NOW.timestamp() + TTL_S)
    done = await env.stub.Commit(env.commit(held.reservation_id))
    assert done.charged == money_pb2.Cost(currency_code="USD", micro_units=TURN_MICROS)
    retry = await env.stub.Commit(env.commit(held.reservation_id, output_tokens=9999))
    assert retry.charged.micro_units == TURN_MICROS  # the first charge
    budget = (
        await env.stub.GetBudget(pb.GetBudgetRequest(tenant_id="acme-retail", team_id="support"))
    ).budget
    assert (budget.spent.micro_units, budget.reserved.micro_units) == (TURN_MICROS, 0)
    assert budget.limit.micro_units == 1_000_000
    other = await env.stub.Reserve(env.reserve("turn-0002", 5000))
    assert (
        await env.stub.Release(
            pb.ReleaseRequest(reservation_id=other.reservation_id, tenant_id="acme-retail")
        )
    ).released
    assert not (
        await env.stub.Release(
            pb.ReleaseRequest(reservation_id=other.reservation_id, tenant_id="acme-retail")
        )
    ).released


async def test_a_charge_is_capped_by_its_reservation(env: Env) -> None:
    held = await env.stub.Reserve(env.reserve("turn-0001", 100))
    before = (
        REGISTRY.get_sample_value(
            "waybill_ledger_overrun_commits_total", {"tenant": "acme-retail", "team": "support"}
        )
        or 0.0
    )
    done = await env.stub.Commit(env.commit(held.reservation_id))
    assert done.charged.micro_units == 100
    after = REGISTRY.get_sample_value(
        "waybill_ledger_overrun_commits_total", {"tenant": "acme-retail", "team": "support"}
    )
    assert after == before + 1


async def test_bad_input_names_the_rule(env: Env) -> None:
    error = await refused(
        env.stub.Reserve(env.reserve("short", 10)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert {(v.field, v.reason) for v in violations_of(error)} == {("request_id", "string.pattern")}
    error = await refused(
        env.stub.Reserve(env.reserve("turn-0001", 10, user_id="Not A User!")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert {(v.field, v.reason) for v in violations_of(error)} == {("user_id", "string.pattern")}
    error = await refused(
        env.stub.Reserve(
            env.reserve(
                "turn-0001", 0, estimate=money_pb2.Cost(currency_code="USD", micro_units=-1)
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert {(v.field, v.reason) for v in violations_of(error)} == {
        ("estimate.micro_units", "int64.gte")
    }
    error = await refused(
        env.stub.Commit(env.commit("rsv_0123456789abcdef", tenant_id="ACME")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert {(v.field, v.reason) for v in violations_of(error)} == {("tenant_id", "string.pattern")}
    error = await refused(
        env.stub.Reserve(
            env.reserve("turn-0001", 0, estimate=money_pb2.Cost(currency_code="EUR", micro_units=5))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason(error) == "CURRENCY_MISMATCH"
    await env.stub.Reserve(env.reserve("turn-0001", 10))
    error = await refused(
        env.stub.Reserve(env.reserve("turn-0001", 11)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert reason(error) == "IDEMPOTENCY_KEY_REUSED"


async def test_over_the_budget_is_resource_exhausted_with_retry_info(env: Env) -> None:
    await env.stub.SetBudget(
        pb.SetBudgetRequest(
            tenant_id="acme-retail",
            team_id="support",
            limit=money_pb2.Cost(currency_code="USD", micro_units=1000),
        )
    )
    await env.stub.Reserve(env.reserve("turn-0001", 800))
    error = await refused(
        env.stub.Reserve(env.reserve("turn-0002", 300)), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert reason(error) == "BUDGET_EXHAUSTED"
    status = details_of(error)
    assert status is not None
    delays = [
        info.retry_delay.ToSeconds()
        for d in status.details
        if (info := unpack(d, error_details_pb2.RetryInfo())) is not None
    ]
    assert delays == [int((next_month_start(NOW) - NOW).total_seconds())]


async def test_another_tenants_reservation_is_not_found(env: Env) -> None:
    held = await env.stub.Reserve(env.reserve("turn-0001", 500))
    theirs = await refused(
        env.stub.Commit(env.commit(held.reservation_id, tenant_id="globex-home")),
        grpc.StatusCode.NOT_FOUND,
    )
    unknown = await refused(
        env.stub.Release(
            pb.ReleaseRequest(reservation_id="rsv_0123456789abcdef", tenant_id="acme-retail")
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason(theirs) == reason(unknown) == "RESERVATION_NOT_FOUND"
    assert theirs.details() == unknown.details()


async def test_an_expired_reservation_is_swept_and_not_charged(env: Env) -> None:
    held = await env.stub.Reserve(env.reserve("turn-0001", 500))
    env.clock.advance(TTL_S + 1)
    assert await env.servicer.sweep() == 1
    error = await refused(
        env.stub.Commit(env.commit(held.reservation_id)), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert reason(error) == "RESERVATION_EXPIRED"
    budget = (
        await env.stub.GetBudget(pb.GetBudgetRequest(tenant_id="acme-retail", team_id="support"))
    ).budget
    assert (budget.spent.micro_units, budget.reserved.micro_units) == (0, 0)


async def test_the_soft_limit_is_a_state_a_gauge_and_one_log_line(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    team = {"tenant": "acme-retail", "team": "soft"}
    await env.stub.SetBudget(
        pb.SetBudgetRequest(
            tenant_id="acme-retail",
            team_id="soft",
            limit=money_pb2.Cost(currency_code="USD", micro_units=1000),
        )
    )
    states = []
    with caplog.at_level(logging.WARNING, logger="waybill.ledger"):
        for i in range(4):  # 210 micro units each: 21%, 42%, 63%, 84%
            held = await env.stub.Reserve(env.reserve(f"turn-000{i}", 250, team_id="soft"))
            states.append((await env.stub.Commit(env.commit(held.reservation_id))).state)
        ratio = REGISTRY.get_sample_value("waybill_ledger_budget_used_ratio", team)
        state = REGISTRY.get_sample_value("waybill_ledger_budget_state", team)
        held = await env.stub.Reserve(env.reserve("turn-0004", 150, team_id="soft"))
        await env.stub.Commit(env.commit(held.reservation_id))  # 99%: still soft, no new line
    assert states == [pb.BUDGET_STATE_OK] * 3 + [pb.BUDGET_STATE_SOFT_LIMIT]
    assert ratio == pytest.approx(0.84)
    assert state == pb.BUDGET_STATE_SOFT_LIMIT
    lines = [r for r in caplog.records if r.name == "waybill.ledger"]
    assert [r.getMessage() for r in lines] == ["budget soft limit reached"]
    assert (lines[0].tenant_id, lines[0].team_id, lines[0].month) == (  # type: ignore[attr-defined]
        "acme-retail",
        "soft",
        "2026-12",
    )


async def test_cost_reports_read_the_committed_charges(env: Env) -> None:
    for i, user in enumerate(("acme-0001", "acme-0002", "acme-0002")):
        held = await env.stub.Reserve(env.reserve(f"turn-000{i}", 5000, user_id=user))
        await env.stub.Commit(env.commit(held.reservation_id))
    theirs = await env.stub.Reserve(env.reserve("turn-0009", 5000, tenant_id="globex-home"))
    await env.stub.Commit(env.commit(theirs.reservation_id, tenant_id="globex-home"))
    released = await env.stub.Reserve(env.reserve("turn-0010", 5000))
    await env.stub.Release(
        pb.ReleaseRequest(reservation_id=released.reservation_id, tenant_id="acme-retail")
    )
    report = await env.stub.GetCostReport(
        pb.GetCostReportRequest(
            tenant_id="acme-retail",
            start_time=_stamp(NOW - timedelta(days=1)),
            end_time=_stamp(NOW + timedelta(days=1)),
            group_by=[pb.GROUP_BY_USER, pb.GROUP_BY_MODEL],
        )
    )
    assert [(list(r.keys), r.requests, r.cost.micro_units) for r in report.rows] == [
        (["acme-0002", "openai/gpt-4o-mini"], 2, 2 * TURN_MICROS),
        (["acme-0001", "openai/gpt-4o-mini"], 1, TURN_MICROS),
    ]
    assert report.rows[0].input_tokens == 2000


def test_settings_read_the_environment_and_name_a_bad_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WAYBILL_LEDGER_DIR", raising=False)
    monkeypatch.setenv("WAYBILL_DATA_DIR", str(tmp_path))
    settings = LedgerSettings.from_env()
    assert settings.service.name == "ledger"
    assert settings.directory == tmp_path / "ledger"
    assert settings.default_budget_micros == DEFAULT_BUDGET_MICROS
    assert (settings.reservation_ttl_s, settings.postgres_url) == (300.0, "")
    assert settings.prices.currency_code == "USD"
    monkeypatch.setenv("WAYBILL_LEDGER_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("WAYBILL_LEDGER_POSTGRES_URL", "postgresql://ledger@db/ledger")
    settings = LedgerSettings.from_env()
    assert settings.directory == tmp_path / "elsewhere"
    assert "db/ledger" not in repr(settings)  # may hold a password
    for name, value in (
        ("WAYBILL_LEDGER_ADDR", "ledger"),
        ("WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS", "-1"),
        ("WAYBILL_LEDGER_RESERVATION_TTL_S", "0"),
        ("WAYBILL_LEDGER_PG_SCHEMA", "Ledger-1"),
        ("WAYBILL_LEDGER_POSTGRES_URL", "mysql://x"),
    ):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(SettingsError, match=name):
                LedgerSettings.from_env()
