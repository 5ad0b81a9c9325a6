"""The ops page's endpoint without the mesh: settings, who may read it, bad input, and
sources that fail (the figures say so; nothing is made up)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from cli.launcher import Mesh
from gateway.edge.app import create_app
from gateway.edge.settings import (
    OPS_METRICS_ENV,
    OPS_TENANTS_ENV,
    EdgeSettings,
    parse_ops_metrics,
)
from runtime import mesh
from runtime.settings import SettingsError
from tests.gateway.edge.conftest import StartEdge, error_info, error_of

TENANTS = ("acme-retail", "globex-home")


def _closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def metrics_endpoint() -> Iterator[str]:
    """A real Prometheus endpoint (prometheus_client's server) with a few of our metrics."""
    registry = CollectorRegistry()
    turns = Counter("waybill_rpc", "rpcs", ["service", "method", "code"], registry=registry)
    turns.labels("gateway", "Converse", "OK").inc(4)
    Counter("waybill_escalations", "hand-overs", ["reason"], registry=registry).labels(
        "asked"
    ).inc()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _ops_settings(*sources: tuple[str, str], ledger: str = "") -> EdgeSettings:
    return EdgeSettings(
        host="127.0.0.1",
        port=8080,
        gateway=f"127.0.0.1:{_closed_port()}",
        ops_metrics=sources,
        ops_ledger=ledger or f"127.0.0.1:{_closed_port()}",
        ops_tenants=TENANTS,
    )


def _client(
    settings: EdgeSettings, *, client: tuple[str, int] = ("127.0.0.1", 4321)
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings), client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080", timeout=30)


# -- settings -------------------------------------------------------------------------------


def test_metrics_sources_parse_and_bad_ones_are_named() -> None:
    assert parse_ops_metrics("gateway=127.0.0.1:9001, router=[::1]:9002,") == (
        ("gateway", "127.0.0.1:9001"),
        ("router", "[::1]:9002"),
    )
    assert parse_ops_metrics("") == ()
    for bad, named in (
        ("gateway", "'gateway' is not name=host:port"),
        ("Gateway=127.0.0.1:1", "is not name=host:port"),
        ("gateway=127.0.0.1", "is not host:port"),
        ("gateway=h:1,gateway=h:2", "'gateway' is named twice"),
    ):
        with pytest.raises(SettingsError, match=named):
            parse_ops_metrics(bad)


def test_the_ops_page_is_refused_off_loopback_and_needs_its_sources() -> None:
    with pytest.raises(SettingsError, match=OPS_METRICS_ENV):
        EdgeSettings(
            host="0.0.0.0",
            port=8080,
            gateway="g:1",
            ops_metrics=(("gateway", "127.0.0.1:1"),),
            ops_ledger="127.0.0.1:2",
            ops_tenants=TENANTS,
        )
    with pytest.raises(SettingsError, match=OPS_TENANTS_ENV):
        EdgeSettings(host="127.0.0.1", port=8080, gateway="g:1", ops_metrics=(("gateway", "h:1"),))
    with pytest.raises(SettingsError, match="not a tenant id"):
        EdgeSettings(
            host="127.0.0.1",
            port=8080,
            gateway="g:1",
            ops_metrics=(("gateway", "h:1"),),
            ops_ledger="h:2",
            ops_tenants=("Acme Retail",),
        )


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_EDGE_ADDR", "127.0.0.1:8080")
    monkeypatch.setenv("WAYBILL_LEDGER_ADDR", "127.0.0.1:50062")
    monkeypatch.setenv(OPS_METRICS_ENV, "gateway=127.0.0.1:9001")
    monkeypatch.setenv(OPS_TENANTS_ENV, "acme-retail,globex-home")
    settings = EdgeSettings.from_env()
    assert settings.ops_enabled
    assert settings.ops_ledger == "127.0.0.1:50062"
    assert settings.ops_tenants == TENANTS
    monkeypatch.delenv(OPS_METRICS_ENV)
    assert not EdgeSettings.from_env().ops_enabled


# -- who may read it ----------------------------------------------------------------------


async def test_the_ops_page_is_off_without_its_sources(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    for path in ("/ops", "/v1/ops/summary"):
        answer = await http.get(edge.url + path)
        assert answer.status_code == 404, path
        assert error_info(error_of(answer))["reason"] == "OPS_OFF"


async def test_the_ops_page_is_refused_to_a_client_on_another_machine() -> None:
    settings = _ops_settings(("gateway", f"127.0.0.1:{_closed_port()}"))
    app = create_app(settings)
    for client, host in (
        (("203.0.113.7", 4321), "127.0.0.1:8080"),
        (("127.0.0.1", 4321), "evil.test"),
    ):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
            for path in ("/ops", "/v1/ops/summary"):
                answer = await http.get(path)
                assert answer.status_code == 403, (client, host, path)
                assert error_info(error_of(answer))["reason"] == "LOOPBACK_ONLY"


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "reason", "field"),
    [
        ("days=0", "int.range", "days"),
        ("days=32", "int.range", "days"),
        ("days=seven", "int.range", "days"),
        ("days=-1", "int.range", "days"),
        ("days=%D9%A1", "int.range", "days"),  # an Arabic-Indic one: a digit, not ASCII
        ("days=", "int.range", "days"),
        ("days=7&days=8", "REPEATED_QUERY_PARAMETER", "days"),
        ("tenant=initech", "UNKNOWN_TENANT", "tenant"),
        ("week=1", "UNKNOWN_QUERY_PARAMETER", "week"),
    ],
)
async def test_bad_queries_are_400_naming_the_parameter(
    query: str, reason: str, field: str
) -> None:
    async with _client(_ops_settings(("gateway", f"127.0.0.1:{_closed_port()}"))) as http:
        answer = await http.get(f"/v1/ops/summary?{query}")
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error_info(error)["reason"] == reason
    details = error["details"]
    assert isinstance(details, list)
    (bad,) = [d for d in details if d["@type"].endswith("google.rpc.BadRequest")]
    assert [v["field"] for v in bad["fieldViolations"]] == [field]


