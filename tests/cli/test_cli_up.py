"""The foreground ``waybill up`` (with stand-in services), ``health`` and ``services``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import discovery, up
from cli.launcher import REPO_ROOT
from cli.main import main
from cli.ports import free_base_port
from runtime import mesh
from tests.cli.fakes import alive, eventually, fake_mesh, wait_for


@dataclass
class Launcher:
    """A running ``up_harness`` process and where its output goes."""

    process: subprocess.Popen[bytes]
    run_dir: Path
    stdout: Path
    stderr: Path

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()


def _spawn(tmp_path: Path, *args: str, **extra_env: str) -> Launcher:
    """Start ``tests.cli.up_harness`` (``waybill up`` over stand-ins) in the background."""
    run_dir = tmp_path / "run"
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    path = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "gen")])
    env = {**os.environ, "PYTHONPATH": path, **extra_env}
    base = free_base_port(len(mesh.SERVICES))
    with out.open("wb") as fo, err.open("wb") as fe:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli.up_harness", str(run_dir), str(base), *args],
            stdout=fo,
            stderr=fe,
            env=env,
            cwd=REPO_ROOT,
        )
    return Launcher(process, run_dir, out, err)


def _reap(launcher: Launcher) -> None:
    if launcher.process.poll() is None:
        launcher.process.send_signal(signal.SIGTERM)
        launcher.process.wait(30)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    running = _spawn(tmp_path)
    try:
        wait_for(discovery.mesh_file(running.run_dir), 60.0)
        yield running
    finally:
        _reap(running)


def test_up_health_services_and_ctrl_c(
    launcher: Launcher, capsys: pytest.CaptureFixture[str]
) -> None:
    info = discovery.load(launcher.run_dir)
    pids = [e.pid for e in info.services.values()]
    assert set(info.services) == {"orders", "tracking"}

    assert main(["health", "--run-dir", str(launcher.run_dir)]) == 0
    table = capsys.readouterr().out
    assert "waybill.orders.v1.OrdersService" in table
    assert "4/4 SERVING" in table

    assert main(["services", "--run-dir", str(launcher.run_dir), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "waybill.orders.v1.OrdersService" in listed["orders"]["services"]
    assert "grpc.health.v1.Health" in listed["tracking"]["services"]

    launcher.process.send_signal(signal.SIGINT)
    assert launcher.process.wait(30) == 0
    out, _ = launcher.output()
    assert "SERVING  orders" in out
    assert "chat: .venv/bin/waybill chat" in out
    assert "stopped 2 services cleanly" in out
    assert not any(alive(pid) for pid in pids if pid is not None)
    assert not discovery.mesh_file(launcher.run_dir).exists()


def _restarted(run_dir: Path, name: str, old_pid: int) -> discovery.ServiceEntry | None:
    """The run file's entry of ``name`` once a new process of it is SERVING."""
    entry = discovery.load(run_dir).services[name]
    return entry if entry.pid != old_pid and entry.state == "serving" else None


def test_up_restarts_a_killed_service_and_health_counts_it(
    launcher: Launcher, capsys: pytest.CaptureFixture[str]
) -> None:
    info = discovery.load(launcher.run_dir)
    assert info.supervised
    tracking, orders = info.services["tracking"].pid, info.services["orders"].pid
    assert tracking is not None
    assert orders is not None
    os.kill(tracking, signal.SIGKILL)
    entry = eventually(lambda: _restarted(launcher.run_dir, "tracking", tracking), 60, "restart")
    assert (entry.restarts, entry.last_exit) == (1, -signal.SIGKILL)
    assert entry.pid is not None
    assert alive(entry.pid)
    assert discovery.load(launcher.run_dir).services["orders"].pid == orders
    assert alive(orders), "the other service kept running"

    assert main(["health", "--run-dir", str(launcher.run_dir)]) == 0
    table = capsys.readouterr().out
    assert "restarts" in table
    (row,) = [
        line for line in table.splitlines() if line.startswith("tracking") and "(server)" in line
    ]
    assert row.split()[-2:] == ["1", "SIGKILL"]

    # The restart is announced once, then its recovery; the launcher keeps running.
    out = eventually(lambda: _has(launcher, "SERVING     tracking"), 30, "recovery line")
    (restart_line,) = [line for line in out.splitlines() if "RESTART" in line]
    assert "tracking" in restart_line
    assert "exited (SIGKILL)" in restart_line
    assert "restart 1 in 0.1 s" in restart_line
    assert launcher.process.poll() is None

    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.process.wait(30) == 0
    assert not alive(entry.pid)
    assert not alive(orders)


