"""``waybill health``: the health of every service process and each gRPC service in it.

``--watch`` checks again every few seconds until Ctrl-C: on a terminal the table is redrawn
in place; into a pipe or a file a timestamped table is written only when something changed
(a status, a restart, a last exit), so a log of a night's watch reads as its transitions.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TextIO

from cli import discovery, probe
from cli.http_probe import check_http
from cli.render import Style, table, use_color
from cli.supervision import Phase, describe_exit
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


def _restart_cells(entry: discovery.ServiceEntry, first: bool) -> list[str]:
    """The restart count and last exit, on the first row of a process only."""
    if not first:
        return ["", ""]
    return [str(entry.restarts), describe_exit(entry.last_exit)]


def _down_lines(info: discovery.MeshInfo, style: Style) -> list[str]:
    """One line per process the supervisor is waiting to restart, crash loops first."""
    entries = dict(info.services)
    if info.edge is not None:
        entries["edge"] = info.edge
    down = [(n, e) for n, e in entries.items() if e.state in (Phase.CRASH_LOOP, Phase.BACKOFF)]
    down.sort(key=lambda item: item[1].state != Phase.CRASH_LOOP)
    lines = []
    for name, entry in down:
        what = "is in a crash loop" if entry.state == Phase.CRASH_LOOP else "is restarting"
        lines.append(
            style.error(f"{name} {what}")
            + f": {entry.restarts} restarts, last exit {describe_exit(entry.last_exit)}"
            + (f"; see {entry.log}" if entry.log else "")
        )
    return lines


def run(run_dir: Path, *, timeout_s: float, out: TextIO, err: TextIO) -> int:
    """Print the health table; 0 only when every entry is SERVING.

    From a launcher's run file the table also shows each process's restart
    count and last exit, and names the processes it is waiting to restart.
    """
    style = Style(use_color(out))
    try:
        info = discovery.load(run_dir)
    except discovery.DiscoveryError as exc:
        err.write(f"error: {exc}\n")
        return 1
    results = collect(info, timeout_s)
    rows: list[list[str]] = []
    serving = total = 0
    extra = info.from_file
    for name, statuses in results.items():
        for i, (service, status) in enumerate(statuses.items()):
            total += 1
            ok = status == probe.SERVING
            serving += ok
            shown = style.ok(status) if ok else style.error(status)
            entry = info.services[name]
            row = [name, entry.address, service or SERVER, shown]
            rows.append([*row, *_restart_cells(entry, i == 0)] if extra else row)
    if info.edge is not None:
        # The REST edge speaks HTTP: its /healthz stands in for gRPC health.
        status = check_http(info.edge.address, mesh.EDGE.health_path, timeout_s)
        total += 1
        ok = status == probe.SERVING
        serving += ok
        shown = style.ok(status) if ok else style.error(status)
        row = ["edge", info.edge.address, f"GET {mesh.EDGE.health_path}", shown]
        rows.append([*row, *_restart_cells(info.edge, True)] if extra else row)
    headers = ["process", "address", "service", "status"]
    out.write(source_line(info, run_dir) + "\n")
    out.write(table([*headers, "restarts", "last exit"] if extra else headers, rows) + "\n")
    for line in _down_lines(info, style):
        out.write(line + "\n")
    out.write(f"{serving}/{total} SERVING\n")
    return 0 if total and serving == total else 1


CLEAR = "\x1b[H\x1b[2J"
"""Cursor home, clear the screen."""


def watch(
    run_dir: Path,
    *,
    timeout_s: float,
    interval_s: float,
    count: int | None,
    out: TextIO,
    err: TextIO,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Check every ``interval_s`` seconds (``count`` times, or until Ctrl-C); the exit status
    of the last check (0 only when every entry was SERVING)."""
    redraw = out.isatty()
    last_table = None
    code = 1
    rounds = 0
    try:
        while True:
            buffer = io.StringIO()
            code = run(run_dir, timeout_s=timeout_s, out=buffer, err=err)
            shown = buffer.getvalue()
            stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            if redraw:
                out.write(f"{CLEAR}every {interval_s:g} s, {stamp} (Ctrl-C stops)\n{shown}")
            elif shown != last_table:
                out.write(f"--- {stamp}\n{shown}")
            out.flush()
            last_table = shown
            rounds += 1
            if count is not None and rounds >= count:
                return code
            sleep(interval_s)
    except KeyboardInterrupt:
        return code
