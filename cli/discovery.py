"""The ``mesh.json`` file through which a running mesh can be found.

``waybill up`` writes it once every service is SERVING; ``health``,
``services`` and ``chat`` read it. Without one, the mesh table defaults apply.
It holds addresses, pids and file paths only, never keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import mesh

MESH_FILE = "mesh.json"
CREDENTIALS_FILE = "credentials.json"
DEFAULT_RUN_DIR = Path(".waybill")


class DiscoveryError(RuntimeError):
    """``mesh.json`` exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One running service as recorded in ``mesh.json``."""

    address: str
    pid: int | None
    log: str | None


@dataclass(frozen=True, slots=True)
class MeshInfo:
    """What is known about the mesh of one run directory."""

    services: dict[str, ServiceEntry]
    """Services by name, in start order."""
    credentials: Path
    """The credentials file of the run."""
    from_file: bool
    """Whether it came from ``mesh.json`` (False: mesh table defaults)."""
    launcher_pid: int | None = None
    """Pid of the ``waybill up`` process that wrote the file."""
    edge: ServiceEntry | None = None
    """The REST edge (HTTP, so not among ``services``), when the launcher started one."""

    def addresses(self) -> dict[str, str]:
        """Service name -> ``host:port``."""
        return {name: entry.address for name, entry in self.services.items()}


def mesh_file(run_dir: Path) -> Path:
    """Where a run directory keeps its ``mesh.json``."""
    return run_dir / MESH_FILE


def write(
    run_dir: Path,
    services: dict[str, ServiceEntry],
    credentials: Path,
    *,
    launcher_pid: int | None = None,
    edge: ServiceEntry | None = None,
) -> Path:
    """Write ``mesh.json`` atomically (readers never see half a file)."""
    path = mesh_file(run_dir)
    payload: dict[str, Any] = {
        "services": {
            name: {"address": e.address, "pid": e.pid, "log": e.log} for name, e in services.items()
        },
        "credentials": str(credentials),
        "launcher_pid": os.getpid() if launcher_pid is None else launcher_pid,
    }
    if edge is not None:
        payload["edge"] = {"address": edge.address, "pid": edge.pid, "log": edge.log}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def remove(run_dir: Path) -> None:
    """Remove ``mesh.json`` if present."""
    mesh_file(run_dir).unlink(missing_ok=True)


def defaults(run_dir: Path) -> MeshInfo:
    """Every service at its mesh table address (env overrides honoured)."""
    services = {
        spec.name: ServiceEntry(address=spec.address(), pid=None, log=None)
        for spec in mesh.start_order()
    }
    return MeshInfo(services=services, credentials=run_dir / CREDENTIALS_FILE, from_file=False)


def load(run_dir: Path) -> MeshInfo:
    """The mesh of ``run_dir``: from ``mesh.json`` if present, else the defaults."""
    path = mesh_file(run_dir)
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return defaults(run_dir)
    try:
        data = json.loads(raw)
        services = {
            str(name): ServiceEntry(
                address=str(item["address"]),
                pid=int(item["pid"]) if item.get("pid") is not None else None,
                log=str(item["log"]) if item.get("log") is not None else None,
            )
            for name, item in data["services"].items()
        }
        credentials = Path(data.get("credentials") or run_dir / CREDENTIALS_FILE)
        launcher = data.get("launcher_pid")
        raw_edge = data.get("edge")
        edge = (
            ServiceEntry(
                address=str(raw_edge["address"]),
                pid=int(raw_edge["pid"]) if raw_edge.get("pid") is not None else None,
                log=str(raw_edge["log"]) if raw_edge.get("log") is not None else None,
            )
            if raw_edge is not None
            else None
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DiscoveryError(f"{path} is not a valid mesh file: {exc}") from None
    return MeshInfo(
        services=services,
        credentials=credentials,
        from_file=True,
        launcher_pid=int(launcher) if launcher is not None else None,
        edge=edge,
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
