"""``waybill up``: run the whole mesh in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from cli import discovery
from cli.launcher import Event, EventKind, Mesh, MeshError, StartCancelled, Started
from cli.render import Style, table, use_color
from cli.supervision import describe_exit

CHAT_HINT = "chat: .venv/bin/waybill chat"
PAGE_HINT = "chat page: "
OPS_HINT = "ops page:  "
MODEL_API_HINT = "model API (OpenAI-compatible): "
# How often the foreground loop looks for a child that died.
WATCH_S = 0.2


class StopSignals:
    """SIGINT and SIGTERM handling for the foreground launcher.

    The handler only records the signal and sets ``requested``; the launcher
    acts on it at safe points (Mesh.start() polls it as its ``cancel``
    event). Raising from the handler instead could land between fork and
    bookkeeping in subprocess.Popen and orphan a child.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.received: str | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
        self.requested.set()

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
    if mesh.edge_address is not None:
        rows.append(["edge", mesh.edge_address, str(mesh.pid("edge")), str(mesh.log_path("edge"))])
    out.write(table(["service", "address", "pid", "log"], rows) + "\n")
    if mesh.edge_url is not None:
        out.write(f"{PAGE_HINT}{mesh.edge_url}\n")
        out.write(f"{OPS_HINT}{mesh.ops_url}\n")
    if mesh.model_api_url is not None:
        out.write(f"{MODEL_API_HINT}{mesh.model_api_url}\n")
    # The hint must work as typed: name the run dir unless it is the default one.
    default = mesh.run_dir == discovery.DEFAULT_RUN_DIR.absolute()
    hint = CHAT_HINT if default else f"{CHAT_HINT} --run-dir {mesh.run_dir}"
    if mesh.supervised:
        out.write("A service that exits is restarted (`waybill health` counts the restarts).\n")
    out.write(f"{hint}\nCtrl-C stops every service.\n")
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


def describe_event(event: Event, style: Style) -> tuple[str, bool] | None:
    """The line ``waybill up`` prints for a supervision event, and whether it is an error.

    One line when a service exits (it names the restart to come) and one when
    it is SERVING again; a spawned process alone is not news.
    """
    how = describe_exit(event.last_exit)
    if event.kind is EventKind.EXITED:
        if event.crash_loop:
            line = style.error(f"  CRASH LOOP  {event.name:<12}") + (
                f" exited ({how}) again after {event.restarts} restarts;"
                f" next restart in {event.delay_s:.1f} s"
            )
            if event.detail:
                line += f"\n--- last lines of its log ---\n{event.detail}"
            return line, True
        line = style.warn(f"  RESTART     {event.name:<12}") + (
            f" exited ({how}), pid {event.pid}; restart {event.restarts + 1}"
            f" in {event.delay_s:.1f} s"
        )
        return line, False
    if event.kind is EventKind.SERVING:
        after = f" {event.down_s:.1f} s after it exited" if event.down_s is not None else ""
        line = style.ok(f"  SERVING     {event.name:<12}") + (
            f" again, pid {event.pid}{after} (restarts: {event.restarts})"
        )
        return line, False
    if event.kind is EventKind.SPAWN_FAILED:
        line = style.error(f"  RESTART FAILED {event.name}") + (
            f": {event.detail}; next try in {event.delay_s:.1f} s"
        )
        return line, True
    if event.kind is EventKind.UNREADY:
        line = style.error(f"  UNREADY     {event.name:<12}") + (
            f" pid {event.pid} did not become SERVING after its restart: killed"
        )
        return line, True
    return None


class _Foreground:
    """One ``waybill up`` run: start with progress lines, then watch."""

    def __init__(self, mesh: Mesh, signals: StopSignals, out: TextIO, err: TextIO) -> None:
        self.mesh = mesh
        self.signals = signals
        self.out = out
        self.err = err
        self.style = Style(use_color(out))
        # Filled on the supervisor thread, printed by the foreground loop, so
        # the output stays in order and only one thread writes to the terminal.
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def _progress(self, started: Started) -> None:
        ms = started.elapsed_s * 1000
        self.out.write(
            f"  {self.style.ok('SERVING')}  {started.name:<12} {started.address}  {ms:.0f} ms\n"
        )
        self.out.flush()

    def start(self, timeout_s: float) -> int | None:
        """Start the mesh; an exit status if it did not come up."""
        began = time.monotonic()
        edge = " and the REST edge" if self.mesh.edge_address is not None else ""
        self.out.write(f"starting {len(self.mesh.names)} services{edge} in {self.mesh.run_dir}\n")
        self.out.flush()
        try:
            self.mesh.start(
                timeout_s,
                on_ready=self._progress,
                cancel=self.signals.requested,
                on_event=self.events.put,
            )
        except StartCancelled:
            self.out.write(f"{self.signals.received} while starting: stopped what had started\n")
            return 0
        except MeshError as exc:
            self.err.write(self.style.error(f"error: {exc}") + "\n")
            return 1
        self.out.write(f"mesh up in {(time.monotonic() - began) * 1000:.0f} ms\n")
        _summary(self.mesh, self.out)
        return None

    def _print_events(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            described = describe_event(event, self.style)
            if described is None:
                continue
            line, is_error = described
            stream = self.err if is_error else self.out
            stream.write(line + "\n")
            stream.flush()

    def watch(self) -> int:
        """Wait for a stop signal, then stop (0 when every service stopped cleanly).

        Supervised, a dead child is the supervisor's to restart and is only
        reported here; unsupervised, a dead child stops the rest (1).
        """
        while not self.signals.requested.wait(WATCH_S):
            self._print_events()
            dead = {} if self.mesh.supervised else self.mesh.poll()
            if dead:
                name, code = next(iter(dead.items()))
                self.err.write(
                    self.style.error(f"error: {name} exited unexpectedly with status {code}")
                    + f"\n--- last lines of {self.mesh.log_path(name)} ---\n"
                    + self.mesh.log_tail(name)
                    + "\n"
                )
                self.err.flush()
                self.mesh.stop()
                return 1
        self._print_events()
        self.out.write(f"{self.signals.received}: stopping\n")
        self.out.flush()
        return _stopped(self.mesh.stop(), self.out, self.style)


def run(mesh: Mesh, *, timeout_s: float, out: TextIO, err: TextIO) -> int:
    """Start ``mesh``, wait for a signal or a dead child, stop it; the exit status."""
    if _already_running(mesh.run_dir, err):
        return 1
    signals = StopSignals()
    with signals.installed():
        foreground = _Foreground(mesh, signals, out, err)
        try:
            failed = foreground.start(timeout_s)
            return failed if failed is not None else foreground.watch()
        finally:
            # Idempotent; no child outlives the command, whatever went wrong.
            mesh.stop()
