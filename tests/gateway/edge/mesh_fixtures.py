"""Starting the real mesh with its REST edge (cli.launcher.Mesh on free ports)."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Mapping
from pathlib import Path

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh


def edge_mesh(
    run_dir: Path,
    *,
    services: list[str] | None = None,
    per_service_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Mesh:
    """A mesh with the edge, on a run of free ports that includes the edge's."""
    return Mesh(
        run_dir=run_dir,
        base_port=free_base_port(len(mesh.SERVICES) + 1),
        services=services,
        per_service_env=per_service_env,
        edge=True,
    )


def new_traceparent() -> tuple[str, str]:
    """A fresh trace id and the W3C traceparent that starts it."""
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def log_lines(
    log: Path, *, trace_id: str, msg: str = "rpc", method: str = "", wait_s: float = 3.0
) -> list[dict[str, object]]:
    """JSON log lines of one trace (optionally of one method), waiting a little for them."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for line in log.read_text().splitlines():
            if trace_id not in line:
                continue
            entry = json.loads(line)
            if entry.get("msg") == msg and str(entry.get("method", "")).endswith(method):
                found.append(entry)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def open_turn(
    address: str, path: str, body: dict[str, str], headers: Mapping[str, str]
) -> socket.socket:
    """Send a turn request over a raw socket and return it, unread (to hang up on it)."""
    host, _, port = address.rpartition(":")
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {address}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    return sock
