"""The ``kill`` scenario's figures, from windows of turns built by hand."""

from __future__ import annotations

import pytest

from bench import loadgen, scenario_kill
from bench.scenario_kill import Turn, Window, recovery

OK, DOWN = loadgen.OK, "UNAVAILABLE"


def _window(
    buckets: str, *, killed_at: float | None = 10.0, serving_at: float | None = 11.0
) -> Window:
    """Turns one per second from t=8: ``.`` OK, ``x`` UNAVAILABLE, ``?`` unfinished."""
    code = {".": OK, "x": DOWN, "?": None}
    turns = [Turn(8.0 + i, end=None, bucket=code[b]) for i, b in enumerate(buckets)]
    return Window("tracking", turns, killed_at=killed_at, serving_at=serving_at, restarts=1)


def test_recovery_is_the_first_of_a_run_of_successes_after_the_kill() -> None:
    # t=8, 9 before the kill; 10-12 fail; a single success at 13 is not a run; 15 starts one.
    window = _window("..xxx.x....")
    assert window.recovered_at(3) == 15.0
    figures = recovery(window, 3)
    assert figures["failed"] == 4
    assert figures["failed_by"] == {DOWN: 4}
    assert figures["recovery_s"] == 5.0
    assert figures["restart_s"] == 1.0
    assert figures["turns"] == 11


def test_untouched_service_recovers_at_once() -> None:
    window = _window(".......")
    assert recovery(window, 3)["recovery_s"] == 0.0
    assert recovery(window, 3)["failed"] == 0


def test_no_recovery_while_turns_are_unfinished_or_failing() -> None:
    assert _window("..xx?....").recovered_at(3) is None, "judged in send order"
    assert _window("..xxxxxx").recovered_at(3) is None
    assert recovery(_window("..xxxx", serving_at=None), 3)["restart_s"] is None
    assert _window("....", killed_at=None).recovered_at(1) is None


def test_table_names_each_service() -> None:
    text = scenario_kill.render([recovery(_window("..xxx....."), 3)])
    assert "tracking" in text
    assert "UNAVAILABLE 3" in text


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        scenario_kill.main(["--scenario", "kill", "--help"])
    assert done.value.code == 0
    assert "--recovered" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        scenario_kill.main(["--scenario", "kill", "--services", "nope"])
    assert done.value.code == 2
    assert "unknown service(s) nope" in capsys.readouterr().err
