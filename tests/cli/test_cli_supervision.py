"""Supervision: the restart policy on a given clock, then the launcher restarting
stand-in services that exit, crash-loop, hang at start or are stopped mid-restart."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from cli import discovery, probe
from cli.launcher import Event, EventKind, Mesh, Phase, RestartPolicy
from cli.supervision import Tracker, describe_exit
from tests.cli.fake_service import CRASH_MARKER
from tests.cli.fakes import alive, eventually, fake_mesh

# Fast enough that a crash loop shows within a test, slow enough to be a backoff.
QUICK = RestartPolicy(initial_s=0.05, cap_s=0.4, crash_loop_after=2)
WAIT_S = 60.0
"""Bound on waiting for a restart on a loaded machine (a hang guard, not a figure)."""


# -- the policy, on explicit clock values --------------------------------------------


def test_delay_doubles_from_the_initial_value_up_to_the_cap() -> None:
    policy = RestartPolicy(initial_s=0.1, factor=2.0, cap_s=1.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert policy.delay(10_000) == 1.0, "a long crash loop stays at the cap"


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="initial_s"):
        RestartPolicy(initial_s=2.0, cap_s=1.0)
    with pytest.raises(ValueError, match="factor"):
        RestartPolicy(factor=0.5)
    with pytest.raises(ValueError, match="crash_loop_after"):
        RestartPolicy(crash_loop_after=0)


def test_consecutive_failures_back_off_and_become_a_crash_loop() -> None:
    tracker = Tracker(RestartPolicy(initial_s=0.1, cap_s=5.0, crash_loop_after=3))
    tracker.spawned(0.0, restart=False)
    tracker.serving(1.0)
    # Dies 2 s after SERVING: less than reset_after_s, but the first failure anyway.
    assert tracker.exited(3.0, -signal.SIGKILL) == pytest.approx(0.1)
    assert tracker.phase is Phase.BACKOFF
    assert not tracker.due(3.05)
    assert tracker.due(3.1)
    tracker.spawned(3.1, restart=True)
    assert tracker.exited(3.5, 3) == pytest.approx(0.2)
    assert not tracker.crash_looping
    tracker.spawned(3.7, restart=True)
    assert tracker.exited(4.0, 3) == pytest.approx(0.4)
    assert tracker.crash_looping
    assert str(tracker.phase) == "crash-loop"
    assert (tracker.restarts, tracker.failures, tracker.last_exit) == (2, 3, 3)
    tracker.spawned(4.4, restart=True)
    # Back up: the outage is measured from the first exit, not the last.
    assert tracker.serving(5.0) == pytest.approx(2.0)
    assert tracker.phase is Phase.SERVING


def test_serving_for_a_while_resets_the_backoff() -> None:
    tracker = Tracker(RestartPolicy(initial_s=0.1, reset_after_s=10.0))
    tracker.spawned(0.0, restart=False)
    tracker.serving(0.5)
    tracker.exited(1.0, 1)
    tracker.spawned(1.1, restart=True)
    tracker.serving(1.5)
    assert tracker.exited(2.0, 1) == pytest.approx(0.2), "not stable yet: it doubles"
    tracker.spawned(2.2, restart=True)
    tracker.serving(3.0)
    assert tracker.exited(13.0, 1) == pytest.approx(0.1), "10 s SERVING: a first failure"
    assert tracker.failures == 1


def test_a_process_that_never_gets_ready_is_due_for_a_kill() -> None:
    tracker = Tracker(RestartPolicy(ready_timeout_s=30.0))
    tracker.spawned(100.0, restart=True)
    assert not tracker.unready(129.9)
    assert tracker.unready(130.0)
    tracker.serving(131.0)
    assert not tracker.unready(1000.0)


def test_describe_exit() -> None:
    assert describe_exit(-signal.SIGKILL) == "SIGKILL"
    assert describe_exit(3) == "status 3"
    assert describe_exit(None) == "-"


def test_run_file_round_trips_supervision_fields(tmp_path: Path) -> None:
    entry = discovery.ServiceEntry("127.0.0.1:1", 42, "x.log", "crash-loop", 4, -9)
    discovery.write(tmp_path, {"orders": entry}, tmp_path / "c.json", supervised=True)
    info = discovery.load(tmp_path)
    assert info.services["orders"] == entry
    assert info.supervised
    # A file from before supervision still loads.
    discovery.mesh_file(tmp_path).write_text(
        '{"services": {"orders": {"address": "127.0.0.1:1", "pid": 1, "log": null}}}'
    )
    old = discovery.load(tmp_path).services["orders"]
    assert (old.state, old.restarts, old.last_exit) == (None, 0, None)


# -- the launcher with stand-in services ----------------------------------------------


class Recorder:
    """Collects supervision events; waits for one of a kind."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait(self, kind: EventKind, name: str, *, count: int = 1) -> list[Event]:
        """The first ``count`` events of ``kind`` for ``name`` (bounded wait)."""
        with self._changed:
            found = self._changed.wait_for(lambda: len(self.of(kind, name)) >= count, WAIT_S)
            assert found, f"no {count} {kind} events for {name}; saw {self.events}"
            return self.of(kind, name)[:count]

    def of(self, kind: EventKind, name: str) -> list[Event]:
        return [e for e in self.events if e.kind is kind and e.name == name]


