"""``waybill up``: run the whole mesh in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from cli import discovery
from cli.launcher import Mesh, MeshError, Started
from cli.render import Style, table, use_color

CHAT_HINT = "chat: .venv/bin/waybill chat"
# How often the foreground loop looks for a child that died.
WATCH_S = 0.2


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while the mesh was starting.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    on the way swallows it before Mesh.start() stops what it started.
    """


class StopSignals:
    """SIGINT and SIGTERM handling for the foreground launcher.

    While starting, the first signal raises Interrupted (start() then stops
    the children it started); afterwards it only sets ``requested``. A second
    signal never interrupts the stop already under way.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.received: str | None = None
        self.raising = True

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested.is_set():
            return
        self.received = signal.Signals(signum).name
        self.requested.set()
        if self.raising:
            raise Interrupted(self.received)

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Handle SIGINT and SIGTERM inside the block, restore the old handlers after."""
        previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _already_running(run_dir: Path, err: TextIO) -> bool:
    """Whether another launcher owns ``run_dir``; a stale mesh.json is removed."""
    try:
        info = discovery.load(run_dir)
    except discovery.DiscoveryError:
        discovery.remove(run_dir)
        return False
    if not info.from_file:
        return False
    owner = info.launcher_pid
    if owner is not None and owner != os.getpid() and discovery.pid_alive(owner):
        err.write(
            f"error: a mesh already runs from {run_dir} (launcher pid {owner});"
            f" stop it first, or remove {discovery.mesh_file(run_dir)} if that pid is not waybill\n"
        )
        return True
    discovery.remove(run_dir)
    return False


def _summary(mesh: Mesh, out: TextIO) -> None:
    rows = [
        [name, mesh.addresses[name], str(mesh.pid(name)), str(mesh.log_path(name))]
        for name in mesh.names
    ]
    out.write(table(["service", "address", "pid", "log"], rows) + "\n")
    out.write(f"{CHAT_HINT}\nCtrl-C stops every service.\n")
    out.flush()


def _stopped(codes: dict[str, int | None], out: TextIO, style: Style) -> int:
    """Report the exit statuses of a stop; 1 when some service did not exit cleanly."""
    unclean = {name: code for name, code in codes.items() if code != 0}
    if not unclean:
        out.write(style.ok(f"stopped {len(codes)} services cleanly") + "\n")
        return 0
    for name, code in unclean.items():
        out.write(style.error(f"{name} exited with status {code}") + "\n")
    return 1


def run(mesh: Mesh, *, timeout_s: float, out: TextIO, err: TextIO) -> int:
    """Start ``mesh``, wait for a signal or a dead child, stop it; the exit status."""
    style = Style(use_color(out))
    if _already_running(mesh.run_dir, err):
        return 1
    began = time.monotonic()

    def progress(started: Started) -> None:
        ms = started.elapsed_s * 1000
        out.write(f"  {style.ok('SERVING')}  {started.name:<12} {started.address}  {ms:.0f} ms\n")
        out.flush()

    signals = StopSignals()
    with signals.installed():
        try:
            return _serve(
                mesh,
                signals,
                timeout_s=timeout_s,
                progress=progress,
                out=out,
                err=err,
                style=style,
                began=began,
            )
        except Interrupted as exc:
            # Mesh.start() already stopped what it had started; this covers a
            # signal landing between start() returning and the wait loop.
            mesh.stop()
            out.write(f"{exc.args[0]} while starting: stopped what had started\n")
            return 0
        finally:
            # Idempotent; guarantees no child outlives the command on any error.
            mesh.stop()


def _serve(
    mesh: Mesh,
    signals: StopSignals,
    *,
    timeout_s: float,
    progress: Callable[[Started], None],
    out: TextIO,
    err: TextIO,
    style: Style,
    began: float,
) -> int:
    """Start, then watch until a stop signal or a dead child; the exit status."""
    out.write(f"starting {len(mesh.names)} services in {mesh.run_dir}\n")
    out.flush()
    try:
        mesh.start(timeout_s, on_ready=progress)
    except MeshError as exc:
        err.write(style.error(f"error: {exc}") + "\n")
        return 1
    signals.raising = False
    out.write(f"mesh up in {(time.monotonic() - began) * 1000:.0f} ms\n")
    _summary(mesh, out)
    while not signals.requested.wait(WATCH_S):
        dead = mesh.poll()
        if dead:
            name, code = next(iter(dead.items()))
            err.write(style.error(f"error: {name} exited unexpectedly with status {code}") + "\n")
            err.write(f"--- last lines of {mesh.log_path(name)} ---\n{mesh.log_tail(name)}\n")
            err.flush()
            mesh.stop()
            return 1
    out.write(f"{signals.received}: stopping\n")
    out.flush()
    return _stopped(mesh.stop(), out, style)
