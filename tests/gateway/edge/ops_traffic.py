"""Traffic for the ops page's tests: turns through the edge, one priced charge to the ledger."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import grpc
import httpx
from waybill.common.v1 import money_pb2, usage_pb2
from waybill.ledger.v1 import ledger_service_pb2 as ledger_pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc

from cli.launcher import Mesh
from tests.gateway.edge.conftest import sse_events

OPS_TEAM = "ops-check"
"""The team the priced charge is made for (the demo's turns are the ``support`` team's)."""
OPS_COST_MICROS = 150_000
"""1M input tokens of openai/gpt-4o-mini under the price table (llm_pool/prices.json)."""


@dataclass(frozen=True, slots=True)
class Traffic:
    """What was sent through the mesh."""

    turns: dict[str, int]
    """Answered turns per tenant."""
    escalations: int
    """Turns handed over to a person."""


def turn(client: httpx.Client, *, tenant: str, user_id: str, message: str) -> list[str]:
    """One turn through the edge with the tenant's demo key; the SSE event names."""
    response = client.post(
        f"/v1/sessions/ops-{secrets.token_hex(6)}/turns",
        json={"userId": user_id, "message": message},
        headers={"x-waybill-demo-tenant": tenant},
    )
    assert response.status_code == 200, response.text
    names = [name for name, _ in sse_events(response.text)]
    assert names[-1] == "final", names
    return names


def charge(ledger_address: str) -> None:
    """One priced turn for a team of its own, straight to the ledger."""
    with grpc.insecure_channel(ledger_address) as channel:
        stub = ledger_grpc.LedgerServiceStub(channel)
        held = stub.Reserve(
            ledger_pb.ReserveRequest(
                request_id=f"ops-{secrets.token_hex(8)}",
                tenant_id="acme-retail",
                team_id=OPS_TEAM,
                feature_id="order-support",
                estimate=money_pb2.Cost(currency_code="USD", micro_units=1_000_000),
            ),
            timeout=10,
        )
        generation = usage_pb2.Generation(
            backend="openai", model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0
        )
        done = stub.Commit(
            ledger_pb.CommitRequest(
                reservation_id=held.reservation_id,
                tenant_id="acme-retail",
                usage=usage_pb2.Usage(input_tokens=1_000_000, generations=[generation]),
            ),
            timeout=10,
        )
        assert done.charged.micro_units == OPS_COST_MICROS


def send_traffic(platform: Mesh, client: httpx.Client) -> Traffic:
    """Four answered turns (one handed over to a person; one message said twice, so the
    router's caches are looked up again) and one priced charge."""
    customers = client.get("/v1/customers", headers={"x-waybill-demo-tenant": "globex-home"})
    globex = customers.json()["customers"][0]["userId"]
    turn(client, tenant="acme-retail", user_id="acme-0001", message="where is my order?")
    turn(client, tenant="acme-retail", user_id="acme-0001", message="where is my order?")
    names = turn(
        client, tenant="acme-retail", user_id="acme-0002", message="I want to talk to a person"
    )
    assert "escalation" in names, names
    turn(client, tenant="globex-home", user_id=globex, message="when will my package arrive?")
    charge(platform.addresses["ledger"])
    return Traffic(turns={"acme-retail": 3, "globex-home": 1}, escalations=1)
