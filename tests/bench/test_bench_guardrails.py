"""The guardrails bench on a few calls: it starts the service, measures and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scenario_guardrails

pytestmark = pytest.mark.mesh


def test_a_small_run_reports_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "guardrails.jsonl"
    code = scenario_guardrails.main(["--runs", "1", "--calls", "8", "--json-out", str(out)])
    assert code == 0
    assert "CheckOutput (grounded, 2 sources)" in capsys.readouterr().out
    line = json.loads(out.read_text().strip())
    assert line["scenario"] == "guardrails"
    for key in (
        "check_input_p95_ms",
        "check_input_plain_p95_ms",
        "check_input_classified_p95_ms",
        "check_input_injection_p95_ms",
        "check_output_p95_ms",
        "round_trip_p95_ms",
    ):
        assert line[key] > 0, key
    assert line["parts"]["injection_score"]["p95_ms"] > 0
    assert line["injections_blocked"] is True  # the injection row measures real blocks
