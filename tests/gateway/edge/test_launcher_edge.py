"""The launcher starts the REST edge after the gateway, publishes it, and stops it first.

The gateway is played by tests/cli/fake_service.py (it serves gRPC health for
GatewayService, which is all the edge's /healthz asks); the edge is the real
``python -m gateway.edge`` process.
"""

from __future__ import annotations

import io
import socket
from pathlib import Path

import httpx
import pytest

from cli import discovery, up
from cli.launcher import REPO_ROOT, Mesh, MeshError, Started
from cli.main import main
from cli.ports import free_base_port
from runtime import mesh
from tests.cli.fakes import FAKE_MODULE

pytestmark = pytest.mark.mesh


def _mesh(run_dir: Path, **edge_env: str) -> Mesh:
    return Mesh(
        run_dir=run_dir,
        base_port=free_base_port(len(mesh.SERVICES) + 1),
        services=["gateway"],
        env={"PYTHONPATH": str(REPO_ROOT), "WAYBILL_DRAIN_S": "0"},
        per_service_env={"gateway": {"FAKE_SERVICE_NAME": "gateway"}, "edge": edge_env},
        modules={"gateway": FAKE_MODULE},
        edge=True,
    )


def test_edge_starts_after_the_gateway_and_is_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _mesh(tmp_path)
    started: list[Started] = []
    m.start(on_ready=started.append)
    try:
        assert [s.name for s in started] == ["gateway", "edge"]
        assert m.edge_address == started[1].address
        assert m.edge_url == f"http://{m.edge_address}/"
        assert m.addresses == {s.name: m.addresses[s.name] for s in mesh.SERVICES}, (
            "gRPC addresses stay gRPC only"
        )
        info = discovery.load(tmp_path)
        assert info.edge is not None
        assert (info.edge.address, info.edge.pid) == (m.edge_address, m.pid("edge"))
        health = httpx.get(f"{m.edge_url}healthz", timeout=5).json()
        assert health["status"] == "SERVING"
        assert health["demo_credentials"]["enabled"] is True
        assert main(["health", "--run-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "GET /healthz" in out
        assert "3/3 SERVING" in out
        summary = io.StringIO()
        up._summary(m, summary)
        assert f"chat page: http://{m.edge_address}/" in summary.getvalue()
    finally:
        codes = m.stop()
    assert codes == {"gateway": 0, "edge": 0}
    assert not discovery.mesh_file(tmp_path).exists()


def test_health_fails_when_the_edge_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _mesh(tmp_path)
    m.start()
    try:
        m.kill("edge")
        assert main(["health", "--run-dir", str(tmp_path), "--timeout", "2"]) == 1
        assert "UNREACHABLE" in capsys.readouterr().out
        m.restart("edge")
        assert main(["health", "--run-dir", str(tmp_path)]) == 0
    finally:
        m.stop()


def test_edge_with_bad_settings_fails_the_start(tmp_path: Path) -> None:
    m = _mesh(tmp_path, WAYBILL_EDGE_MAX_BODY_BYTES="1")
    with pytest.raises(MeshError, match="edge exited with status 1") as raised:
        m.start()
    assert "WAYBILL_EDGE_MAX_BODY_BYTES=1 is below the minimum" in raised.value.log_tail
    assert m.poll() == {}, "what had started was stopped"


def test_edge_port_in_use_names_the_variable(tmp_path: Path) -> None:
    m = _mesh(tmp_path)
    assert m.edge_address is not None
    host, _, port = m.edge_address.rpartition(":")
    with socket.socket() as holder:
        holder.bind((host, int(port)))
        holder.listen()
        with pytest.raises(MeshError, match="WAYBILL_EDGE_ADDR"):
            m.start()


def test_edge_is_opt_in_for_the_mesh_class(tmp_path: Path) -> None:
    m = Mesh(run_dir=tmp_path, base_port=30000)
    assert m.edge_address is None
    assert m.edge_url is None
    with_edge = Mesh(run_dir=tmp_path, base_port=30000, edge=True)
    assert with_edge.edge_address == f"127.0.0.1:{30000 + len(mesh.SERVICES)}"
    env = with_edge.child_env("edge")
    assert env["WAYBILL_EDGE_ADDR"] == with_edge.edge_address
    assert env["WAYBILL_EDGE_DEMO_CREDENTIALS"] == str(with_edge.credentials_path)
    assert env["WAYBILL_GATEWAY_ADDR"] == with_edge.addresses["gateway"]
    assert env["WAYBILL_EDGE_DEMO_SIGNING_KEY"] == str(with_edge.demo_keys.private_key)
    assert env["WAYBILL_JWT_ISSUER"] == with_edge.child_env("gateway")["WAYBILL_JWT_ISSUER"]
    assert "WAYBILL_EDGE_DEMO_CREDENTIALS" not in with_edge.child_env("gateway")
    assert "WAYBILL_EDGE_DEMO_SIGNING_KEY" not in with_edge.child_env("gateway")
