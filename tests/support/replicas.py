"""More gateway processes beside a mesh's own: replicas sharing its stores and peers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager

from cli import probe
from cli.launcher import REPO_ROOT, Mesh
from cli.ports import free_base_port
from gateway.settings import MODEL_API_ENV
from runtime import mesh


@contextmanager
def gateway_replica(m: Mesh, *, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """One more gateway process with the mesh's settings (plus ``env``); yields its address
    once it serves and stops it afterwards."""
    spec = mesh.spec("gateway")
    address = f"127.0.0.1:{free_base_port(1)}"
    port = address.rsplit(":", 1)[1]
    child_env = {
        **m.child_env("gateway"),
        # One writer per audit log: a replica keeps its own.
        "WAYBILL_AUDIT_DIR": str(m.data_dir / f"audit-gateway-{port}"),
        # The mesh's gateway holds its metrics port (a mesh with an edge has one): a
        # replica serves no metrics endpoint rather than fail to bind the same one.
        "WAYBILL_GATEWAY_METRICS_PORT": "0",
        # Likewise its model API port: a replica serves none.
        MODEL_API_ENV: "",
        **(env or {}),
        spec.env_var: address,
    }
    with (m.logs_dir / f"gateway-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", m.module("gateway")],
            env=child_env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            service = spec.grpc_services[0]
            while probe.check_health(address, [service], 1.0).get(service) != "SERVING":
                assert process.poll() is None, "the gateway replica exited"
                assert time.monotonic() < deadline, "the gateway replica never served"
                time.sleep(0.1)
            yield address
        finally:
            process.terminate()
            process.wait(15)


@contextmanager
def gateway_replicas(
    m: Mesh, count: int, *, env: Mapping[str, str] | None = None
) -> Iterator[list[str]]:
    """``count`` more gateway processes (see ``gateway_replica``)."""
    with ExitStack() as stack:
        yield [stack.enter_context(gateway_replica(m, env=env)) for _ in range(count)]
