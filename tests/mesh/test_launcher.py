"""`waybill up` starts every service, and SIGTERM leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.ports import free_base_port
from runtime import mesh

pytestmark = pytest.mark.mesh


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_then_sigterm_leaves_nothing_behind(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "up",
            "--run-dir",
            str(run_dir),
            "--base-port",
            str(free_base_port(len(mesh.SERVICES))),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    mesh_file = run_dir / "mesh.json"
    deadline = time.monotonic() + 90
    while not mesh_file.exists():
        assert up.poll() is None, up.stdout.read() if up.stdout else ""
        assert time.monotonic() < deadline, "the mesh did not come up"
        time.sleep(0.1)
    pids = [entry["pid"] for entry in json.loads(mesh_file.read_text())["services"].values()]
    assert len(pids) == len(mesh.SERVICES)
    assert all(_alive(pid) for pid in pids)
    up.send_signal(signal.SIGTERM)
    output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    for pid in pids:
        assert not _alive(pid), f"process {pid} survived the launcher"
    assert not mesh_file.exists()
