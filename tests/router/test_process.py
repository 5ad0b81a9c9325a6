"""The real router process: SERVING only with a warm model, METHOD_EMBEDDING over gRPC,
and a clear failure naming the setup command when the model is missing."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from cli import probe
from cli.launcher import Mesh, MeshError
from cli.ports import free_base_port
from embeddings.store import SETUP_COMMAND
from router import admin_keys
from router.intents import I
from runtime import mesh
from runtime.errors import error_info_of
from tests.embeddings.model import require_model

pytestmark = pytest.mark.mesh


def test_the_router_process_classifies_with_embeddings(tmp_path: Path) -> None:
    require_model()
    with (
        Mesh(
            run_dir=tmp_path, services=["router"], base_port=free_base_port(len(mesh.SERVICES))
        ) as running,
        grpc.insecure_channel(running.addresses["router"]) as channel,
    ):
        stub = pb_grpc.RouterServiceStub(channel)
        reply = stub.Classify(
            pb.ClassifyRequest(tenant_id="acme-retail", text="where is WB 0000 000 001?"),
            timeout=10,
        )
        info = stub.GetClassifierInfo(pb.GetClassifierInfoRequest(), timeout=10)
        key = admin_keys.key_in(running.router_admin_keys_path, "acme-retail")
        added = stub.AddExemplars(
            pb.AddExemplarsRequest(
                tenant_id="acme-retail",
                request_id="process-00001",
                exemplars=[pb.Exemplar(text="my pallet is stuck", intent=I.INTENT_TRACKING_STATUS)],
            ),
            metadata=(("authorization", f"Bearer {key}"),),
            timeout=30,
        )
        tenant_info = stub.GetClassifierInfo(
            pb.GetClassifierInfoRequest(tenant_id="acme-retail"), timeout=10
        )
    assert reply.method == pb.METHOD_EMBEDDING
    assert reply.worker == I.WORKER_TRACKING
    assert reply.classifier_version == info.classifier_version
    assert info.method == pb.METHOD_EMBEDDING
    assert added.classifier_version != info.classifier_version
    assert tenant_info.classifier_version == added.classifier_version
    # Added exemplars are kept in the run's data directory for the next start.
    lines = (tmp_path / "data" / "router" / "added-exemplars.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["tenant_id"], r["text"]) for r in rows if "seq" in r] == [
        ("acme-retail", "my pallet is stuck")
    ]
    # The keys exist once, readable by the operator only; the router's file holds digests.
    for path in (running.router_admin_keys_path, running.router_admin_hashes_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key not in running.router_admin_hashes_path.read_text()
    assert admin_keys.digest(key) in running.router_admin_hashes_path.read_text()
    assert key not in (tmp_path / "logs" / "router.log").read_text()


def test_a_missing_model_stops_the_process_with_the_setup_command(tmp_path: Path) -> None:
    launcher = Mesh(
        run_dir=tmp_path,
        services=["router"],
        base_port=free_base_port(len(mesh.SERVICES)),
        env={"WAYBILL_MODEL_DIR": str(tmp_path / "no-models")},
    )
    with pytest.raises(MeshError) as raised:
        launcher.start(timeout_s=30)
    assert "router exited with status 1" in str(raised.value)
    assert SETUP_COMMAND in raised.value.log_tail


def test_calls_before_serving_are_warming_up_never_wrong(tmp_path: Path) -> None:
    """From spawn to SERVING: health says NOT_SERVING and a Classify call gets either
    UNAVAILABLE (not listening yet, or WARMING_UP with a retry delay) or, in the moment
    between the first answer and the health flip, a real embedding answer: never a
    wrong one and never another error."""
    require_model()
    launcher = Mesh(
        run_dir=tmp_path, services=["router"], base_port=free_base_port(len(mesh.SERVICES))
    )
    address = launcher.addresses["router"]
    process = subprocess.Popen(
        [sys.executable, "-m", "router"],
        env=launcher.child_env("router"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    statuses: set[str] = set()
    outcomes: set[str] = set()
    request = pb.ClassifyRequest(tenant_id="acme-retail", text="where is my order?")
    try:
        with probe.channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            stub = pb_grpc.RouterServiceStub(channel)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = probe.check(health, "waybill.router.v1.RouterService", 2.0)
                if status == probe.SERVING:
                    break
                statuses.add(status.split(":")[0])
                try:
                    reply = stub.Classify(request, timeout=2)
                    outcomes.add(f"{pb.Method.Name(reply.method)}/{reply.worker}")
                except grpc.RpcError as exc:
                    info = error_info_of(exc)
                    outcomes.add(info.reason if info else exc.code().name)
                time.sleep(0.01)
            else:
                pytest.fail("the router did not become SERVING within 60 s")
            reply = stub.Classify(request, timeout=5)
    finally:
        process.terminate()
        process.wait(30)
    assert reply.method == pb.METHOD_EMBEDDING
    assert statuses <= {"NOT_SERVING", "UNREACHABLE"}
    answer = f"METHOD_EMBEDDING/{I.WORKER_TRACKING}"
    assert outcomes <= {"UNAVAILABLE", "WARMING_UP", answer}, outcomes
