"""The fleet manifests stay in step with the mesh table: every service deployed,
probed over gRPC health, hardened, and reachable only along the mesh's edges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime import mesh

K8S = Path(__file__).resolve().parent.parent / "k8s"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base() -> dict[tuple[str, str], dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    found = {}
    for name in kustomization["resources"]:
        for doc in _docs(K8S / "base" / name):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


@pytest.mark.parametrize("spec", mesh.SERVICES, ids=lambda s: s.name)
def test_every_service_is_deployed_probed_and_hardened(spec: mesh.ServiceSpec) -> None:
    objects = _base()
    deployment = objects[("Deployment", spec.name)]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["python", "-m", spec.module]
    assert container["readinessProbe"]["grpc"]["service"] == spec.grpc_services[0]
    assert container["livenessProbe"]["grpc"]["port"] == 50051
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[spec.env_var] == "0.0.0.0:50051"
    for dep in spec.depends_on:
        assert env[mesh.spec(dep).env_var] == f"{dep}:50051"
    service = objects[("Service", spec.name)]
    assert service["spec"]["ports"][0]["name"] == "grpc"


def test_network_policies_allow_exactly_the_mesh_edges() -> None:
    policies = {
        d["metadata"]["name"]: d
        for d in _docs(K8S / "components" / "network-policies" / "network-policies.yaml")
    }
    assert policies["default-deny"]["spec"]["podSelector"] == {}
    for spec in mesh.SERVICES:
        callers = {s.name for s in mesh.SERVICES if spec.name in s.depends_on} or {"edge"}
        rule = policies[f"allow-to-{spec.name}"]["spec"]["ingress"][0]
        allowed = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in rule["from"]}
        assert allowed == callers, spec.name


def test_router_replicas_share_the_exemplar_store_and_read_keys_from_secrets() -> None:
    """Replicas keep no exemplars of their own (they would diverge): the store is
    PostgreSQL named by a Secret, the admin keys a Secret volume, no value in the repo."""
    pod = _base()[("Deployment", "router")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    dsn = env["WAYBILL_ROUTER_STORE_DSN"]
    assert "value" not in dsn
    assert dsn["valueFrom"]["secretKeyRef"] == {"name": "waybill-router-store", "key": "dsn"}
    assert "WAYBILL_DATA_DIR" not in env  # no file store on a pod's own disk
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {n for n, v in volumes.items() if "emptyDir" in v} == {"tmp"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    keys = env["WAYBILL_ROUTER_ADMIN_KEYS"]["value"]
    assert keys.startswith(mounts["admin-keys"]["mountPath"] + "/")
    assert mounts["admin-keys"]["readOnly"] is True
    assert volumes["admin-keys"]["secret"]["secretName"] == "waybill-router-admin-keys"


def test_retrieval_replicas_serve_one_published_index_read_only() -> None:
    """Built once by the kb-ingest Job on a shared volume, never per pod: replicas mount it
    read-only, refuse to publish, and seed nothing of their own."""
    objects = _base()
    pod = objects[("Deployment", "retrieval")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WAYBILL_KB_WRITABLE"] == "0"
    assert env["WAYBILL_KB_SEED_DIR"] == ""
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["kb-index"]["readOnly"] is True
    assert env["WAYBILL_KB_DIR"] == mounts["kb-index"]["mountPath"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["kb-index"]["persistentVolumeClaim"] == {
        "claimName": "kb-index",
        "readOnly": True,
    }
    assert {n for n, v in volumes.items() if "emptyDir" in v} == {"tmp"}
    claim = objects[("PersistentVolumeClaim", "kb-index")]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    job = objects[("Job", "kb-ingest")]["spec"]["template"]["spec"]
    (ingest,) = job["containers"]
    assert ingest["args"][:4] == ["python", "-m", "cli", "kb"]
    assert ingest["args"][ingest["args"].index("--kb-dir") + 1] == env["WAYBILL_KB_DIR"]
    job_mounts = {m["name"]: m for m in ingest["volumeMounts"]}
    assert not job_mounts["kb-index"].get("readOnly", False)
    assert job["securityContext"]["runAsNonRoot"] is True


def test_ledger_replicas_share_one_postgresql_named_by_a_secret() -> None:
    """Two ledger replicas with journals of their own would each allow the whole budget:
    in the fleet the budgets live in PostgreSQL, named by a Secret, no value in the repo."""
    deployment = _base()[("Deployment", "ledger")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    url = env["WAYBILL_LEDGER_POSTGRES_URL"]
    assert "value" not in url
    assert url["valueFrom"]["secretKeyRef"] == {"name": "waybill-ledger-store", "key": "dsn"}
    assert env["WAYBILL_LEDGER_PG_SCHEMA"]["value"] == "waybill_ledger"
