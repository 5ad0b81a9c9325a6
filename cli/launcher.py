"""Starting, supervising and stopping the service processes of a mesh.

Used by ``waybill up`` and by the test suite, so it is synchronous and owns
every process it starts: ``stop()`` (or leaving the ``with`` block) returns
only once each child has exited, by SIGTERM if it drains in time, else by
SIGKILL.

With ``restart=RestartPolicy()`` (what ``waybill up`` uses) a supervisor
thread restarts any child that exits while the mesh is up, with exponential
backoff, as Kubernetes restarts a pod's container; the others keep serving.
Without it (the default for tests that kill a service and watch the failure)
a dead child stays dead until ``restart()``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from grpc_health.v1 import health_pb2_grpc

from cli import discovery, probe
from cli.http_probe import check_http
from cli.ports import free_base_port
from cli.supervision import Phase, RestartPolicy, Tracker, describe_exit
from gateway import demo_tokens, local_keys
from gateway.edge.settings import OPS_METRICS_ENV, OPS_TENANTS_ENV
from gateway.settings import (
    API_KEYS_ENV,
    AUDIENCE_ENV,
    ISSUER_ENV,
    JWKS_ENV,
    MODEL_API_ENV,
)
from router import admin_keys
from runtime import mesh, paths

__all__ = [
    "TENANTS",
    "Event",
    "EventKind",
    "Mesh",
    "MeshError",
    "Phase",
    "RestartPolicy",
    "ServiceState",
    "StartCancelled",
    "Started",
    "describe_exit",
    "free_base_port",
]

REPO_ROOT = paths.repo_root()
"""Checkout root: children import from it and from ``gen`` under it."""
TENANTS = ("acme-retail", "globex-home")
"""Tenants that get an API key in a fresh run directory."""
POLL_S = 0.05
LOG_TAIL_LINES = 20
ABORT_STOP_S = 5.0
"""Grace for the services already started when a start fails."""
# Reading the whole log for a tail would be slow after a long run.
_TAIL_BYTES = 64 * 1024
# Once SIGKILL is sent the kernel ends the process at once; this only bounds reaping.
_REAP_S = 5.0
# One readiness probe of a restarted child; the supervisor probes again next tick.
_PROBE_S = 0.5


def _metrics_port_env(name: str) -> str:
    """The variable that sets service ``name``'s metrics port (runtime.settings)."""
    return f"WAYBILL_{name.upper()}_METRICS_PORT"


class MeshError(RuntimeError):
    """A service failed to start, or the mesh was used out of order."""

    def __init__(self, message: str, *, service: str | None = None, log_tail: str = "") -> None:
        full = f"{message}\n--- last lines of its log ---\n{log_tail}" if log_tail else message
        super().__init__(full)
        self.service = service
        self.log_tail = log_tail


class StartCancelled(MeshError):
    """The ``cancel`` event of ``start()`` was set (Ctrl-C in ``waybill up``)."""


@dataclass(frozen=True, slots=True)
class Started:
    """A service that became SERVING during ``start()``."""

    name: str
    address: str
    pid: int
    elapsed_s: float
    """Seconds from spawning the process to SERVING."""


class EventKind(StrEnum):
    """What the supervisor did or saw."""

    EXITED = "exited"
    """A child ended while the mesh was up; a restart is scheduled."""
    RESTARTED = "restarted"
    """A new process was spawned in its place."""
    SERVING = "serving"
    """The restarted process is SERVING again."""
    SPAWN_FAILED = "spawn-failed"
    """The restart could not spawn a process (port taken, ...); retried after backoff."""
    UNREADY = "unready"
    """A restarted process stayed unready past the policy's ready timeout and was killed."""


@dataclass(frozen=True, slots=True)
class Event:
    """One supervision event, as ``start(on_event=...)`` hears it (on the supervisor thread)."""

    kind: EventKind
    name: str
    pid: int | None
    """The process concerned (the dead one for EXITED, the new one otherwise)."""
    restarts: int
    """Restarts of this service so far."""
    last_exit: int | None
    """Exit status of its last process (negative: the signal that killed it)."""
    delay_s: float | None = None
    """EXITED, SPAWN_FAILED: seconds until the restart."""
    crash_loop: bool = False
    """EXITED, SPAWN_FAILED, UNREADY: it has failed ``crash_loop_after`` times in a row."""
    down_s: float | None = None
    """SERVING: seconds from the exit that began the outage."""
    detail: str = ""
    """The log tail when a crash loop begins; the error of a failed spawn."""


