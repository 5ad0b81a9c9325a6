"""Parquet export that DuckDB queries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb

from runtime.audit.export import export_parquet
from runtime.audit.retention import prune
from tests.runtime.audit.logs import DAY0, lines, segment, write_log


def test_export_is_queryable_with_duckdb(tmp_path: Path) -> None:
    logs, out = tmp_path / "audit", tmp_path / "out" / "audit.parquet"
    count = write_log(logs, days=2, per_day=10)
    seen: list[tuple[int, int]] = []
    assert export_parquet(logs, out, progress=lambda d, t: seen.append((d, t))) == count
    assert seen[-1] == (2, 2)
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT tenant_id, count(*), sum(cost_micro_units), sum(cache_hit::INT),"
            " min(seq), max(seq), min(time)"
            " FROM read_parquet(?) GROUP BY tenant_id",
            [str(out)],
        ).fetchall()
        assert len(rows) == 1
        tenant, turns, cost, hits, first, last, start = rows[0]
        assert (tenant, turns, cost, hits, first, last) == ("acme-retail", 20, 7000, 4, 1, 20)
        assert start == DAY0
        tools = con.execute(
            "SELECT t.status, count(*) FROM read_parquet(?), unnest(tools) AS u(t)"
            " GROUP BY t.status ORDER BY 1",
            [str(out)],
        ).fetchall()
        assert tools == [("NOT_FOUND", 20), ("OK", 20)]
        verdicts = con.execute(
            "SELECT list_transform(guardrails, lambda g: g.check || '=' || g.action)[1], latency_ms"
            " FROM read_parquet(?) LIMIT 1",
            [str(out)],
        ).fetchall()
        assert verdicts == [("input_pii=redact", 12.5)]


def test_export_after_pruning_holds_the_kept_records(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=4)
    prune(tmp_path, older_than_days=0, now=DAY0 + timedelta(days=2))
    out = tmp_path / "out.parquet"
    assert export_parquet(tmp_path, out) == 4
    with duckdb.connect() as con:
        assert con.execute("SELECT min(seq) FROM read_parquet(?)", [str(out)]).fetchall() == [(9,)]


def test_export_can_skip_a_torn_last_line(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=5)
    path = segment(tmp_path)
    with path.open("ab") as f:
        f.write(lines(path)[0][:50])
    assert export_parquet(tmp_path, tmp_path / "out.parquet", skip_torn_tail=True) == 5


def test_an_empty_log_exports_an_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    assert export_parquet(tmp_path, out) == 0
    with duckdb.connect() as con:
        assert con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchall() == [(0,)]
