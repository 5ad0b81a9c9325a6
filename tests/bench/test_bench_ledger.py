"""The ledger bench on a few pairs: it starts the service, measures and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scenario_ledger

pytestmark = pytest.mark.mesh


def test_a_small_run_reports_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ledger.jsonl"
    code = scenario_ledger.main(
        [
            "--runs", "1",
            "--pairs", "40",
            "--concurrency", "8",
            "--stores", "embedded",
            "--json-out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    assert "embedded, over gRPC" in capsys.readouterr().out
    line = json.loads(out.read_text().strip())
    assert line["scenario"] == "ledger"
    for key in ("embedded_store_pairs_per_s", "embedded_grpc_pairs_per_s", "embedded_grpc_p95_ms"):
        assert line[key] > 0, key
    assert line["embedded_store_records_per_flush"] >= 1
    assert line["embedded_grpc_baseline_pairs_per_s"] > 0
