"""The fleet manifests stay in step with the mesh table: every service deployed,
probed over gRPC health, hardened, and reachable only along the mesh's edges; and, as
kustomize renders them (tests/support/kustomize.py), every multi-replica Deployment under a
disruption budget, every autoscaler on a Deployment and a metric served from our own series,
every Secret documented, every service traced and scraped, Triton on GPU nodes.
Schema validation and checkov run in tests/ops/test_manifests.py."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from runtime import mesh
from tests.support import kustomize

K8S = Path(__file__).resolve().parent.parent / "k8s"


def _docs(path: Path) -> list[dict[str, Any]]:
    return kustomize.documents(path)


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


# -- the rendered fleet --------------------------------------------------------------------

METRICS_MODULES = ("runtime.metrics", "llm_pool.metrics")
"""Where the series the autoscalers read are declared."""
NOT_SCRAPED = {"edge": "the REST edge serves no /metrics; its calls are counted by the gateway"}
SECRETS_DOC = K8S / "README.md"


def _rendered() -> dict[str, list[dict[str, Any]]]:
    return {str(r.relative_to(K8S)): kustomize.build(r) for r in kustomize.roots(K8S)}


def _fleet() -> list[dict[str, Any]]:
    return kustomize.build(K8S / "overlays" / "fleet")


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = obj["spec"]["template"]["spec"]
    return pod


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_every_object_is_namespaced_and_labelled() -> None:
    for root, objects in _rendered().items():
        for obj in objects:
            meta = obj["metadata"]
            if obj["kind"] != "Namespace":
                assert meta.get("namespace") not in (None, "", "default"), (root, meta["name"])
        names = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
        assert names in ([], ["waybill"]), root


def test_every_multi_replica_deployment_has_a_disruption_budget() -> None:
    for root, objects in _rendered().items():
        budgets = _by_kind(objects, "PodDisruptionBudget")
        autoscalers = {
            h["spec"]["scaleTargetRef"]["name"]: h
            for h in _by_kind(objects, "HorizontalPodAutoscaler").values()
        }
        for name, deployment in _by_kind(objects, "Deployment").items():
            least = deployment["spec"].get("replicas", 1)
            if name in autoscalers:
                least = autoscalers[name]["spec"].get("minReplicas", 1)
                assert least >= deployment["spec"].get("replicas", 1), name
            if least < 2:
                continue
            assert name in budgets, f"{root}: Deployment {name} has no PodDisruptionBudget"
            budget = budgets[name]["spec"]
            pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert budget["selector"]["matchLabels"].items() <= pod_labels.items(), name
            # A budget that forbids every eviction would block node drains for good.
            assert budget.get("maxUnavailable", 0) >= 1 or budget["minAvailable"] < least, name


def _adapter_rules() -> dict[str, dict[str, Any]]:
    """Each metric the prometheus-adapter serves, by name, with its rule and API."""
    (config_map,) = kustomize.build(K8S / "platform" / "prometheus-adapter")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    served: dict[str, dict[str, Any]] = {}
    for api, key in (("Pods", "rules"), ("External", "externalRules")):
        for rule in config.get(key, []):
            served[rule["name"]["as"]] = {"api": api, **rule}
    return served


def _declared_series() -> set[str]:
    """Metric family names our code registers (counters without ``_total``)."""
    names: set[str] = set()
    for module in map(importlib.import_module, METRICS_MODULES):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                names.update(m.name for m in value.describe())
    return names


def test_autoscalers_target_deployments_on_metrics_the_adapter_serves_from_our_series() -> None:
    served = _adapter_rules()
    declared = _declared_series()
    for rule in served.values():
        series = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"].strip("'\""))
        assert series is not None, rule
        family = re.sub(r"_(sum|count|bucket|total)$", "", series.group())
        assert family in declared, f"{series.group()} is not a series our services export"
    for root, objects in _rendered().items():
        deployments = _by_kind(objects, "Deployment")
        for name, hpa in _by_kind(objects, "HorizontalPodAutoscaler").items():
            target = hpa["spec"]["scaleTargetRef"]
            assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
            assert target["name"] in deployments, (root, name)
            assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
            kinds = set()
            for metric in hpa["spec"]["metrics"]:
                kinds.add(metric["type"])
                if metric["type"] in {"Pods", "External"}:
                    body = metric[metric["type"].lower()]
                    rule = served[body["metric"]["name"]]
                    assert rule["api"] == metric["type"], (name, body["metric"]["name"])
            assert kinds & {"Pods", "External"}, f"{name} scales on no metric of ours"


def test_the_gateway_scales_on_turns_in_flight_and_triton_on_time_to_first_token() -> None:
    autoscalers = _by_kind(_fleet(), "HorizontalPodAutoscaler")
    (gateway,) = [m for m in autoscalers["gateway"]["spec"]["metrics"] if m["type"] == "Pods"]
    assert gateway["pods"]["metric"]["selector"]["matchLabels"] == {
        "service": "gateway",
        "method": "Converse",
    }
    (triton,) = autoscalers["triton"]["spec"]["metrics"]
    assert triton["external"]["metric"]["name"] == "waybill_llm_time_to_first_token_p95_seconds"
    assert triton["external"]["metric"]["selector"]["matchLabels"] == {"backend": "triton-small"}


def _secret_references(objects: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    """(Secret, key) for every key read; (Secret, None) for a whole-Secret volume."""
    found: set[tuple[str, str | None]] = set()
    for obj in objects:
        if obj["kind"] not in {"Deployment", "Job"}:
            continue
        pod = _pod(obj)
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.add((ref["name"], ref["key"]))
            for source in container.get("envFrom", []):
                assert "secretRef" not in source, "read Secrets key by key, by name"
        for volume in pod.get("volumes", []):
            secret = volume.get("secret")
            if secret:
                items = secret.get("items")
                keys = [i["key"] for i in items] if items else [None]
                found.update((secret["secretName"], k) for k in keys)
    return found


def _documented_secrets() -> set[tuple[str, str]]:
    rows = re.findall(
        r"^\| `([a-z0-9-]+)` \| `([A-Za-z0-9._-]+)` \|", SECRETS_DOC.read_text(), re.M
    )
    return set(rows)


def test_every_secret_reference_is_documented_and_no_secret_is_in_the_repo() -> None:
    documented = _documented_secrets()
    names = {name for name, _ in documented}
    used: set[tuple[str, str | None]] = set()
    for root, objects in _rendered().items():
        assert not _by_kind(objects, "Secret"), f"{root}: Secrets are created out of band"
        used |= _secret_references(objects)
    for name, key in used:
        if key is None:
            assert name in names, name
        else:
            assert (name, key) in documented, f"{name}/{key} is not in k8s/README.md"
    unread = {(n, k) for n, k in documented if (n, k) not in used and (n, None) not in used}
    assert not unread, f"k8s/README.md lists Secrets nothing reads: {sorted(unread)}"


def test_fleet_stores_come_from_secrets() -> None:
    deployments = _by_kind(_fleet(), "Deployment")
    expected = {
        "ledger": ("WAYBILL_LEDGER_POSTGRES_URL", "waybill-ledger-store", "url"),
        "gateway": ("WAYBILL_REDIS_URL", "waybill-redis", "url"),
        "orders": ("WAYBILL_ORDERS_PG_DSN", "waybill-orders-store", "dsn"),
    }
    for name, (variable, secret, key) in expected.items():
        (container,) = _pod(deployments[name])["containers"]
        env = _env(container)[variable]
        assert "value" not in env
        assert env["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}


def test_every_service_exports_traces_and_is_scraped() -> None:
    objects = _fleet()
    services = _by_kind(objects, "Service")
    (monitor,) = _by_kind(objects, "ServiceMonitor").values()
    wanted = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True  # our "service" label is what the rules group by
    telemetry = _by_kind(objects, "ConfigMap")["waybill-telemetry"]["data"]
    assert telemetry["OTEL_TRACES_EXPORTER"] == "otlp"
    assert telemetry["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
    for name, deployment in _by_kind(objects, "Deployment").items():
        (container,) = _pod(deployment)["containers"]
        if name == "triton":
            collector = telemetry["OTEL_EXPORTER_OTLP_ENDPOINT"].split("//")[1].split(":")[0]
            assert "--trace-config=mode=opentelemetry" in container["args"]
            assert (
                f"--trace-config=opentelemetry,url={collector}:4318/v1/traces"
                in (container["args"])
            )
        else:
            sources = [s.get("configMapRef", {}).get("name") for s in container["envFrom"]]
            assert "waybill-telemetry" in sources, name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        if name in NOT_SCRAPED:
            assert "metrics" not in ports, name
            continue
        service = services[name]
        assert wanted.items() <= service["metadata"]["labels"].items(), name
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        assert port["targetPort"] == "metrics", name
        env = _env(container)
        if name != "triton":
            assert env[f"WAYBILL_{name.upper()}_METRICS_PORT"]["value"] == str(ports["metrics"])
            assert env["WAYBILL_METRICS_HOST"]["value"] == "0.0.0.0"
    policies = _by_kind(objects, "NetworkPolicy")
    scrape = policies["allow-metrics-scrape"]["spec"]["ingress"][0]
    assert {p["port"] for p in scrape["ports"]} == {9090, 8002}
    egress = policies["allow-mesh-egress"]["spec"]["egress"]
    assert {4317, 4318} <= {p["port"] for rule in egress for p in rule["ports"]}


def test_triton_runs_on_gpu_nodes_from_the_model_volume() -> None:
    objects = _fleet()
    deployment = _by_kind(objects, "Deployment")["triton"]
    pod = _pod(deployment)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert "--model-repository=/models/repository" in container["args"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["models"] == {"name": "models", "mountPath": "/models", "readOnly": True}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["models"]["persistentVolumeClaim"]
    assert claim == {"claimName": "triton-models", "readOnly": True}
    assert claim["claimName"] in _by_kind(objects, "PersistentVolumeClaim")
    # The model configs name their files under /models (build_engine.sh's layout).
    configs = (K8S.parent / "triton_models" / "trtllm").glob("*/config.pbtxt")
    for path in re.findall(r'string_value: "(/[^"]+)"', "".join(p.read_text() for p in configs)):
        assert path.startswith("/models/"), path
    # The LLM pool's users reach it through the optional waybill-llm ConfigMap.
    llm = _by_kind(objects, "ConfigMap")["waybill-llm"]["data"]
    service = _by_kind(objects, "Service")["triton"]
    (grpc_port,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert llm["WAYBILL_LLM_TRITON_SMALL_URL"] == f"triton:{grpc_port['port']}"
    allowed = _by_kind(objects, "NetworkPolicy")["allow-to-triton"]["spec"]["ingress"][0]
    callers = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in allowed["from"]}
    for name in callers:
        (worker,) = _pod(_by_kind(objects, "Deployment")[name])["containers"]
        refs = [s["configMapRef"] for s in worker["envFrom"]]
        assert {"name": "waybill-llm", "optional": True} in refs, name


def test_the_renderer_sets_namespace_and_images_and_refuses_what_it_cannot_render(
    tmp_path: Path,
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text(
        "resources: [app.yaml]\nimages: [{name: reg:5000/app, newTag: '2'}]\n"
    )
    (base / "app.yaml").write_text(
        "kind: Namespace\nmetadata: {name: ns}\n---\n"
        "kind: Job\nmetadata: {name: j}\n"
        "spec: {template: {spec: {containers: [{name: c, image: 'reg:5000/app:1'}]}}}\n"
    )
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "namespace: ns\nresources: [../base]\nimages: [{name: reg:5000/app, digest: 'sha256:ab'}]\n"
    )
    namespace, job = kustomize.build(overlay)
    assert "namespace" not in namespace["metadata"]
    assert job["metadata"]["namespace"] == "ns"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "reg:5000/app@sha256:ab"  # the base's tag, then the digest
    (overlay / "kustomization.yaml").write_text("resources: [../base]\npatches: []\n")
    with pytest.raises(kustomize.KustomizeError, match="patches"):
        kustomize.build(overlay)
