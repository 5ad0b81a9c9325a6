"""bench.ledger_reports runs end to end on a small journal and prints its figures."""

from __future__ import annotations

import json

import pytest

from bench import ledger_reports


def test_the_bench_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert ledger_reports.main(["--rows", "3000"]) == 0
    *table, last = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(last)
    assert figures["rows"] == 3000
    assert figures["report_team_groups"] == 20
    assert figures["parquet_bytes"] > 0
    assert all(figures[k] >= 0 for k in figures if k.endswith("_s"))
    assert table[0] == "3,000 journal rows"
