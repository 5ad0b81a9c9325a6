"""The ops page's data against the real mesh, started by the launcher as `waybill up` does:
turns through the edge, one priced charge straight to the ledger, then GET /v1/ops/summary
must show exactly those (counts are the services' own metrics, costs the ledger's report)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli import up
from cli.launcher import Mesh
from runtime import credentials, mesh
from tests.gateway.edge.conftest import error_info, error_of
from tests.gateway.edge.mesh_fixtures import edge_mesh
from tests.gateway.edge.ops_traffic import OPS_COST_MICROS, OPS_TEAM, Traffic, send_traffic

pytestmark = pytest.mark.mesh


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Every service and the edge, for this module."""
    with edge_mesh(tmp_path_factory.mktemp("ops-mesh")) as started:
        yield started


@pytest.fixture(scope="module")
def client(platform: Mesh) -> Iterator[httpx.Client]:
    """An HTTP client of the platform's edge."""
    assert platform.edge_url is not None
    with httpx.Client(base_url=platform.edge_url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def traffic(platform: Mesh, client: httpx.Client) -> Traffic:
    """The turns and the charge every test here reads back."""
    return send_traffic(platform, client)


def summary(client: httpx.Client, query: str = "") -> dict[str, Any]:
    response = client.get(f"/v1/ops/summary{query}")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def test_every_source_answers(platform: Mesh, client: httpx.Client, traffic: Traffic) -> None:
    body = summary(client)
    assert [s["name"] for s in body["sources"]] == [
        *(s.name for s in mesh.start_order()),
        "ledger (cost report)",
    ]
    assert [s for s in body["sources"] if not s["ok"]] == []
    assert all("startTime" in s for s in body["sources"][:-1])
    # The metrics endpoints are the launcher's, one per service, and never shown.
    assert set(platform.metrics_addresses) == set(platform.addresses)
    for address in platform.metrics_addresses.values():
        assert address not in str(body)


def test_cost_per_team_and_day_is_the_ledgers(client: httpx.Client, traffic: Traffic) -> None:
    # Two days: the charge is on one of them even when the test runs across midnight UTC.
    body = summary(client, "?days=2")
    cost = body["cost"]
    assert cost["ok"] is True
    assert cost["tenants"] == ["acme-retail", "globex-home"]
    assert len(cost["days"]) == 2
    assert cost["days"][-1] == body["window"]["lastDay"]
    series = {(s["tenant"], s["team"]): s for s in cost["series"]}
    assert set(series) == {
        ("acme-retail", "support"),
        ("acme-retail", OPS_TEAM),
        ("globex-home", "support"),
    }
    assert sum(series[("acme-retail", OPS_TEAM)]["costMicros"]) == OPS_COST_MICROS
    assert sum(series[("acme-retail", OPS_TEAM)]["requests"]) == 1
    for tenant, turns in traffic.turns.items():
        assert sum(series[(tenant, "support")]["requests"]) == turns
        # The composer writes the demo's answers: they cost nothing, and say so.
        assert sum(series[(tenant, "support")]["costMicros"]) == 0
    assert {s["currency"] for s in cost["series"]} == {"USD"}
    # One tenant only.
    only = summary(client, "?days=2&tenant=globex-home")["cost"]
    assert [(s["tenant"], s["team"]) for s in only["series"]] == [("globex-home", "support")]


def test_escalation_rate_latency_and_confidence_come_from_the_metrics(
    client: httpx.Client, traffic: Traffic
) -> None:
    body = summary(client)
    turns = sum(traffic.turns.values())
    escalation = body["escalation"]
    assert escalation["turns"] == turns
    assert escalation["escalated"] == traffic.escalations
    assert escalation["rate"] == pytest.approx(traffic.escalations / turns, abs=1e-4)
    assert escalation["byReason"] == [{"reason": "asked", "count": 1}]

    rows = {(r["service"], r["method"]): r for r in body["latency"]["rows"]}
    converse = rows[("gateway", "Converse")]
    assert converse["count"] == turns
    assert 0 < converse["p50Ms"] <= converse["p95Ms"] <= converse["p99Ms"]
    assert rows[("router", "Classify")]["count"] >= turns
    assert ("tracking", "RunTurn") in rows

    confidence = body["routerConfidence"]
    assert confidence["count"] >= turns
    assert sum(b["count"] for b in confidence["buckets"]) == confidence["count"]
    assert 0 < confidence["median"] <= 1


def test_cache_hits_are_the_routers_own(client: httpx.Client, traffic: Traffic) -> None:
    caches = summary(client)["caches"]
    assert caches["state"] == "ok", caches
    found = {c["name"]: c for c in caches["caches"]}
    assert found, caches
    # The repeated message was looked up again: at least one hit somewhere.
    assert sum(c["hits"] for c in found.values()) >= 1
    for cache in found.values():
        assert cache["hitRatio"] == pytest.approx(
            cache["hits"] / (cache["hits"] + cache["misses"]), abs=1e-4
        )


def test_bad_input_is_a_precise_400(client: httpx.Client) -> None:
    for query, reason, field in (
        ("?days=90", "int.range", "days"),
        ("?tenant=initech", "UNKNOWN_TENANT", "tenant"),
        ("?days=3&days=3", "REPEATED_QUERY_PARAMETER", "days"),
        ("?from=2026-01-01", "UNKNOWN_QUERY_PARAMETER", "from"),
    ):
        answer = client.get(f"/v1/ops/summary{query}")
        assert answer.status_code == 400, (query, answer.text)
        error = error_of(answer)
        assert error_info(error)["reason"] == reason
        assert field in str(error["details"])


def test_up_prints_the_ops_page_and_the_model_api(platform: Mesh) -> None:
    out = io.StringIO()
    up._summary(platform, out)
    assert f"ops page:  {platform.ops_url}\n" in out.getvalue()
    assert f"model API (OpenAI-compatible): {platform.model_api_url}\n" in out.getvalue()
    # It answers there, with the run's demo key (no model has an endpoint here: only the
    # bundled embedding model is listed).
    key = credentials.key_for(platform.credentials_path, "acme-retail")
    listed = httpx.get(
        f"{platform.model_api_url}/models", headers={"authorization": f"Bearer {key}"}
    )
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["data"]] == ["all-MiniLM-L6-v2"]
    refused = httpx.get(f"{platform.model_api_url}/models")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"


def test_the_page_is_served_same_origin_only(client: httpx.Client) -> None:
    page = client.get("/ops")
    assert page.status_code == 200
    assert "<title>Waybill · ops</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/static/ops.js" in page.text
    assert client.get("/static/ops.js").status_code == 200
