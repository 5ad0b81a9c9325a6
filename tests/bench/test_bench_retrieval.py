"""The retrieval bench on a small scale-up: it builds, serves, measures and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scenario_retrieval

pytestmark = pytest.mark.mesh


def test_a_small_run_reports_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "retrieval.jsonl"
    code = scenario_retrieval.main(
        ["--chunks", "600", "--runs", "1", "--queries", "5", "--json-out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Search over gRPC" in printed
    line = json.loads(out.read_text().strip())
    assert line["scenario"] == "retrieval"
    assert line["chunks"] >= 600
    assert line["grpc"]["p95_ms"] > 0
    assert line["inprocess"]["p50_ms"] > 0
    # Re-ingesting one edited document re-embeds one chunk, whatever the KB's size.
    assert line["reingest_shipped"]["median_s"] > 0
    assert line["reingest_large"]["median_s"] > 0
