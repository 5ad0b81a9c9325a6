"""``waybill services``: what each process serves, found through gRPC reflection."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import grpc

from cli import discovery, probe
from cli.health import source_line


def _describe(address: str, timeout_s: float) -> dict[str, Any]:
    """``{"services": {...}}`` or ``{"error": "<CODE>: <details>"}`` for one process."""
    try:
        return {"services": probe.list_services(address, timeout_s)}
    except grpc.RpcError as error:
        code = error.code()
        return {"error": f"{code.name if code is not None else 'UNKNOWN'}: {error.details()}"}


def collect(info: discovery.MeshInfo, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Process name -> address and services (or the error), probed in parallel."""
    with ThreadPoolExecutor(max_workers=max(len(info.services), 1)) as pool:
        futures = {
            name: pool.submit(_describe, entry.address, timeout_s)
            for name, entry in info.services.items()
        }
        return {
            name: {"address": info.services[name].address, **future.result()}
            for name, future in futures.items()
        }


def render(found: dict[str, dict[str, Any]]) -> str:
    """Indented text: process and address, then each service with its methods."""
    lines: list[str] = []
    for name, item in found.items():
        lines.append(f"{name}  {item['address']}")
        if "error" in item:
            lines.append(f"  unreachable: {item['error']}")
            continue
        for service, methods in item["services"].items():
            lines.append(f"  {service}: {', '.join(methods) if methods else '(no descriptor)'}")
    return "\n".join(lines)


def run(run_dir: Path, *, timeout_s: float, as_json: bool, out: TextIO, err: TextIO) -> int:
    """List services per process; 1 when some process could not be asked."""
    try:
        info = discovery.load(run_dir)
    except discovery.DiscoveryError as exc:
        err.write(f"error: {exc}\n")
        return 1
    found = collect(info, timeout_s)
    if as_json:
        out.write(json.dumps(found, indent=2) + "\n")
    else:
        out.write(source_line(info, run_dir) + "\n" + render(found) + "\n")
    return 1 if any("error" in item for item in found.values()) else 0
