"""The alert rules (k8s/components/monitoring/prometheus-rules.yaml) with Debian's Prometheus:
``promtool check rules`` and the unit tests of alert_rules_test.yaml, every alert covered by
one; then a real Prometheus server scraping the embedded mesh finds the series the rules
read and loads the rules. Outside CI these skip when Prometheus is not installed
(scripts/setup.d/45-prometheus.sh installs it); in CI a missing one is a failure."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from tests.mesh.conftest import api_key
from tests.support.redis_server import in_ci

HERE = Path(__file__).resolve().parent
RULES = HERE.parent.parent / "k8s" / "components" / "monitoring" / "prometheus-rules.yaml"
UNIT_TESTS = HERE / "alert_rules_test.yaml"
DASHBOARD = RULES.parent / "dashboards" / "waybill-overview.json"
REPO = HERE.parent.parent
SERVICE_DIRS = (
    *("runtime", "gateway", "guardrails", "ledger", "llm_pool", "orders", "retrieval"),
    *("router", "workers"),
)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian's prometheus package; setup.d/45-prometheus.sh)"
        if in_ci():
            pytest.fail(message + ": CI must run the alert tests")
        pytest.skip(message)
    return found


def _groups() -> list[dict[str, Any]]:
    rule = yaml.safe_load(RULES.read_text())
    assert rule["kind"] == "PrometheusRule"
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def _alerts() -> list[dict[str, Any]]:
    return [r for g in _groups() for r in g["rules"] if "alert" in r]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The rules as a plain rule file with the unit tests beside it."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": _groups()}, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return tmp_path


def test_every_alert_pages_or_tickets_and_says_what_happened() -> None:
    alerts = _alerts()
    assert len({a["alert"] for a in alerts}) == len(alerts) >= 10
    for alert in alerts:
        assert alert["labels"]["severity"] in {"page", "ticket"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["description"], alert["alert"]


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {a["alert"] for a in _alerts()} <= fired


def _promtool(rules_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("promtool"), *args], cwd=rules_dir, capture_output=True, text=True, check=False
    )


def test_promtool_checks_the_rules_and_runs_their_unit_tests(rules_dir: Path) -> None:
    checked = _promtool(rules_dir, "check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in checked.stdout
    tested = _promtool(rules_dir, "test", "rules", UNIT_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_broken_expectation_fails_promtool(rules_dir: Path) -> None:
    """The unit tests can fail: one expected label changed is a failure."""
    broken = UNIT_TESTS.read_text().replace(
        "{severity: page, service: gateway}", "{severity: page, service: orders}"
    )
    (rules_dir / "broken.yaml").write_text(broken)
    tested = _promtool(rules_dir, "test", "rules", "broken.yaml")
    assert tested.returncode != 0
    assert "WaybillErrorRateHigh" in tested.stdout + tested.stderr


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def _defined_metrics() -> set[str]:
    """Every metric name the services define (the strings passed to prometheus_client)."""
    names: set[str] = set()
    for directory in SERVICE_DIRS:
        for source in (REPO / directory).rglob("*.py"):
            names.update(re.findall(r'"(waybill_[a-z0-9_]+)"', source.read_text()))
    return names


def test_the_dashboard_is_provisioning_ready_and_reads_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    variables = [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variables == ["datasource"]  # no datasource uid of one installation baked in
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    charts = [p for p in panels if p["type"] != "row"]
    assert len(charts) >= 12
    for panel in charts:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    defined = _defined_metrics()
    used = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for expr in _dashboard_exprs()
        for name in re.findall(r"\b(waybill_[a-z0-9_]+)", expr)
    }
    assert used - defined == set()
    for wanted in ("escalations", "tool_calls", "time_to_first_token", "low_confidence"):
        assert any(wanted in name for name in used), wanted


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    found = _get(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}")
    result: list[dict[str, Any]] = found["data"]["result"]
    return result


@pytest.mark.mesh
def test_a_real_prometheus_scrapes_the_mesh_and_loads_the_rules(rules_dir: Path) -> None:
    prometheus = _tool("prometheus")
    # One run of free ports: the services', their metrics', Prometheus's own.
    count = len(mesh.SERVICES)
    first = free_base_port(2 * count + 1)
    ports = {spec.name: first + count + i for i, spec in enumerate(mesh.SERVICES)}
    env = {
        name: {f"WAYBILL_{name.upper()}_METRICS_PORT": str(port)} for name, port in ports.items()
    }
    web = first + 2 * count
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_dir / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": "waybill",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"process": name}}
                    for name, port in ports.items()
                ],
            }
        ],
    }
    (rules_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
    with Mesh(
        run_dir=rules_dir / "run",
        base_port=first,
        per_service_env=env,
    ) as m:
        md = [("x-api-key", api_key(m))]
        with grpc.insecure_channel(m.addresses["gateway"]) as ch:
            stub = gw_grpc.GatewayServiceStub(ch)
            for n, message in enumerate(
                ["where is my order?", "I want to talk to a person", "when will it arrive?"]
            ):
                request = gw.ConverseRequest(
                    session_id=f"scrape-000{n}", user_id="acme-0001", message=message
                )
                list(stub.Converse(request, metadata=md, timeout=10))
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={rules_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={rules_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{web}"
        wanted = {
            "waybill_rpc_total": 'waybill_rpc_total{service="gateway", method="Converse"}',
            "waybill_tool_calls_total": 'waybill_tool_calls_total{tool="get_order_status"}',
            "waybill_escalations_total": "waybill_escalations_total",
            "waybill_router_classifications_total": "waybill_router_classifications_total",
            "waybill_llm_generations_total": "waybill_llm_generations_total",
        }
        found: dict[str, list[dict[str, Any]]] = {}
        rules: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    found = {name: _query(base, expr) for name, expr in wanted.items()}
                    rules = [
                        r
                        for g in _get(f"{base}/api/v1/rules")["data"]["groups"]
                        for r in g["rules"]
                    ]
                except OSError:
                    found, rules = {}, []  # not listening yet
                if found and all(found.values()) and rules:
                    break
                time.sleep(0.5)
            # Every dashboard query parses and runs on the real server.
            refused: dict[str, str] = {}
            for expr in _dashboard_exprs():
                try:
                    _query(base, expr.replace("$__rate_interval", "1m"))
                except urllib.error.HTTPError as exc:
                    refused[expr] = exc.read().decode(errors="replace")
        finally:
            server.terminate()
            server.wait(10)
    missing = [name for name, series in found.items() if not series] if found else list(wanted)
    assert missing == [], f"prometheus found no series for {missing}"
    assert refused == {}
    assert {r["name"] for r in rules} == {a["alert"] for a in _alerts()}
    assert {r["health"] for r in rules} == {"ok"}
    (escalated,) = found["waybill_escalations_total"]
    assert escalated["metric"]["reason"] == "asked"