def _entry(run_dir: Path, name: str) -> discovery.ServiceEntry:
    return discovery.load(run_dir).services[name]


def _serving_entry(run_dir: Path, name: str) -> discovery.ServiceEntry | None:
    entry = _entry(run_dir, name)
    return entry if entry.state == "serving" else None


def test_a_killed_service_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    events = Recorder()
    m = fake_mesh(tmp_path, ["orders", "tracking"], restart=QUICK)
    m.start(on_event=events)
    try:
        first, tracking = m.pid("orders"), m.pid("tracking")
        m.kill("orders")
        (serving,) = events.wait(EventKind.SERVING, "orders")
        assert serving.pid != first
        assert serving.restarts == 1
        assert serving.last_exit == -signal.SIGKILL
        assert serving.down_s is not None
        assert serving.down_s > 0
        assert [e.kind for e in events.events] == [
            EventKind.EXITED,
            EventKind.RESTARTED,
            EventKind.SERVING,
        ]
        state = m.state("orders")
        assert (state.pid, state.phase, state.restarts) == (serving.pid, Phase.SERVING, 1)
        assert probe.check_health(m.addresses["orders"], [""], 5.0) == {"": "SERVING"}
        entry = eventually(lambda: _serving_entry(tmp_path, "orders"), WAIT_S, "run file")
        assert (entry.pid, entry.restarts, entry.last_exit) == (serving.pid, 1, -9)
        assert m.pid("tracking") == tracking, "the other service was left alone"
        assert _entry(tmp_path, "tracking").restarts == 0
    finally:
        codes = m.stop()
    assert codes == {"orders": 0, "tracking": 0}
    assert not alive(first)
    assert not alive(serving.pid or 0)
    log = (tmp_path / "logs" / "orders.log").read_text()
    assert log.count("--- waybill: restarting orders") == 1


def test_a_crash_loop_backs_off_is_reported_and_recovers(tmp_path: Path) -> None:
    marker = tmp_path / "crash"
    events = Recorder()
    m = fake_mesh(
        tmp_path, ["orders"], restart=QUICK, extra_env={"orders": {"FAKE_CRASH_IF": str(marker)}}
    )
    m.start(on_event=events)
    try:
        marker.touch()
        m.kill("orders")
        exits = events.wait(EventKind.EXITED, "orders", count=4)
        # The first exit is the kill; each restart then crashed at start.
        assert [e.last_exit for e in exits] == [-signal.SIGKILL, 3, 3, 3]
        assert [e.delay_s for e in exits] == pytest.approx([0.05, 0.1, 0.2, 0.4]), (
            "doubling to the cap"
        )
        assert [e.crash_loop for e in exits] == [False, True, True, True]
        # The log tail comes once, when the loop begins.
        assert CRASH_MARKER in exits[1].detail
        assert [e.detail for e in exits[2:]] == ["", ""]
        eventually(
            lambda: _entry(tmp_path, "orders").state == "crash-loop", WAIT_S, "crash-loop state"
        )
        marker.unlink()
        (serving,) = events.wait(EventKind.SERVING, "orders")
        assert serving.restarts >= 4
        assert probe.check_health(m.addresses["orders"], [""], 5.0) == {"": "SERVING"}
    finally:
        m.stop()


