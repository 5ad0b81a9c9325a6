"""Mesh start, readiness, stop, kill and restart with stand-in service processes."""

from __future__ import annotations

import json
import signal
import socket
import stat
import threading
from pathlib import Path

import pytest

from cli import discovery, probe
from cli.launcher import Mesh, MeshError, StartCancelled, Started
from runtime import credentials
from tests.cli.fake_service import CRASH_MARKER
from tests.cli.fakes import alive, fake_mesh


def _log_ts(path: Path, msg: str) -> str:
    """Timestamp of the last JSON log line of ``path`` whose msg is ``msg``."""
    found = [
        entry["ts"]
        for line in path.read_text().splitlines()
        if line.startswith("{") and (entry := json.loads(line))["msg"] == msg
    ]
    assert found, f"no {msg!r} line in {path}"
    return str(found[-1])


def test_start_and_stop(tmp_path: Path) -> None:
    m = fake_mesh(tmp_path, ["tracking", "orders"])
    ready: list[Started] = []
    m.start(on_ready=ready.append)
    try:
        assert [s.name for s in ready] == ["orders", "tracking"]
        info = discovery.load(tmp_path)
        assert info.from_file
        assert info.addresses() == {n: m.addresses[n] for n in ("orders", "tracking")}
        assert info.services["orders"].pid == m.pid("orders")
        assert info.services["orders"].log == str(tmp_path / "logs" / "orders.log")
        assert info.credentials == tmp_path / "credentials.json"
        keys = credentials.load(info.credentials)
        assert {k.principal.tenant_id for k in keys} == {"acme-retail", "globex-home"}
        assert stat.S_IMODE(info.credentials.stat().st_mode) == 0o600
        # The gateway's store beside it holds digests only.
        store = (tmp_path / "api_keys.json").read_text()
        assert stat.S_IMODE((tmp_path / "api_keys.json").stat().st_mode) == 0o600
        assert not any(k.api_key in store for k in keys)
        health = probe.check_health(
            m.addresses["orders"], ["", "waybill.orders.v1.OrdersService"], 5.0
        )
        assert set(health.values()) == {"SERVING"}
        pids = [m.pid("orders"), m.pid("tracking")]
    finally:
        codes = m.stop()
    assert codes == {"orders": 0, "tracking": 0}
    assert not any(alive(pid) for pid in pids)
    assert not (tmp_path / "mesh.json").exists()
    # tracking calls orders, so it is stopped first.
    logs = tmp_path / "logs"
    assert _log_ts(logs / "orders.log", "stopping") >= _log_ts(logs / "tracking.log", "stopped")


def test_context_manager(tmp_path: Path) -> None:
    with fake_mesh(tmp_path, ["orders"]) as m:
        pid = m.pid("orders")
        assert alive(pid)
    assert not alive(pid)
    with pytest.raises(KeyError, match="not running"):
        m.pid("orders")


def test_crash_at_start_reports_the_log_and_stops_the_rest(tmp_path: Path) -> None:
    m = fake_mesh(tmp_path, ["orders", "tracking"], extra_env={"tracking": {"FAKE_CRASH": "1"}})
    ready: list[Started] = []
    with pytest.raises(MeshError) as exc:
        m.start(on_ready=ready.append)
    assert exc.value.service == "tracking"
    assert "tracking exited with status 3" in str(exc.value)
    assert CRASH_MARKER in exc.value.log_tail
    assert [s.name for s in ready] == ["orders"]
    assert not alive(ready[0].pid)
    assert not (tmp_path / "mesh.json").exists()


def test_start_timeout(tmp_path: Path) -> None:
    m = fake_mesh(tmp_path, ["orders"], extra_env={"orders": {"FAKE_READY_DELAY_S": "60"}})
    with pytest.raises(MeshError, match="not SERVING") as exc:
        m.start(timeout_s=2.0)
    assert "NOT_SERVING" in str(exc.value)
    assert m.poll() == {}


def test_port_in_use(tmp_path: Path) -> None:
    m = fake_mesh(tmp_path, ["orders"])
    host, port = m.addresses["orders"].rsplit(":", 1)
    with socket.socket() as squatter:
        squatter.bind((host, int(port)))
        squatter.listen()
        with pytest.raises(MeshError, match="already in use"):
            m.start()


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    m = fake_mesh(tmp_path, ["orders"], extra_env={"orders": {"FAKE_IGNORE_SIGTERM": "1"}})
    m.start()
    pid = m.pid("orders")
    codes = m.stop(timeout_s=1.0)
    assert codes == {"orders": -signal.SIGKILL}
    assert not alive(pid)


def test_kill_and_restart(tmp_path: Path) -> None:
    with fake_mesh(tmp_path, ["orders", "tracking"]) as m:
        first = m.pid("orders")
        m.kill("orders")
        assert m.poll() == {"orders": -signal.SIGKILL}
        m.restart("orders")
        second = m.pid("orders")
        assert second != first
        assert m.poll() == {}
        assert discovery.load(tmp_path).services["orders"].pid == second
        health = probe.check_health(m.addresses["orders"], [""], 5.0)
        assert health == {"": "SERVING"}
        # A restart of a running service stops it first.
        m.restart("tracking")
        assert m.poll() == {}
    log = (tmp_path / "logs" / "orders.log").read_text()
    assert log.count("--- waybill: starting orders") == 2


def test_restart_unknown_service(tmp_path: Path) -> None:
    m = Mesh(run_dir=tmp_path, services=["orders"])
    with pytest.raises(KeyError, match="not part of this mesh"):
        m.restart("gateway")


def test_start_twice_is_refused(tmp_path: Path) -> None:
    with fake_mesh(tmp_path, ["orders"]) as m, pytest.raises(MeshError, match="already started"):
        m.start()


def test_cancelled_start_spawns_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    m = fake_mesh(tmp_path, ["orders"])
    with pytest.raises(StartCancelled):
        m.start(cancel=cancel)
    assert m.poll() == {}
    assert not (tmp_path / "logs" / "orders.log").exists()
