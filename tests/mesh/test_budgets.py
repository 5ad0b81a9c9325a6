"""Budgets that are never overspent: 1,000 concurrent turns of one team through three gateway
processes against a budget that covers 100 turns' worst case. Every turn either ran and was
charged at most what it reserved, or was refused before anything ran; the ledger's spend is
the sum of what the turns were told they cost, and never passes the budget."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from waybill.common.v1 import money_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from waybill.ledger.v1 import ledger_service_pb2 as ledger
from waybill.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc

from bench import load_limits
from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from runtime.audit.chain import parse_line
from runtime.audit.record import decode
from runtime.audit.verify import verify
from runtime.errors import error_info_of
from tests.mesh.conftest import api_key
from tests.mesh.conversation import DATA
from tests.support.replicas import gateway_replicas

pytestmark = pytest.mark.mesh

TENANT = "acme-retail"
TEAM = "support"
OUTPUT_PRICE = 1_000_000_000
"""Micro units per 1M output tokens of the composer here: 1,000 per token, so turns cost."""
MAX_OUTPUT_TOKENS = 200
ESTIMATE = MAX_OUTPUT_TOKENS * OUTPUT_PRICE // 1_000_000
"""One turn's worst case: one generation of at most 200 output tokens (input is free)."""
TURNS = 1000
COVERED = 100
"""Turns whose worst case the budget covers."""
ENDINGS = {"final", "BUDGET_EXHAUSTED"}


@pytest.fixture(scope="module")
def priced_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    run_dir = tmp_path_factory.mktemp("budgets")
    prices = run_dir / "prices.json"
    prices.write_text(
        json.dumps(
            {
                "version": "budget-test",
                "currency_code": "USD",
                "prices": {"composer/composer-v1": {"input": 0, "output": OUTPUT_PRICE}},
            }
        )
    )
    env = {
        "WAYBILL_PRICES_FILE": str(prices),
        "WAYBILL_TURN_MAX_GENERATIONS": "1",
        "WAYBILL_TURN_MAX_INPUT_TOKENS": "1",
        "WAYBILL_TURN_MAX_OUTPUT_TOKENS": str(MAX_OUTPUT_TOKENS),
        **load_limits.GATEWAY_ENV,  # the budget, not the rate limits, is under test
    }
    with Mesh(
        run_dir=run_dir / "run",
        base_port=free_base_port(len(mesh.SERVICES)),
        services=["orders", "guardrails", "router", "tracking", "ledger", "gateway"],
        env=env,
    ) as started:
        yield started


def _budget(m: Mesh) -> ledger.Budget:
    with grpc.insecure_channel(m.addresses["ledger"]) as ch:
        response = ledger_grpc.LedgerServiceStub(ch).GetBudget(
            ledger.GetBudgetRequest(tenant_id=TENANT, team_id=TEAM), timeout=10
        )
    budget: ledger.Budget = response.budget
    return budget


async def _turns(addresses: list[str], key: str) -> list[tuple[str, list[gw.TurnEvent]]]:
    """Every turn's outcome ("final" or the refusal's reason) and its events."""
    customers = [c.user_id for c in DATA.customers if c.tenant_id == TENANT]
    channels = [grpc.aio.insecure_channel(a) for a in addresses]
    try:

        async def turn(i: int) -> tuple[str, list[gw.TurnEvent]]:
            stub = gw_grpc.GatewayServiceStub(channels[i % len(channels)])
            request = gw.ConverseRequest(
                session_id=f"budget-{i:05d}",
                user_id=customers[i % len(customers)],
                message="where is my order?",
            )
            events: list[gw.TurnEvent] = []
            try:
                async for response in stub.Converse(
                    request, metadata=[("x-api-key", key)], timeout=120
                ):
                    events.append(response.event)
            except grpc.aio.AioRpcError as exc:
                info = error_info_of(exc)
                return (info.reason if info else exc.code().name), events
            return "final", events

        return await asyncio.gather(*(turn(i) for i in range(TURNS)))
    finally:
        for ch in channels:
            await ch.close()


def test_concurrent_turns_across_three_gateways_never_overspend(priced_mesh: Mesh) -> None:
    limit = COVERED * ESTIMATE
    with grpc.insecure_channel(priced_mesh.addresses["ledger"]) as ch:
        ledger_grpc.LedgerServiceStub(ch).SetBudget(
            ledger.SetBudgetRequest(
                tenant_id=TENANT,
                team_id=TEAM,
                limit=money_pb2.Cost(currency_code="USD", micro_units=limit),
            ),
            timeout=10,
        )
    before = _budget(priced_mesh).spent.micro_units
    with gateway_replicas(priced_mesh, 2) as replicas:
        addresses = [priced_mesh.addresses["gateway"], *replicas]
        results = asyncio.run(_turns(addresses, api_key(priced_mesh, TENANT)))

    outcomes = {outcome for outcome, _ in results}
    # A thousand streams at once on two cores: a peer may refuse a few (a retryable
    # UNAVAILABLE); those turns must not be charged either.
    assert {"final", "BUDGET_EXHAUSTED"} <= outcomes <= {*ENDINGS, "DEPENDENCY_UNAVAILABLE"}
    charged = 0
    for outcome, events in results:
        if outcome == "BUDGET_EXHAUSTED":
            # Refused before anything ran: the error event is all the customer saw.
            assert [e.WhichOneof("kind") for e in events] == ["error"]
            continue
        if outcome != "final":
            assert events[-1].WhichOneof("kind") == "error"
            continue
        final = events[-1].final
        assert final.budget_state != ledger.BUDGET_STATE_UNSPECIFIED
        # A turn that was told it could run is charged at most what it reserved.
        assert 0 <= final.usage.cost.micro_units <= ESTIMATE
        charged += final.usage.cost.micro_units

    deadline = time.monotonic() + 15
    budget = _budget(priced_mesh)
    while budget.reserved.micro_units and time.monotonic() < deadline:
        time.sleep(0.2)  # releases of refused or finished turns land in the background
        budget = _budget(priced_mesh)
    assert budget.reserved.micro_units == 0
    spent = budget.spent.micro_units - before
    assert spent == charged  # every charge was told to its turn, and only those
    assert budget.spent.micro_units <= limit
    assert sum(1 for outcome, _ in results if outcome == "final") >= COVERED


def _audited(directories: list[Path]) -> dict[str, int]:
    """Outcomes of the complete records on disk (a line being written is not one yet)."""
    outcomes: dict[str, int] = {}
    for directory in directories:
        for segment in directory.glob("*.jsonl"):
            for raw in segment.read_bytes().splitlines(keepends=True):
                line = parse_line(raw)
                if line is not None:
                    outcome = decode(line.canonical).outcome
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def test_every_turn_of_every_replica_is_in_a_verified_audit_chain(priced_mesh: Mesh) -> None:
    """Runs after the budget test: each replica kept its own chain."""
    logs = [priced_mesh.data_dir / "audit", *priced_mesh.data_dir.glob("audit-gateway-*")]
    assert len(logs) == 3
    deadline = time.monotonic() + 15
    outcomes = _audited(logs)
    while sum(outcomes.values()) < TURNS and time.monotonic() < deadline:
        time.sleep(0.2)  # the running gateway writes its queue in groups
        outcomes = _audited(logs)
    assert sum(outcomes.values()) == TURNS
    assert outcomes["RESOURCE_EXHAUSTED:BUDGET_EXHAUSTED"] > 0
    for directory in logs:
        assert verify(directory).ok, directory
