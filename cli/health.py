"""``waybill health``: the health of every service process and each gRPC service in it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from cli import discovery, probe
from cli.http_probe import check_http
from cli.render import Style, table, use_color
from runtime import mesh

SERVER = "(server)"
"""How the overall health entry (service "") is shown."""


def probed_services(name: str) -> tuple[str, ...]:
    """Health entries to check for a process: the server as a whole, then its services."""
    spec = mesh.BY_NAME.get(name)
    return ("", *(spec.grpc_services if spec else ()))


def collect(info: discovery.MeshInfo, timeout_s: float) -> dict[str, dict[str, str]]:
    """Process name -> health entry -> status, probing all processes at once."""
    entries = info.services
    # One thread per process: a blackholed address costs one timeout, not nine.
    with ThreadPoolExecutor(max_workers=max(len(entries), 1)) as pool:
        futures = {
            name: pool.submit(probe.check_health, entry.address, probed_services(name), timeout_s)
            for name, entry in entries.items()
        }
        return {name: future.result() for name, future in futures.items()}


def source_line(info: discovery.MeshInfo, run_dir: Path) -> str:
    """Where the addresses came from."""
    if info.from_file:
        return f"mesh: {discovery.mesh_file(run_dir)}"
    return f"mesh: table defaults (no {discovery.mesh_file(run_dir)})"


def run(run_dir: Path, *, timeout_s: float, out: TextIO, err: TextIO) -> int:
    """Print the health table; 0 only when every entry is SERVING."""
    style = Style(use_color(out))
    try:
        info = discovery.load(run_dir)
    except discovery.DiscoveryError as exc:
        err.write(f"error: {exc}\n")
        return 1
    results = collect(info, timeout_s)
    rows: list[list[str]] = []
    serving = total = 0
    for name, statuses in results.items():
        for service, status in statuses.items():
            total += 1
            ok = status == probe.SERVING
            serving += ok
            shown = style.ok(status) if ok else style.error(status)
            rows.append([name, info.services[name].address, service or SERVER, shown])
    if info.edge is not None:
        # The REST edge speaks HTTP: its /healthz stands in for gRPC health.
        status = check_http(info.edge.address, mesh.EDGE.health_path, timeout_s)
        total += 1
        ok = status == probe.SERVING
        serving += ok
        shown = style.ok(status) if ok else style.error(status)
        rows.append(["edge", info.edge.address, f"GET {mesh.EDGE.health_path}", shown])
    out.write(source_line(info, run_dir) + "\n")
    out.write(table(["process", "address", "service", "status"], rows) + "\n")
    out.write(f"{serving}/{total} SERVING\n")
    return 0 if total and serving == total else 1