def test_stop_during_a_restart_leaves_no_orphan(tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    events = Recorder()
    m = fake_mesh(
        tmp_path, ["orders"], restart=QUICK, extra_env={"orders": {"FAKE_SLOW_IF": str(slow)}}
    )
    m.start(on_event=events)
    first = m.pid("orders")
    slow.touch()
    m.kill("orders")
    (restarted,) = events.wait(EventKind.RESTARTED, "orders")
    assert restarted.pid is not None
    assert restarted.pid != first
    assert m.state("orders").phase is Phase.STARTING
    m.stop(timeout_s=2.0)
    assert not alive(restarted.pid)
    assert not discovery.mesh_file(tmp_path).exists()
    assert not events.of(EventKind.SERVING, "orders")
    assert len(events.of(EventKind.RESTARTED, "orders")) == 1, "nothing spawned after stop"


def test_stop_during_the_backoff_restarts_nothing(tmp_path: Path) -> None:
    events = Recorder()
    m = fake_mesh(tmp_path, ["orders"], restart=RestartPolicy(initial_s=3600.0, cap_s=3600.0))
    m.start(on_event=events)
    m.kill("orders")
    events.wait(EventKind.EXITED, "orders")
    assert m.state("orders").phase is Phase.BACKOFF
    assert _entry(tmp_path, "orders").state == "backoff"
    codes = m.stop()
    assert codes == {"orders": -signal.SIGKILL}, "the status of its last process"
    assert not events.of(EventKind.RESTARTED, "orders")


def test_a_restart_that_never_gets_ready_is_killed(tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    events = Recorder()
    policy = RestartPolicy(initial_s=0.05, cap_s=0.1, ready_timeout_s=1.0)
    m = fake_mesh(
        tmp_path, ["orders"], restart=policy, extra_env={"orders": {"FAKE_SLOW_IF": str(slow)}}
    )
    m.start(on_event=events)
    try:
        slow.touch()
        m.kill("orders")
        (unready,) = events.wait(EventKind.UNREADY, "orders")
        (_, second) = events.wait(EventKind.EXITED, "orders", count=2)
        assert second.pid == unready.pid
        assert second.last_exit == -signal.SIGKILL
    finally:
        m.stop(timeout_s=2.0)


def test_a_manual_restart_is_not_counted_and_not_raced(tmp_path: Path) -> None:
    events = Recorder()
    m = fake_mesh(tmp_path, ["orders"], restart=QUICK)
    m.start(on_event=events)
    try:
        first = m.pid("orders")
        m.restart("orders")
        assert m.pid("orders") != first
        state = m.state("orders")
        assert (state.phase, state.restarts) == (Phase.SERVING, 0)
        assert events.events == [], "the supervisor did not restart it as well"
        assert _entry(tmp_path, "orders").pid == m.pid("orders")
    finally:
        m.stop()


def test_unsupervised_mesh_leaves_the_dead_dead(tmp_path: Path) -> None:
    with fake_mesh(tmp_path, ["orders"]) as m:
        assert not m.supervised
        m.kill("orders")
        assert m.poll() == {"orders": -signal.SIGKILL}
        assert m.state("orders").restarts == 0


def test_supervised_context_manager_stops_everything(tmp_path: Path) -> None:
    m: Mesh
    with fake_mesh(tmp_path, ["orders", "tracking"], restart=QUICK) as m:
        assert m.supervised
        assert discovery.load(tmp_path).supervised
        pids = [m.pid("orders"), m.pid("tracking")]
    assert not any(alive(pid) for pid in pids)
