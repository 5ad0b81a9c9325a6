"""The real ledger process: every acknowledged commit survives kill -9 exactly once (the
embedded journal and PostgreSQL), and three ledger processes on one PostgreSQL hold
exactly what the budget allows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from waybill.common.v1 import money_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from ledger.store import LedgerStore
from tests.ledger.conftest import Env, open_backend
from tests.ledger.processes import LedgerProcess, Starter
from tests.support.postgres_server import PG_DSN, fresh_schema

pytestmark = pytest.mark.mesh

TURN_MICROS = 210
ACKED_BEFORE_KILL = 400
WORKERS = 24


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
async def ledger_env(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str, dict[str, str]]]:
    """(backend, location, the process's environment) of an empty ledger."""
    common = {"WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS": str(10**12)}
    if request.param == "embedded":
        directory = tmp_path / "ledger"
        yield "embedded", str(directory), {**common, "WAYBILL_LEDGER_DIR": str(directory)}
        return
    async with fresh_schema() as schema:
        yield (
            "postgres",
            schema,
            {**common, "WAYBILL_LEDGER_POSTGRES_URL": PG_DSN, "WAYBILL_LEDGER_PG_SCHEMA": schema},
        )


async def _load(
    ledger: LedgerProcess, acked: dict[str, tuple[str, int]], enough: asyncio.Event
) -> set[grpc.StatusCode]:
    """Reserve and commit turns from ``WORKERS`` callers until the ledger goes away;
    ``acked``: request id -> (reservation id, charge) of every commit acknowledged. The
    codes the callers stopped at."""
    stopped: set[grpc.StatusCode] = set()
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        stub = pb_grpc.LedgerServiceStub(channel)

        async def caller() -> None:
            while True:
                request_id = f"turn-{uuid.uuid4().hex[:16]}"
                try:
                    held = await stub.Reserve(Env.reserve(request_id, 5000), timeout=10)
                    done = await stub.Commit(Env.commit(held.reservation_id), timeout=10)
                except grpc.aio.AioRpcError as exc:
                    stopped.add(exc.code())
                    return
                acked[request_id] = (held.reservation_id, done.charged.micro_units)
                if len(acked) >= ACKED_BEFORE_KILL:
                    enough.set()

        await asyncio.gather(*(caller() for _ in range(WORKERS)))
    return stopped


async def test_kill_9_keeps_every_acknowledged_commit_exactly_once(
    ledgers: Starter, ledger_env: tuple[str, str, dict[str, str]]
) -> None:
    backend, location, env = ledger_env
    first = await ledgers(env)
    acked: dict[str, tuple[str, int]] = {}
    enough = asyncio.Event()
    load = asyncio.create_task(_load(first, acked, enough))
    await asyncio.wait_for(enough.wait(), 60)
    first.kill()  # mid-load: calls are in flight
    assert await asyncio.wait_for(load, 30) == {grpc.StatusCode.UNAVAILABLE}
    assert len(acked) >= ACKED_BEFORE_KILL

    second = await ledgers(env)
    async with grpc.aio.insecure_channel(second.address) as channel:
        stub = pb_grpc.LedgerServiceStub(channel)
        for request_id, (reservation_id, charged) in acked.items():
            again = await stub.Reserve(Env.reserve(request_id, 5000), timeout=10)
            assert again.reservation_id == reservation_id
            retry = await stub.Commit(Env.commit(reservation_id, output_tokens=1), timeout=10)
            assert retry.charged.micro_units == charged == TURN_MICROS
        budget = (
            await stub.GetBudget(
                pb.GetBudgetRequest(tenant_id="acme-retail", team_id="support"), timeout=10
            )
        ).budget
    assert second.stop() == 0

    store: LedgerStore = await open_backend(backend, location, default_limit=10**12)
    try:
        now = datetime.now(UTC)
        rows = await store.charges(now - timedelta(days=1), now + timedelta(days=1))
    finally:
        await store.close()
    turns = [r.reservation_id for r in rows if r.first]
    assert len(turns) == len(set(turns))  # nothing charged twice
    assert {rid for rid, _ in acked.values()} <= set(turns)  # nothing acknowledged lost
    assert budget.spent.micro_units == sum(r.cost_micro_units for r in rows)
    # Commits in flight at the kill may or may not have landed; held ones stay held.
    assert budget.spent.micro_units >= TURN_MICROS * len(acked)


@pytest.mark.postgres
async def test_three_ledger_processes_hold_exactly_the_budget(ledgers: Starter) -> None:
    async with fresh_schema() as schema:
        env = {
            "WAYBILL_LEDGER_POSTGRES_URL": PG_DSN,
            "WAYBILL_LEDGER_PG_SCHEMA": schema,
            "WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS": "0",
        }
        replicas = [await ledgers(env) for _ in range(3)]
        channels = [grpc.aio.insecure_channel(r.address) for r in replicas]
        try:
            stubs = [pb_grpc.LedgerServiceStub(c) for c in channels]
            await stubs[0].SetBudget(
                pb.SetBudgetRequest(
                    tenant_id="acme-retail",
                    team_id="support",
                    limit=money_pb2.Cost(currency_code="USD", micro_units=50 * 1000),
                )
            )

            refused: list[grpc.StatusCode] = []

            async def turn(i: int) -> int:
                stub = stubs[i % 3]
                try:
                    held = await stub.Reserve(Env.reserve(f"race-{i:08d}", 1000), timeout=30)
                except grpc.aio.AioRpcError as exc:
                    refused.append(exc.code())
                    return 0
                done = await stubs[(i + 1) % 3].Commit(
                    Env.commit(held.reservation_id, output_tokens=100_000), timeout=30
                )
                return int(done.charged.micro_units)

            charged = await asyncio.gather(*(turn(i) for i in range(200)))
            budget = (
                await stubs[2].GetBudget(
                    pb.GetBudgetRequest(tenant_id="acme-retail", team_id="support")
                )
            ).budget
        finally:
            for c in channels:
                await c.close()
            for r in replicas:
                r.stop()
    assert sum(1 for c in charged if c) == 50
    assert refused == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 150
    assert budget.spent.micro_units == sum(charged) == 50 * 1000  # each charged its reservation
    assert budget.reserved.micro_units == 0
