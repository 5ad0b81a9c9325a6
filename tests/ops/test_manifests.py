"""Every object the fleet applies, as kustomize renders it, checked by the tools a cluster
admin would run: kubernetes-validate against the Kubernetes OpenAPI schemas (strict: an
unknown field is an error), and checkov's policies with zero failed checks (a skipped check
carries its reason in a ``checkov.io/skipN`` annotation on the object).

Both tools live in .venv-k8s (scripts/setup.d/50-manifest-tools.sh) because their pinned
dependencies clash with ours. Outside CI these tests skip when it is missing; in CI a missing
tool is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import kustomize
from tests.support.redis_server import in_ci

ROOT = Path(__file__).resolve().parent.parent.parent
K8S = ROOT / "k8s"
TOOLS = ROOT / os.environ.get("K8S_TOOLS_VENV", ".venv-k8s") / "bin"

KUBERNETES_VERSIONS = ("1.35.0", "1.37.0")
"""The oldest and the newest minor release the fleet supports."""

WITHOUT_SCHEMA = {
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
"""Prometheus Operator resources: kubernetes-validate ships no schema for custom resources,
so their shape is checked by test_custom_resources_have_the_operators_shape instead."""

SKIPPABLE = {
    "CKV_K8S_43": "image by digest: the release pipeline pins digests at deploy time",
    "CKV_K8S_35": "secrets as files: the services read these settings from the environment",
}
"""The only checkov checks a manifest may skip (each object still says why, in place)."""


def _tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():
        message = f"{path} is missing (scripts/setup.d/50-manifest-tools.sh builds it)"
        if in_ci():
            pytest.fail(message + ": CI must check the manifests")
        pytest.skip(message)
    return path


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["apiVersion"], doc["kind"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every root's objects, by root ("overlays/fleet", "platform/prometheus-adapter")."""
    roots = kustomize.roots(K8S)
    assert roots, "nothing to render under k8s/"
    return {str(root.relative_to(K8S)): kustomize.build(root) for root in roots}


def _write(directory: Path, rendered: dict[str, list[dict[str, Any]]], *, schema_only: bool) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, objects in rendered.items():
        kept = [o for o in objects if not (schema_only and _key(o) in WITHOUT_SCHEMA)]
        text = yaml.safe_dump_all(kept, sort_keys=False)
        (directory / (name.replace("/", "--") + ".yaml")).write_text(text)
        count += len(kept)
    return count


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_matches_the_kubernetes_schemas(
    version: str, rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    validate = _tool("kubernetes-validate")
    count = _write(tmp_path, rendered, schema_only=True)
    files = sorted(str(p) for p in tmp_path.glob("*.yaml"))
    done = subprocess.run(
        [str(validate), "--kubernetes-version", version, "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    # A kind without a schema is only a warning to the tool: here it is a failure, so a
    # new custom resource is either validated or listed in WITHOUT_SCHEMA with a reason.
    problems = [line for line in output.splitlines() if not line.startswith("INFO ")]
    assert not problems, "\n".join(problems)
    assert done.returncode == 0, output
    assert output.count(" passed for resource ") == count, output
    assert len(re.findall(r"^INFO .* passed for resource ", output, re.M)) == count, output


def test_custom_resources_have_the_operators_shape(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    custom = [o for objects in rendered.values() for o in objects if _key(o) in WITHOUT_SCHEMA]
    assert {_key(o) for o in custom} == WITHOUT_SCHEMA
    services = [o for objects in rendered.values() for o in objects if o["kind"] == "Service"]
    for obj in custom:
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, obj["metadata"]["name"]
        assert obj["metadata"]["namespace"] == "waybill"
        spec = obj["spec"]
        if obj["kind"] == "PrometheusRule":
            assert set(spec) == {"groups"}
            for group in spec["groups"]:
                assert set(group) <= {"name", "interval", "rules"}
                assert group["rules"], group["name"]
                for rule in group["rules"]:
                    assert ("alert" in rule) != ("record" in rule), rule
                    assert isinstance(rule["expr"], str)
                    assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}
        else:
            assert set(spec) == {"selector", "endpoints"}
            wanted = spec["selector"]["matchLabels"]
            scraped = [
                s
                for s in services
                if wanted.items() <= s["metadata"].get("labels", {}).items()
                and any(p["name"] == "metrics" for p in s["spec"]["ports"])
            ]
            assert scraped, "the ServiceMonitor selects no Service with a metrics port"
            for endpoint in spec["endpoints"]:
                assert set(endpoint) <= {"port", "path", "interval", "honorLabels"}
                assert re.fullmatch(r"[0-9]+s", endpoint["interval"])


def test_checkov_finds_nothing_to_fix(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    checkov = _tool("checkov")
    manifests = tmp_path / "manifests"
    _write(manifests, rendered, schema_only=False)
    done = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(manifests),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        # Offline: no lookup of the checks' guidelines on the vendor's API.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        cwd=tmp_path,
    )
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']}" for c in results["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0
    assert done.returncode == 0, done.stderr[-2000:]
    for check in results["skipped_checks"]:
        assert check["check_id"] in SKIPPABLE, (check["check_id"], check["resource"])
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, (check["check_id"], check["resource"])
    # Every workload was looked at (not just parsed around).
    checked = {c["resource"] for c in results["passed_checks"]}
    for objects in rendered.values():
        for obj in objects:
            if obj["kind"] in {"Deployment", "Job"}:
                meta = obj["metadata"]
                assert f"{obj['kind']}.{meta['namespace']}.{meta['name']}" in checked
