"""The ``mesh.json`` file through which a running mesh can be found.

``waybill up`` writes it once every service is SERVING, and again whenever
its supervisor restarts one (new pid, phase, restart count, last exit);
``health``, ``services`` and ``chat`` read it. Without one, the mesh table
defaults apply. It holds addresses, pids, file paths and process states only,
never keys.
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
"""The local clients' plaintext API keys (mode 0600)."""
API_KEYS_FILE = "api_keys.json"
"""The gateway's hashed API key store (mode 0600)."""
ROUTER_ADMIN_KEYS_FILE = "router-admin-keys.json"
"""The run's router admin keys, for the operator (``waybill router add-exemplars``)."""
ROUTER_ADMIN_HASHES_FILE = "router-admin-keys.sha256.json"
"""Their SHA-256 digests: the only form the router reads."""
DEFAULT_RUN_DIR = Path(".waybill")


class DiscoveryError(RuntimeError):
    """``mesh.json`` exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One running service as recorded in ``mesh.json``."""

    address: str
    pid: int | None
    log: str | None
    state: str | None = None
    """The supervisor's phase (``serving``, ``starting``, ``backoff``, ``crash-loop``)."""
    restarts: int = 0
    """How often the supervisor restarted it."""
    last_exit: int | None = None
    """Exit status of its last process to end (negative: killed by that signal)."""

    def to_json(self) -> dict[str, Any]:
        """The entry as ``mesh.json`` stores it."""
        return {
            "address": self.address,
            "pid": self.pid,
            "log": self.log,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }

    @classmethod
    def from_json(cls, item: Any) -> ServiceEntry:
        """Parse one stored entry; files without the supervision fields still load."""
        return cls(
            address=str(item["address"]),
            pid=int(item["pid"]) if item.get("pid") is not None else None,
            log=str(item["log"]) if item.get("log") is not None else None,
            state=str(item["state"]) if item.get("state") is not None else None,
            restarts=int(item.get("restarts") or 0),
            last_exit=int(item["last_exit"]) if item.get("last_exit") is not None else None,
        )


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
    supervised: bool = False
    """Whether the launcher restarts services that exit."""

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
    supervised: bool = False,
) -> Path:
    """Write ``mesh.json`` atomically (readers never see half a file).

    Callers in one process serialise their writes (the launcher holds its lock).
    """
    path = mesh_file(run_dir)
    payload: dict[str, Any] = {
        "services": {name: e.to_json() for name, e in services.items()},
        "credentials": str(credentials),
        "launcher_pid": os.getpid() if launcher_pid is None else launcher_pid,
        "supervised": supervised,
    }
    if edge is not None:
        payload["edge"] = edge.to_json()
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
            str(name): ServiceEntry.from_json(item) for name, item in data["services"].items()
        }
        credentials = Path(data.get("credentials") or run_dir / CREDENTIALS_FILE)
        launcher = data.get("launcher_pid")
        raw_edge = data.get("edge")
        edge = ServiceEntry.from_json(raw_edge) if raw_edge is not None else None
        supervised = bool(data.get("supervised", False))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DiscoveryError(f"{path} is not a valid mesh file: {exc}") from None
    return MeshInfo(
        services=services,
        credentials=credentials,
        from_file=True,
        launcher_pid=int(launcher) if launcher is not None else None,
        edge=edge,
        supervised=supervised,
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
