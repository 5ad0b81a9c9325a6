"""The CPU test Triton server as a process: start, wait for ModelReady, stop.

``waybill up --triton`` (through the launcher), the Triton backend tests and the
pool-overhead benchmark use it to put a real Triton server (nvidia-pytriton's
bundled one, serving ``triton_models/cpu_test``) in the tracking chain.
``python -m cli.triton`` runs one in the foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc

from runtime import paths

REPO_ROOT = paths.repo_root()
TRITON_VENV = REPO_ROOT / ".venv-triton"
CPU_TEST_REPOSITORY = REPO_ROOT / "triton_models" / "cpu_test"
SERVE_SCRIPT = CPU_TEST_REPOSITORY / "serve.py"
MODEL = "ensemble"
ACCESS_HEADER = "triton-grpc-protocol-triton-access-token"
"""Metadata key PyTriton's Triton expects on restricted gRPC endpoints (load/unload)."""
SETUP_HINT = "run `bash scripts/setup.d/30-pytriton.sh` (or `make test`) to build it"
_POLL_S = 0.1
_TAIL_BYTES = 16 * 1024


class TritonStartError(RuntimeError):
    """The server did not become ready."""


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def triton_python() -> Path:
    """The interpreter of ``.venv-triton``; TritonStartError names the fix when missing."""
    python = TRITON_VENV / "bin" / "python"
    if not python.exists():
        raise TritonStartError(f"{TRITON_VENV} is missing: {SETUP_HINT}")
    return python


def model_ready(address: str, timeout_s: float = 1.0, model: str = MODEL) -> bool:
    """Whether ``model`` is ready on the Triton server at ``address`` (gRPC ModelReady)."""
    from tritonclient.grpc import (  # type: ignore[import-untyped, unused-ignore]
        service_pb2,
        service_pb2_grpc,
    )

    with grpc.insecure_channel(address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            reply = stub.ModelReady(
                service_pb2.ModelReadyRequest(name=model, version=""), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(reply.ready)


@dataclass(frozen=True, slots=True)
class Ports:
    """The three ports a Triton server listens on."""

    grpc: int
    http: int
    metrics: int


class TritonServer:
    """One CPU test Triton server process (owned: ``stop()`` returns once it has exited)."""

    def __init__(
        self,
        *,
        run_dir: Path,
        ports: Ports | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        repository: Path = CPU_TEST_REPOSITORY,
    ) -> None:
        self.run_dir = Path(run_dir).absolute()
        self.ports = ports or Ports(free_port(), free_port(), free_port())
        self.host = host
        self.repository = repository
        self.access_token = secrets.token_urlsafe(24)
        self.log_path = self.run_dir / "logs" / "triton.log"
        self._env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` of its gRPC endpoint."""
        return f"{self.host}:{self.ports.grpc}"

    @property
    def pid(self) -> int | None:
        """Pid of the running server, if any."""
        return None if self._process is None else self._process.pid

    def alive(self) -> bool:
        """Whether the server process runs."""
        return self._process is not None and self._process.poll() is None

    def admin_metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata for the restricted endpoints (model load/unload)."""
        return ((ACCESS_HEADER, self.access_token),)

    def _child_env(self) -> dict[str, str]:
        env = {**os.environ, **self._env}
        env["WAYBILL_TRITON_ACCESS_TOKEN"] = self.access_token
        libdir_file = TRITON_VENV / "waybill-libdir"
        if libdir_file.exists():
            libdir = libdir_file.read_text().strip()
            current = env.get("LD_LIBRARY_PATH", "")
            env["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir
        # The platform's own venv must not leak into the Triton environment.
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout_s: float = 60.0) -> None:
        """Spawn the server and wait until the model is ready (or fail with the log tail)."""
        if self._process is not None:
            raise TritonStartError("Triton server already started")
        python = triton_python()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        workspace = self.run_dir / "triton-workspace"
        with self.log_path.open("ab") as log:
            self._offset = log.tell()
            self._process = subprocess.Popen(
                [
                    str(python),
                    str(SERVE_SCRIPT),
                    "--host",
                    self.host,
                    "--grpc-port",
                    str(self.ports.grpc),
                    "--http-port",
                    str(self.ports.http),
                    "--metrics-port",
                    str(self.ports.metrics),
                    "--repository",
                    str(self.repository),
                    "--workspace",
                    str(workspace),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._child_env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        try:
            while not model_ready(self.address, timeout_s=0.5):
                code = self._process.poll()
                if code is not None:
                    raise TritonStartError(
                        f"Triton exited with status {code} while starting\n{self.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise TritonStartError(
                        f"Triton model {MODEL!r} not ready at {self.address} after"
                        f" {timeout_s:.0f}s\n{self.log_tail()}"
                    )
                time.sleep(_POLL_S)
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 30) -> str:
        """The last lines this server wrote."""
        try:
            with self.log_path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(getattr(self, "_offset", 0), size - _TAIL_BYTES))
                data = fh.read()
        except FileNotFoundError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL the process group if it lingers; the exit status."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout_s)
        # tritonserver and its Python backend stubs are in the same session.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
        self._process = None
        return process.returncode

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def chain_env(server: TritonServer, backend: str = "triton-small") -> dict[str, str]:
    """Environment that puts ``server`` at the head of the tracking chain."""
    key = backend.upper().replace("-", "_")
    return {
        f"WAYBILL_LLM_{key}_URL": server.address,
        f"WAYBILL_LLM_{key}_MODEL": "waybill-cpu-test",
        f"WAYBILL_LLM_{key}_PROMPT_FORMAT": "plain",
        "WAYBILL_LLM_CHAIN_TRACKING": f"{backend},composer",
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CPU test Triton server in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m cli.triton",
        description="Serve triton_models/cpu_test with a real Triton server on CPU"
        " (nvidia-pytriton) until Ctrl-C.",
    )
    parser.add_argument("--run-dir", type=Path, default=Path(".waybill"), help="logs go here")
    parser.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to become ready")
    args = parser.parse_args(argv)
    server = TritonServer(
        run_dir=args.run_dir, ports=Ports(args.grpc_port, free_port(), free_port())
    )
    stop = False

    def _handle(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    previous = {s: signal.signal(s, _handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"starting Triton (CPU test model) on {server.address}; log: {server.log_path}")
        server.start(args.timeout)
        print(f"ready: model {MODEL!r} at {server.address}; Ctrl-C stops it")
        for key, value in chain_env(server).items():
            print(f"  {key}={value}")
        while not stop and server.alive():
            time.sleep(0.2)
    except TritonStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