async def test_only_get_is_served() -> None:
    async with _client(_ops_settings(("gateway", f"127.0.0.1:{_closed_port()}"))) as http:
        answer = await http.post("/v1/ops/summary", json={})
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}


# -- sources --------------------------------------------------------------------------------


async def test_failed_sources_are_named_and_their_figures_left_empty(
    metrics_endpoint: str,
) -> None:
    gone = f"127.0.0.1:{_closed_port()}"
    ledger = f"127.0.0.1:{_closed_port()}"
    settings = _ops_settings(("gateway", metrics_endpoint), ("router", gone), ledger=ledger)
    async with _client(settings) as http:
        answer = await http.get("/v1/ops/summary?days=3&tenant=acme-retail")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["sources"] == [
        {"name": "gateway", "ok": True},
        {"name": "router", "ok": False, "problem": "not reachable"},
        {"name": "ledger (cost report)", "ok": False, "problem": "the ledger is not available"},
    ]
    # The reachable source's figures are there; the failed ones' are empty, not zero-filled.
    assert body["escalation"] == {
        "turns": 4,
        "escalated": 1,
        "rate": 0.25,
        "byReason": [{"reason": "asked", "count": 1}],
    }
    assert body["cost"]["ok"] is False
    assert body["cost"]["series"] == []
    assert body["cost"]["tenants"] == ["acme-retail"]
    assert len(body["cost"]["days"]) == 3
    assert body["routerConfidence"]["count"] == 0
    assert body["caches"]["state"] == "empty"
    # No address of any source reaches the caller.
    for address in (metrics_endpoint, gone, ledger):
        assert address not in answer.text
        assert address.rpartition(":")[2] not in answer.text


# -- the launcher -----------------------------------------------------------------------------


def test_the_launcher_gives_every_service_a_metrics_port_and_names_them_to_the_edge(
    tmp_path: Path,
) -> None:
    given = {"router": {"WAYBILL_ROUTER_METRICS_PORT": "29999"}}
    m = Mesh(run_dir=tmp_path, base_port=30000, edge=True, per_service_env=given)
    assert m.ops_url == f"http://127.0.0.1:{30000 + len(mesh.SERVICES)}/ops"
    assert set(m.metrics_addresses) == set(mesh.BY_NAME)
    assert m.metrics_addresses["router"] == "127.0.0.1:29999"  # a port given is kept
    ports = {int(a.rpartition(":")[2]) for a in m.metrics_addresses.values()}
    assert len(ports) == len(mesh.SERVICES)
    taken = {int(a.rpartition(":")[2]) for a in [*m.addresses.values(), m.edge_address or ""]}
    assert ports.isdisjoint(taken)
    for name, address in m.metrics_addresses.items():
        variable = f"WAYBILL_{name.upper()}_METRICS_PORT"
        assert m.child_env(name)[variable] == address.rpartition(":")[2]
    edge = m.child_env("edge")
    assert parse_ops_metrics(edge[OPS_METRICS_ENV]) == tuple(m.metrics_addresses.items())
    assert edge[OPS_TENANTS_ENV] == ",".join(TENANTS)
    # Without an edge nobody reads them: no metrics ports are handed out.
    plain = Mesh(run_dir=tmp_path, base_port=30000)
    assert plain.metrics_addresses == {}
    assert plain.ops_url is None
    assert OPS_METRICS_ENV not in plain.child_env("gateway")
