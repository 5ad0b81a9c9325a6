"""The supervised mesh survives ``kill -9`` of any one service under load.

One supervised mesh (as ``waybill up`` runs it, without the edge) serves a
steady stream of tracking turns while each service in turn is SIGKILLed by
the pid in the run file, as an operator or the OOM killer would. For each: the
launcher brings it back SERVING (seen in the run file and by health), its
restart count goes up by one, the other processes keep their pids, and turns
sent after the restart succeed again. How many turns fail and how long
recovery takes are figures, measured by ``python -m bench --scenario kill``,
not asserted here.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import grpc
import pytest
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli import discovery, probe
from cli.health import probed_services
from cli.launcher import Mesh, RestartPolicy
from cli.main import main
from cli.ports import free_base_port
from runtime import credentials, mesh
from tests.mesh.conversation import customers

pytestmark = pytest.mark.mesh

# The path of a tracking turn first, then the services it does not need.
VICTIMS = ["orders", "guardrails", "router", "tracking", "gateway"] + [
    s.name
    for s in mesh.SERVICES
    if s.name not in {"orders", "guardrails", "router", "tracking", "gateway"}
]
RATE = 20.0
"""Turns per second: steady load, modest enough for a loaded 2-core machine."""
RUN = 20
"""Consecutive successful turns that count as recovered."""
TURN_TIMEOUT_S = 10.0
WAIT_S = 60.0
"""Bound on each wait (restart, recovery): turns a hang into a failure, not a figure."""
LOAD_LIMIT_S = 90.0
"""A load that nobody stops ends by itself."""
T = TypeVar("T")
# As the mesh's own clients (runtime/client.py): a restarted gateway is
# reconnected to at once, not after gRPC's default backoff of a second and more.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 100),
    ("grpc.enable_retries", 0),
]


@pytest.fixture(scope="module")
def supervised_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with Mesh(
        run_dir=tmp_path_factory.mktemp("supervised"),
        base_port=free_base_port(len(mesh.SERVICES)),
        restart=RestartPolicy(),
    ) as started:
        yield started


@dataclass(frozen=True, slots=True)
class Outcome:
    sent_at: float
    code: str
    """``OK`` for a turn that ended with its final event, else the status or ``NO_FINAL``."""


class SteadyTurns:
    """Tracking turns at a fixed rate from a background thread, each recorded by send order."""

    def __init__(self, m: Mesh, label: str) -> None:
        key = {
            t: credentials.key_for(m.credentials_path, t) for t in ("acme-retail", "globex-home")
        }
        # Many customers, so no per-user limit is what the test measures.
        users = [(key[t], user) for t in key for user in sorted(customers(m, t))]
        self._users = itertools.cycle(users)
        self._label = label
        self._channel = grpc.insecure_channel(m.addresses["gateway"], options=_CHANNEL_OPTIONS)
        self._stub = gw_grpc.GatewayServiceStub(self._channel)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="turn")
        self._done = threading.Condition()
        self._outcomes: dict[int, Outcome] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="steady-turns", daemon=True)

    def __enter__(self) -> SteadyTurns:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._channel.close()

    def _send(self) -> None:
        began = time.monotonic()
        for index in itertools.count():
            due = began + index / RATE
            # Pacing an open-loop rate, not waiting for something to happen.
            if self._stop.wait(max(due - time.monotonic(), 0)) or due - began > LOAD_LIMIT_S:
                return
            api_key, user = next(self._users)
            self._pool.submit(self._turn, index, api_key, user)

    def _turn(self, index: int, api_key: str, user: str) -> None:
        sent_at = time.monotonic()
        request = gw.ConverseRequest(
            session_id=f"sup-{self._label}-{index:06d}", user_id=user, message="where is my order?"
        )
        try:
            events = list(
                self._stub.Converse(
                    request, metadata=[("x-api-key", api_key)], timeout=TURN_TIMEOUT_S
                )
            )
            last = events[-1].event.WhichOneof("kind") if events else None
            code = "OK" if last == "final" else "NO_FINAL"
        except grpc.RpcError as error:
            status = error.code()
            code = status.name if status is not None else "UNKNOWN"
        with self._done:
            self._outcomes[index] = Outcome(sent_at, code)
            self._done.notify_all()

    def _run_after(self, after: float) -> list[Outcome] | None:
        """The first ``RUN`` consecutive successes among turns sent after ``after``, if any."""
        run: list[Outcome] = []
        for index in itertools.count():
            outcome = self._outcomes.get(index)
            if outcome is None:
                return None  # not finished yet: turns are judged in send order
            if outcome.sent_at < after:
                continue
            run = [*run, outcome] if outcome.code == "OK" else []
            if len(run) == RUN:
                return run
        return None  # pragma: no cover (count() is endless)

    def wait_recovered(self, after: float) -> list[Outcome]:
        """Block until ``RUN`` turns in a row sent after ``after`` succeeded (bounded)."""
        with self._done:
            found = self._done.wait_for(lambda: self._run_after(after), WAIT_S)
            if not found:
                sent = [o for _, o in sorted(self._outcomes.items()) if o.sent_at >= after]
                codes = [o.code for o in sent]
                pytest.fail(f"no {RUN} successful turns in a row after t={after:.1f}: {codes}")
            return found

    def failures(self) -> list[str]:
        with self._done:
            return [o.code for o in self._outcomes.values() if o.code != "OK"]


def _eventually(condition: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {WAIT_S}s")
        time.sleep(0.05)


def _restarted(m: Mesh, name: str, old_pid: int) -> discovery.ServiceEntry | None:
    """The run file's entry of ``name`` once another process of it is SERVING."""
    entry = discovery.load(m.run_dir).services[name]
    if entry.pid == old_pid or entry.state != "serving":
        return None
    statuses = probe.check_health(m.addresses[name], probed_services(name), timeout_s=2.0)
    return entry if set(statuses.values()) == {probe.SERVING} else None


@pytest.mark.parametrize("victim", VICTIMS)
def test_kill_9_under_load_is_restarted_and_turns_recover(
    supervised_mesh: Mesh, victim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    m = supervised_mesh
    before = discovery.load(m.run_dir).services
    target = before[victim]
    assert target.state == "serving"
    assert target.pid is not None
    with SteadyTurns(m, victim) as load:
        # Healthy first (also after the previous victim), so what follows is the kill's doing.
        load.wait_recovered(time.monotonic())
        os.kill(target.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        entry = _eventually(lambda: _restarted(m, victim, target.pid or 0), f"{victim} back")
        serving_at = time.monotonic()
        assert entry.restarts == target.restarts + 1
        assert entry.last_exit == -signal.SIGKILL
        # Turns sent once it is SERVING again succeed; while it was down some may
        # have failed (none need to: an unbuilt service is not on a turn's path).
        load.wait_recovered(serving_at)
    after = discovery.load(m.run_dir).services
    for name, was in before.items():
        if name != victim:
            assert after[name].pid == was.pid, f"{name} was restarted too"
            assert after[name].restarts == was.restarts
    assert main(["health", "--run-dir", str(m.run_dir)]) == 0
    (row,) = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(f"{victim} ") and "(server)" in line
    ]
    assert row.split()[-2:] == [str(entry.restarts), "SIGKILL"]
    print(f"{victim}: back in {serving_at - killed_at:.1f} s; failed turns: {load.failures()}")