@dataclass(frozen=True, slots=True)
class ServiceState:
    """A snapshot of one child and its restart bookkeeping."""

    name: str
    pid: int
    phase: Phase
    restarts: int
    last_exit: int | None


@dataclass(slots=True)
class _Child:
    process: subprocess.Popen[bytes]
    log_offset: int
    """Where this run's output starts in the (appended) log file."""


def _host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _port_taken(address: str) -> bool:
    """Whether something already listens on ``address``.

    Without this a stale process on the port would answer the readiness probe
    while the new child fails to bind. SO_REUSEADDR, as gRPC servers use it,
    so that a port left in TIME_WAIT by a restart does not count as taken.
    """
    parsed = _host_port(address)
    if parsed is None:
        return False
    host, port = parsed
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _kill_group(pid: int) -> None:
    """SIGKILL the child's process group (start_new_session made it the leader)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Mesh:
    """The service processes of one run directory.

    ``services`` picks a subset (default: all), always started in
    ``mesh.start_order()``. ``modules`` maps a service name to another module
    to run in its place (tests use a stand-in). Each child's environment is
    the parent's, then ``env``, then the launcher's own values (every
    ``WAYBILL_<NAME>_ADDR``, the data dir; for the gateway the hashed key store
    and the demo token issuer), then
    ``per_service_env[name]``; its own address and ``PYTHONPATH``
    (``src`` and ``gen`` first) are always the launcher's.

    ``edge=True`` also starts the REST edge (``mesh.EDGE``, HTTP) once the
    gateway is SERVING and waits for its ``/healthz``. It gets the run's
    local clients' keys as demo credentials and the demo token signing key:
    this launcher is the embedded default, on loopback. With ``base_port`` it listens on ``base +
    len(SERVICES)``. It is a child like the others (``pid``, ``poll``,
    ``stop``, ``log_path``) but not one of ``names``/``addresses``, which
    list gRPC services only.

    ``restart`` turns supervision on once ``start()`` has succeeded: every
    child that exits is restarted by that policy (see ``cli.supervision``),
    each event is handed to ``start(on_event=...)``, and the run file carries
    each service's phase, restart count and last exit. ``kill()`` then acts
    as a crash would; ``restart()`` takes the service out of the supervisor's
    hands while it restarts it.
    """

    def __init__(
        self,
        *,
        run_dir: Path,
        base_port: int | None = None,
        services: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        per_service_env: Mapping[str, Mapping[str, str]] | None = None,
        python: str = sys.executable,
        modules: Mapping[str, str] | None = None,
        edge: bool = False,
        restart: RestartPolicy | None = None,
    ) -> None:
        self.run_dir = Path(run_dir).absolute()
        self.credentials_path = self.run_dir / discovery.CREDENTIALS_FILE
        """The local clients' API keys (plaintext, mode 0600); never read by the gateway."""
        self.api_keys_path = self.run_dir / discovery.API_KEYS_FILE
        """The gateway's key store (digests only, mode 0600): what ``waybill keys`` changes."""
        self.demo_keys = demo_tokens.DemoKeyFiles(
            self.run_dir / demo_tokens.PRIVATE_KEY_FILE, self.run_dir / demo_tokens.JWKS_FILE
        )
        """The demo token key pair: the edge signs, the gateway trusts the public half."""
        self.router_admin_keys_path = self.run_dir / discovery.ROUTER_ADMIN_KEYS_FILE
        """The router admin keys (plaintext, mode 0600), for the operator only."""
        self.router_admin_hashes_path = self.run_dir / discovery.ROUTER_ADMIN_HASHES_FILE
        """Their digests (mode 0600): the file the router is pointed at."""
        self.data_dir = self.run_dir / "data"
        self.logs_dir = self.run_dir / "logs"
        self._env = dict(env or {})
        self._per_service_env = {k: dict(v) for k, v in (per_service_env or {}).items()}
        self._python = python
        self._modules = dict(modules or {})
        for name in (*self._per_service_env, *self._modules):
            if name != mesh.EDGE.name:
                mesh.spec(name)  # KeyError naming the known services
        wanted = set(mesh.BY_NAME if services is None else services)
        for name in wanted:
            mesh.spec(name)
        self.specs: list[mesh.ServiceSpec] = [s for s in mesh.start_order() if s.name in wanted]
        self.addresses: dict[str, str] = self._addresses(base_port)
        self.edge_address: str | None = self._edge_address(base_port) if edge else None
        """The REST edge's ``host:port``; None when this mesh runs no edge."""
        self.metrics_addresses: dict[str, str] = self._metrics_addresses() if edge else {}
        """Each service's Prometheus ``/metrics`` ``host:port`` that the edge's ops page reads
        (with an edge only; a ``WAYBILL_<NAME>_METRICS_PORT`` given in ``env`` or
        ``per_service_env`` is kept)."""
        self.model_api_address: str | None = self._model_api_address(edge)
        """The gateway's OpenAI-compatible model API ``host:port`` (with an edge, or when
        ``env`` names one with ``WAYBILL_MODEL_API_ADDRESS``); None: not served."""
        self._children: dict[str, _Child] = {}
        self._published = False
        self._policy = restart
        self._trackers: dict[str, Tracker] = {}
        # Guards _children, _trackers, _held and the run file between the
        # supervisor thread and the caller's thread (stop, kill, restart).
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._held: set[str] = set()
        """Services a caller's ``restart()`` is handling; the supervisor leaves them alone."""
        self._supervisor: threading.Thread | None = None
        self._on_event: Callable[[Event], None] | None = None

    def _addresses(self, base_port: int | None) -> dict[str, str]:
        if base_port is None:
            # The mesh table defaults, with WAYBILL_*_ADDR overrides as services read them.
            merged = {**os.environ, **self._env}
            return {s.name: s.address(merged) for s in mesh.SERVICES}
        found = {s.name: f"127.0.0.1:{base_port + i}" for i, s in enumerate(mesh.SERVICES)}
        for s in mesh.SERVICES:
            if self._env.get(s.env_var):
                found[s.name] = self._env[s.env_var]
        return found

    def _edge_address(self, base_port: int | None) -> str:
        if self._env.get(mesh.EDGE.env_var) or base_port is None:
            return mesh.EDGE.address({**os.environ, **self._env})
        return f"127.0.0.1:{base_port + len(mesh.SERVICES)}"

    def _metrics_addresses(self) -> dict[str, str]:
        taken = {int(a.rpartition(":")[2]) for a in self.addresses.values()}
        if self.edge_address is not None:
            taken.add(int(self.edge_address.rpartition(":")[2]))
        while True:
            base = free_base_port(len(self.specs))
            ports = range(base, base + len(self.specs))
            if taken.isdisjoint(ports):
                break
        found: dict[str, str] = {}
        for spec, port in zip(self.specs, ports, strict=True):
            variable = _metrics_port_env(spec.name)
            given = self._per_service_env.get(spec.name, {}).get(variable) or self._env.get(
                variable
            )
            found[spec.name] = f"127.0.0.1:{given or port}"
        return found

    def _model_api_address(self, edge: bool) -> str | None:
        given = self._per_service_env.get("gateway", {}).get(MODEL_API_ENV) or self._env.get(
            MODEL_API_ENV
        )
        if given or not edge:
            return given or None
        taken = {int(a.rpartition(":")[2]) for a in self.addresses.values()}
        taken.update(int(a.rpartition(":")[2]) for a in self.metrics_addresses.values())
        if self.edge_address is not None:
            taken.add(int(self.edge_address.rpartition(":")[2]))
        while (port := free_base_port(1)) in taken:
            pass
        return f"127.0.0.1:{port}"

    @property
    def model_api_url(self) -> str | None:
        """The model API's base URL (``…/v1``), when the gateway serves it."""
        if self.model_api_address is None:
            return None
        host, _, port = self.model_api_address.rpartition(":")
        return f"http://{host}:{port}/v1"

    @property
    def ops_url(self) -> str | None:
        """The ops page's address, when this mesh runs an edge."""
        return None if self.edge_url is None else self.edge_url + "ops"

    @property
    def edge_url(self) -> str | None:
        """The chat page's address, when this mesh runs an edge."""
        if self.edge_address is None:
            return None
        host, _, port = self.edge_address.rpartition(":")
        return f"http://{host}:{port}/"

    def _address(self, name: str) -> str:
        if name == mesh.EDGE.name:
            if self.edge_address is None:
                raise KeyError("this mesh runs no edge (Mesh(edge=True) starts one)")
            return self.edge_address
        return self.addresses[name]

    @staticmethod
    def _depends_on(name: str) -> tuple[str, ...]:
        return mesh.EDGE.depends_on if name == mesh.EDGE.name else mesh.spec(name).depends_on

    # -- environment and files ------------------------------------------------

    def child_env(self, name: str) -> dict[str, str]:
        """The environment service ``name`` is started with (for the router, this also
        creates the run's admin keys the first time)."""
        env = {**os.environ, **self._env}
        env.update({s.env_var: self.addresses[s.name] for s in mesh.SERVICES})
        env["WAYBILL_DATA_DIR"] = str(self.data_dir)
        # The run's pseudonym and canary key (made by the guardrails on first start).
        env.setdefault(
            "WAYBILL_PSEUDONYM_KEY_FILE", str(self.data_dir / "secrets" / "pseudonym.key")
        )
        if name in ("gateway", mesh.EDGE.name):
            # The demo token issuer: the gateway trusts its public key, the edge signs.
            env[ISSUER_ENV] = demo_tokens.DEMO_ISSUER
            env[AUDIENCE_ENV] = demo_tokens.DEMO_AUDIENCE
        if name == "gateway":
            env[API_KEYS_ENV] = str(self.api_keys_path)
            env[JWKS_ENV] = str(self.demo_keys.jwks)
            if self.model_api_address is not None:
                env[MODEL_API_ENV] = self.model_api_address
        if name == mesh.EDGE.name:
            # Only the launcher (embedded default, loopback) hands out demo credentials.
            env["WAYBILL_EDGE_DEMO_CREDENTIALS"] = str(self.credentials_path)
            env["WAYBILL_EDGE_DEMO_SIGNING_KEY"] = str(self.demo_keys.private_key)
            # The ops page reads every service's metrics and the demo tenants' costs.
            env[OPS_METRICS_ENV] = ",".join(f"{k}={v}" for k, v in self.metrics_addresses.items())
            env[OPS_TENANTS_ENV] = ",".join(TENANTS)
        elif name in self.metrics_addresses:
            env[_metrics_port_env(name)] = self.metrics_addresses[name].rpartition(":")[2]
        if name == "router":
            # One admin key per demo tenant, made on the first start of the run directory.
            admin_keys.generate(
                hashed=self.router_admin_hashes_path,
                plain=self.router_admin_keys_path,
                tenants=TENANTS,
            )
            env[admin_keys.ADMIN_KEYS_ENV] = str(self.router_admin_hashes_path)
        env.update(self._per_service_env.get(name, {}))
        if name == mesh.EDGE.name:
            env[mesh.EDGE.env_var] = self._address(name)
        else:
            env[mesh.spec(name).env_var] = self.addresses[name]
        inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "gen"), *inherited])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def module(self, name: str) -> str:
        """The module ``python -m`` runs for service ``name``."""
        if name == mesh.EDGE.name:
            return self._modules.get(name, mesh.EDGE.module)
        return self._modules.get(name, mesh.spec(name).module)

    def log_path(self, name: str) -> Path:
        """``<run_dir>/logs/<name>.log``: the child's stdout and stderr, appended."""
        return self.logs_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines the current (or last) process of ``name`` wrote."""
        child = self._children.get(name)
        path = self.log_path(name)
        try:
            with path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                start = max(child.log_offset if child else 0, size - _TAIL_BYTES)
                fh.seek(start)
                data = fh.read()
        except FileNotFoundError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    # -- processes -------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The services of this mesh, in start order."""
        return [s.name for s in self.specs]

    def pid(self, name: str) -> int:
        """Pid of the current process of ``name``."""
        return self._child(name).process.pid

    def returncode(self, name: str) -> int | None:
        """Exit status of ``name``'s process, None while it runs."""
        return self._child(name).process.poll()

    def wait_exited(self, name: str, timeout_s: float) -> int:
        """Wait for the current process of ``name`` to exit; its status.

        Raises ``subprocess.TimeoutExpired`` past ``timeout_s``. Unsupervised
        meshes only make sense here: a supervisor would start another process.
        """
        return self._child(name).process.wait(timeout_s)

    def poll(self) -> dict[str, int]:
        """Services whose process has exited, with their exit status."""
        with self._lock:
            children = dict(self._children)
        return {
            name: code
            for name, child in children.items()
            if (code := child.process.poll()) is not None
        }

    def state(self, name: str) -> ServiceState:
        """The current process of ``name`` and its restart bookkeeping."""
        with self._lock:
            child = self._child(name)
            tracker = self._trackers.get(name)
            return ServiceState(
                name=name,
                pid=child.process.pid,
                phase=tracker.phase if tracker is not None else Phase.STARTING,
                restarts=tracker.restarts if tracker is not None else 0,
                last_exit=tracker.last_exit if tracker is not None else None,
            )

    def _child(self, name: str) -> _Child:
        with self._lock:
            try:
                return self._children[name]
            except KeyError:
                raise KeyError(f"service {name!r} is not running in this mesh") from None

    def _spawn(self, name: str, *, restart: bool = False) -> None:
        # Under the lock, and never once stop() has begun: a restart racing a
        # stop must not leave a process that nobody will stop.
        with self._lock:
            if self._stopping.is_set():
                raise MeshError(f"{name}: not started, the mesh is stopping", service=name)
            address = self._address(name)
            if _port_taken(address):
                hint = (
                    f"set {mesh.EDGE.env_var} or use `waybill up --no-edge`"
                    if name == mesh.EDGE.name
                    else "a mesh still running? see `waybill health`"
                )
                raise MeshError(f"{name}: {address} is already in use ({hint})", service=name)
            path = self.log_path(name)
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            why = "restarting" if restart else "starting"
            with path.open("ab") as log:
                offset = log.tell()
                log.write(f"--- waybill: {why} {name} ({self.module(name)}) {stamp} ---\n".encode())
                log.flush()
                process = subprocess.Popen(
                    [self._python, "-m", self.module(name)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.child_env(name),
                    # Own session: a Ctrl-C in the terminal reaches only the launcher,
                    # which stops the children in dependency order itself.
                    start_new_session=True,
                )
            self._children[name] = _Child(process=process, log_offset=offset)
            tracker = self._trackers.setdefault(name, Tracker(self._policy or RestartPolicy()))
            tracker.spawned(time.monotonic(), restart=restart)

    def _still_starting(self, name: str, cancel: threading.Event | None) -> None:
        """StartCancelled once ``cancel`` is set; MeshError (with the log tail) once the
        process of ``name`` has exited."""
        if cancel is not None and cancel.is_set():
            raise StartCancelled(f"start cancelled while waiting for {name}", service=name)
        child = self._children.get(name)
        if child is not None and (code := child.process.poll()) is not None:
            raise MeshError(
                f"{name} exited with status {code} while starting",
                service=name,
                log_tail=self.log_tail(name),
            )

    def wait_serving(
        self, name: str, timeout_s: float, *, cancel: threading.Event | None = None
    ) -> None:
        """Poll health every 50 ms until "" and each gRPC service of ``name`` are SERVING.

        Raises MeshError with the log tail if the process exits first or the
        timeout passes, StartCancelled as soon as ``cancel`` is set.
        """
        spec = mesh.spec(name)
        wanted = ("", *spec.grpc_services)
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with probe.channel(self.addresses[name]) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self._still_starting(name, cancel)
                remaining = deadline - time.monotonic()
                for service in wanted:
                    last = probe.check(stub, service, min(max(remaining, 0.01), 1.0))
                    if last != probe.SERVING:
                        last = f"{service or '(server)'}: {last}"
                        break
                else:
                    return
                if time.monotonic() >= deadline:
                    raise MeshError(
                        f"{name} not SERVING at {self.addresses[name]} after {timeout_s:.1f}s"
                        f" (last: {last})",
                        service=name,
                        log_tail=self.log_tail(name),
                    )
                time.sleep(POLL_S)

    def wait_edge(self, timeout_s: float, *, cancel: threading.Event | None = None) -> None:
        """Poll the edge's ``/healthz`` every 50 ms until it answers 200.

        Raises MeshError with the log tail if the process exits first or the
        timeout passes, StartCancelled as soon as ``cancel`` is set.
        """
        name = mesh.EDGE.name
        address = self._address(name)
        deadline = time.monotonic() + timeout_s
        while True:
            self._still_starting(name, cancel)
            remaining = deadline - time.monotonic()
            last = check_http(address, mesh.EDGE.health_path, min(max(remaining, 0.01), 1.0))
            if last == probe.SERVING:
                return
            if time.monotonic() >= deadline:
                raise MeshError(
                    f"{name} not serving GET {mesh.EDGE.health_path} at {address}"
                    f" after {timeout_s:.1f}s (last: {last})",
                    service=name,
                    log_tail=self.log_tail(name),
                )
            time.sleep(POLL_S)

    def _start_edge(
        self,
        deadline: float,
        *,
        on_ready: Callable[[Started], None] | None,
        cancel: threading.Event | None,
    ) -> None:
        name = mesh.EDGE.name
        if cancel is not None and cancel.is_set():
            raise StartCancelled(f"start cancelled before {name}")
        began = time.monotonic()
        self._spawn(name)
        self.wait_edge(deadline - time.monotonic(), cancel=cancel)
        self._trackers[name].serving(time.monotonic())
        if on_ready is not None:
            on_ready(Started(name, self._address(name), self.pid(name), time.monotonic() - began))

    def start(
        self,
        timeout_s: float = 60.0,
        *,
        on_ready: Callable[[Started], None] | None = None,
        cancel: threading.Event | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        """Start every service in dependency order, each SERVING before the next.

        ``timeout_s`` bounds the whole start; ``on_ready`` hears of each
        service as it becomes SERVING; setting ``cancel`` (from a signal
        handler, say) aborts with StartCancelled at the next poll, never in
        the middle of spawning a process. On any failure the services already
        started are stopped before the error propagates: a service that
        cannot start at all is an error, not something to restart.

        With a restart policy, supervision begins once every service is up;
        ``on_event`` then hears of each exit, restart and recovery, on the
        supervisor thread (keep it short; it must not call ``stop()``).
        """
        if self._children:
            raise MeshError("mesh already started")
        for directory in (self.run_dir, self.data_dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        local_keys.ensure(store=self.api_keys_path, clients=self.credentials_path, tenants=TENANTS)
        demo_tokens.ensure_key_pair(self.run_dir)
        deadline = time.monotonic() + timeout_s
        self._stopping.clear()
        self._trackers.clear()
        self._on_event = on_event
        # A test that forgets stop() must not leave processes running.
        atexit.register(self._kill_all)
        try:
            for spec in self.specs:
                if cancel is not None and cancel.is_set():
                    raise StartCancelled(f"start cancelled before {spec.name}")
                began = time.monotonic()
                self._spawn(spec.name)
                self.wait_serving(spec.name, deadline - time.monotonic(), cancel=cancel)
                self._trackers[spec.name].serving(time.monotonic())
                if on_ready is not None:
                    on_ready(
                        Started(
                            spec.name,
                            self.addresses[spec.name],
                            self.pid(spec.name),
                            time.monotonic() - began,
                        )
                    )
            if self.edge_address is not None:
                self._start_edge(deadline, on_ready=on_ready, cancel=cancel)
            self._publish()
        except BaseException:
            # Nothing is in flight yet, so no long drain is owed; a service still
            # warming up may not act on SIGTERM until it is ready.
            self.stop(timeout_s=ABORT_STOP_S)
            raise
        if self._policy is not None:
            self._supervisor = threading.Thread(
                target=self._supervise, name="waybill-supervisor", daemon=True
            )
            self._supervisor.start()

    @property
    def supervised(self) -> bool:
        """Whether a supervisor restarts the children that exit."""
        return self._policy is not None

    def _publish(self) -> None:
        """Write ``mesh.json`` so other commands find the running services."""
        with self._lock:
            entries = {
                name: discovery.ServiceEntry(
                    address=self._address(name),
                    pid=child.process.pid,
                    log=str(self.log_path(name)),
                    state=str(self._trackers[name].phase) if name in self._trackers else None,
                    restarts=self._trackers[name].restarts if name in self._trackers else 0,
                    last_exit=self._trackers[name].last_exit if name in self._trackers else None,
                )
                for name, child in self._children.items()
            }
            edge = entries.pop(mesh.EDGE.name, None)
            discovery.write(
                self.run_dir,
                entries,
                self.credentials_path,
                edge=edge,
                supervised=self.supervised,
            )
            self._published = True

    # -- supervision -------------------------------------------------------------

    def _supervise(self) -> None:
        """The supervisor thread: look at every child each ``poll_s`` until stop()."""
        assert self._policy is not None
        while not self._stopping.wait(self._policy.poll_s):
            try:
                self._tick()
            except Exception as exc:  # nothing dies silently, the supervisor least of all
                sys.stderr.write(f"waybill: supervisor error (still supervising): {exc!r}\n")

    def _tick(self) -> None:
        """One look: reap and schedule the dead, restart the due, probe the starting."""
        events: list[Event] = []
        starting: list[tuple[str, int]] = []
        with self._lock:
            if self._stopping.is_set():
                return
            now = time.monotonic()
            changed = False
            for name, tracker in self._trackers.items():
                child = self._children.get(name)
                if name in self._held or child is None:
                    continue
                if tracker.phase in (Phase.STARTING, Phase.SERVING):
                    code = child.process.poll()
                    if code is not None:
                        events.append(self._exited(name, child, tracker, now, code))
                        changed = True
                    elif tracker.unready(now):
                        # Killed here, reaped and rescheduled by the next tick.
                        _kill_group(child.process.pid)
                        events.append(self._event(EventKind.UNREADY, name, child, tracker))
                    elif tracker.phase is Phase.STARTING:
                        starting.append((name, child.process.pid))
                elif tracker.due(now):
                    events.append(self._respawn(name, tracker, now))
                    changed = True
            if changed and self._published:
                self._publish()
        for name, pid in starting:
            if self._stopping.is_set():
                return
            if self._ready(name):
                event = self._mark_serving(name, pid)
                if event is not None:
                    events.append(event)
        self._emit(events)

    def _event(self, kind: EventKind, name: str, child: _Child, tracker: Tracker) -> Event:
        return Event(
            kind,
            name,
            child.process.pid,
            tracker.restarts,
            tracker.last_exit,
            crash_loop=tracker.crash_looping,
        )

    def _exited(self, name: str, child: _Child, tracker: Tracker, now: float, code: int) -> Event:
        # Whatever the child started in its process group goes with it.
        _kill_group(child.process.pid)
        delay = tracker.exited(now, code)
        # The log tail once, when the crash loop begins, not at every retry.
        tail = self.log_tail(name) if tracker.failures == tracker.policy.crash_loop_after else ""
        return Event(
            EventKind.EXITED,
            name,
            child.process.pid,
            tracker.restarts,
            code,
            delay_s=delay,
            crash_loop=tracker.crash_looping,
            detail=tail,
        )

    def _respawn(self, name: str, tracker: Tracker, now: float) -> Event:
        try:
            self._spawn(name, restart=True)
        except (MeshError, OSError) as exc:
            delay = tracker.exited(now, None)
            return Event(
                EventKind.SPAWN_FAILED,
                name,
                None,
                tracker.restarts,
                tracker.last_exit,
                delay_s=delay,
                crash_loop=tracker.crash_looping,
                detail=str(exc),
            )
        return self._event(EventKind.RESTARTED, name, self._children[name], tracker)

    def _ready(self, name: str) -> bool:
        """One readiness probe of ``name`` (health, or the edge's /healthz)."""
        address = self._address(name)
        if name == mesh.EDGE.name:
            return check_http(address, mesh.EDGE.health_path, _PROBE_S) == probe.SERVING
        wanted = ("", *mesh.spec(name).grpc_services)
        statuses = probe.check_health(address, wanted, _PROBE_S)
        return all(status == probe.SERVING for status in statuses.values())

    def _mark_serving(self, name: str, pid: int) -> Event | None:
        with self._lock:
            child = self._children.get(name)
            tracker = self._trackers[name]
            # The probe ran unlocked: the process may have been replaced or held since.
            if (
                self._stopping.is_set()
                or name in self._held
                or child is None
                or child.process.pid != pid
                or tracker.phase is not Phase.STARTING
            ):
                return None
            down = tracker.serving(time.monotonic())
            if self._published:
                self._publish()
            return Event(
                EventKind.SERVING, name, pid, tracker.restarts, tracker.last_exit, down_s=down
            )

    def _emit(self, events: Sequence[Event]) -> None:
        if self._on_event is None:
            return
        for event in events:
            self._on_event(event)

    def _stop_supervisor(self) -> None:
        """Stop the supervisor; once this returns it spawns nothing more."""
        self._stopping.set()
        thread, self._supervisor = self._supervisor, None
        if thread is not None and thread is not threading.current_thread():
            # A tick is bounded by its probes (_PROBE_S each); spawning is done
            # under the lock and checks _stopping first.
            thread.join()
        # Wait out a spawn in progress on another thread (the lock is reentrant).
        with self._lock:
            pass

    # -- manual control (tests) ---------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process of ``name``; after SIGKILL, also reap it.

        Under supervision this is a crash like any other: the supervisor restarts it.
        """
        process = self._child(name).process
        if process.poll() is not None:
            return
        process.send_signal(sig)
        if sig == signal.SIGKILL:
            process.wait(_REAP_S)

    def _terminate(self, names: Sequence[str], deadline: float) -> None:
        """SIGTERM ``names`` (dependents first), wait until ``deadline``, SIGKILL the rest."""
        for name in reversed(names):
            process = self._children[name].process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name in names:
            process = self._children[name].process
            try:
                process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait(_REAP_S)
            # A grandchild it started would otherwise outlive it.
            _kill_group(process.pid)

    def restart(
        self, name: str, timeout_s: float = 30.0, *, env: Mapping[str, str] | None = None
    ) -> None:
        """Stop ``name`` if it runs (SIGTERM, then SIGKILL), start it again, wait for SERVING.

        ``env``, when given, replaces the service's own variables (``per_service_env``)
        from this start on: a drill restarts a service with faults switched on or off.
        The supervisor keeps its hands off ``name`` meanwhile; this restart is
        not counted among its restarts.
        """
        is_edge = name == mesh.EDGE.name and self.edge_address is not None
        if name not in self.names and not is_edge:
            raise KeyError(f"service {name!r} is not part of this mesh")
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._held.add(name)
            if env is not None:
                self._per_service_env[name] = dict(env)
        try:
            if name in self._children:
                self._terminate([name], time.monotonic() + timeout_s / 2)
            self._spawn(name)
            if is_edge:
                self.wait_edge(deadline - time.monotonic())
            else:
                self.wait_serving(name, deadline - time.monotonic())
            with self._lock:
                self._trackers[name].serving(time.monotonic())
                if self._published:
                    self._publish()
        finally:
            with self._lock:
                self._held.discard(name)

    def stop(self, timeout_s: float = 15.0) -> dict[str, int | None]:
        """Stop every child, dependents before what they call; return the exit statuses.

        Stops the supervisor first, so nothing is restarted behind the stop
        (a process it had just spawned is among the children stopped here).
        Each round SIGTERMs the services nothing still running depends on and
        waits for them; whatever has not exited when ``timeout_s`` is spent is
        SIGKILLed. Removes ``mesh.json``. A service the supervisor was waiting
        to restart reports the status of its last process.
        """
        self._stop_supervisor()
        deadline = time.monotonic() + timeout_s
        with self._lock:
            pending = list(self._children)
            while pending:
                needed = {dep for n in pending for dep in self._depends_on(n)}
                batch = [n for n in pending if n not in needed] or pending
                self._terminate(batch, deadline)
                pending = [n for n in pending if n not in batch]
            codes: dict[str, int | None] = {
                name: child.process.returncode for name, child in self._children.items()
            }
            self._children.clear()
            if self._published:
                discovery.remove(self.run_dir)
                self._published = False
        atexit.unregister(self._kill_all)
        return codes

    def _kill_all(self) -> None:
        """Last resort at interpreter exit: SIGKILL whatever is still running."""
        self._stopping.set()
        with self._lock:
            for child in self._children.values():
                if child.process.poll() is None:
                    _kill_group(child.process.pid)
                    child.process.wait(_REAP_S)

    def __enter__(self) -> Mesh:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
