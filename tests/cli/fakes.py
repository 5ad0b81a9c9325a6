"""Helpers shared by the launcher tests: a Mesh of stand-in service processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from cli import discovery
from cli.launcher import REPO_ROOT, Mesh, RestartPolicy
from cli.ports import free_base_port
from runtime import mesh

FAKE_MODULE = "tests.cli.fake_service"
T = TypeVar("T")


def fake_mesh(
    run_dir: Path,
    names: Sequence[str],
    *,
    extra_env: Mapping[str, Mapping[str, str]] | None = None,
    base_port: int | None = None,
    restart: RestartPolicy | None = None,
) -> Mesh:
    """A Mesh of ``names`` where each service runs tests/cli/fake_service.py."""
    per_service = {n: {"FAKE_SERVICE_NAME": n, **(extra_env or {}).get(n, {})} for n in names}
    return Mesh(
        run_dir=run_dir,
        base_port=free_base_port(len(mesh.SERVICES)) if base_port is None else base_port,
        services=names,
        # The repo root makes `tests.cli.fake_service` importable in the child.
        env={"PYTHONPATH": str(REPO_ROOT), "WAYBILL_DRAIN_S": "0"},
        per_service_env=per_service,
        modules=dict.fromkeys(names, FAKE_MODULE),
        restart=restart,
    )


def wait_for(path: Path, timeout_s: float) -> None:
    """Wait until ``path`` exists (a bound on a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout_s}s")
        time.sleep(0.05)


def eventually(condition: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll ``condition`` until it returns a truthy value; that value.

    The bound is generous on purpose: it only turns a hang into a failure.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s}s")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` still exists."""
    return discovery.pid_alive(pid)
