"""bench.audit_log runs end to end on a small log and prints its figures."""

from __future__ import annotations

import json

import pytest

from bench import audit_log


def test_the_bench_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_log.main(["--records", "2000", "--appends", "200", "--rate", "2000"]) == 0
    *table, last = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(last)
    assert figures["records"] == 2000
    for name in ("append", "turn", "paced_turn"):
        assert 0 < figures[name]["p50_us"] <= figures[name]["p95_us"] <= figures[name]["max_us"]
    assert figures["parquet_bytes"] > 0
    assert table[0] == "audit log: 200 timed appends, 2,000 records verified"