def _has(launcher: Launcher, text: str) -> str | None:
    out, _ = launcher.output()
    return out if text in out else None


def test_up_without_restart_stops_everything_when_a_service_dies(tmp_path: Path) -> None:
    running = _spawn(tmp_path, "--no-restart")
    try:
        wait_for(discovery.mesh_file(running.run_dir), 60.0)
        info = discovery.load(running.run_dir)
        assert not info.supervised
        tracking, orders = info.services["tracking"].pid, info.services["orders"].pid
        assert tracking is not None
        assert orders is not None
        os.kill(tracking, signal.SIGKILL)
        assert running.process.wait(30) == 1
    finally:
        _reap(running)
    _, err = running.output()
    assert "tracking exited unexpectedly" in err
    assert not alive(orders)


def test_health_names_a_crash_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"127.0.0.1:{free_base_port(1)}"
    entry = discovery.ServiceEntry(dead, None, "/x/orders.log", "crash-loop", 7, 3)
    discovery.write(tmp_path, {"orders": entry}, tmp_path / "c.json", supervised=True)
    assert main(["health", "--run-dir", str(tmp_path), "--timeout", "2"]) == 1
    out = capsys.readouterr().out
    assert "orders is in a crash loop: 7 restarts, last exit status 3; see /x/orders.log" in out
    (row,) = [line for line in out.splitlines() if line.startswith("orders") and "(server)" in line]
    assert row.split()[-3:] == ["7", "status", "3"]


def test_health_fails_when_a_service_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"127.0.0.1:{free_base_port(1)}"
    discovery.write(
        tmp_path, {"orders": discovery.ServiceEntry(dead, None, None)}, tmp_path / "c.json"
    )
    assert main(["health", "--run-dir", str(tmp_path), "--timeout", "2"]) == 1
    assert "UNREACHABLE: UNAVAILABLE" in capsys.readouterr().out
    assert main(["services", "--run-dir", str(tmp_path), "--timeout", "2"]) == 1
    assert "unreachable: UNAVAILABLE" in capsys.readouterr().out


def test_corrupt_mesh_file_is_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    discovery.mesh_file(tmp_path).write_text("{not json")
    assert main(["health", "--run-dir", str(tmp_path)]) == 1
    assert "not a valid mesh file" in capsys.readouterr().err


def test_up_refuses_a_run_dir_in_use(tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        discovery.write(tmp_path, {}, tmp_path / "c.json", launcher_pid=owner.pid)
        err = io.StringIO()
        m = fake_mesh(tmp_path, ["orders"])
        assert up.run(m, timeout_s=10, out=io.StringIO(), err=err) == 1
        assert "already runs" in err.getvalue()
        assert m.poll() == {}
    finally:
        owner.kill()
        owner.wait()


def test_ctrl_c_while_starting_leaves_nothing_behind(tmp_path: Path) -> None:
    # Every stand-in stays NOT_SERVING, so the launcher is still starting orders.
    running = _spawn(tmp_path, FAKE_READY_DELAY_S="60")
    try:
        log = running.run_dir / "logs" / "orders.log"
        wait_for(log, 60.0)
        pid = _pid_of_first_child(running)
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(30) == 0
    finally:
        _reap(running)
    out, _ = running.output()
    assert "SIGINT while starting" in out
    assert not alive(pid)
    assert not discovery.mesh_file(running.run_dir).exists()


def _pid_of_first_child(running: Launcher) -> int:
    """Pid of the launcher's child (orders), read from /proc (bounded wait)."""
    children = Path(f"/proc/{running.process.pid}/task/{running.process.pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = children.read_text().split()
        if found:
            return int(found[0])
        time.sleep(0.05)
    raise TimeoutError("the launcher started no child")
