"""Fixtures that run the real service processes through the launcher."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import credentials, mesh
from tests.support.redis_server import sync_prefix_or_skip


@pytest.fixture(scope="module")
def running_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Every service of the mesh, on free loopback ports, for one test module."""
    run_dir = tmp_path_factory.mktemp("mesh")
    with Mesh(run_dir=run_dir, base_port=free_base_port(len(mesh.SERVICES))) as started:
        yield started


def api_key(m: Mesh, tenant: str = "acme-retail") -> str:
    """The demo API key of ``tenant`` in this mesh."""
    return credentials.key_for(m.credentials_path, tenant)


def new_trace() -> tuple[str, str]:
    """A fresh W3C trace id and the traceparent header that starts it."""
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def rpc_lines(
    log: Path, trace_id: str, *, method: str = "", wait_s: float = 3.0
) -> list[dict[str, Any]]:
    """Access-log lines of one trace in a service's log (optionally of one method).

    A server writes its access-log line when the handler returns, which can be
    just after the client has its answer: wait a little for the line to appear.
    """
    deadline = time.monotonic() + wait_s
    while True:
        found = _read(log, trace_id, method)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _read(log: Path, trace_id: str, method: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        if trace_id in line:
            entry = json.loads(line)
            if (
                entry.get("msg") == "rpc"
                and entry.get("trace_id") == trace_id
                and str(entry.get("method", "")).endswith(method)
            ):
                found.append(entry)
    return found


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix for one test module, its keys deleted afterwards."""
    client, prefix = sync_prefix_or_skip()
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
