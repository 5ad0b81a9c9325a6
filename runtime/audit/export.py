"""Export to Parquet, for DuckDB.

DuckDB reads the segments as JSON lines with a fixed schema (no sampling), one segment at a
time into a table (progress per segment), and writes one zstd Parquet file, flat columns
plus ``tools`` and ``guardrails`` as lists of structs, ``time`` as TIMESTAMPTZ. The file
appears whole or not at all (temporary name, fsync, rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb

from runtime.audit.segments import kept_segments, read_retention
from runtime.progress import Progress

_RECORD = (
    "STRUCT("
    "v INTEGER, time VARCHAR, request_id VARCHAR, tenant_id VARCHAR, team_id VARCHAR,"
    " principal_id VARCHAR, user_pseudonym VARCHAR, session_pseudonym VARCHAR,"
    " intent VARCHAR, worker VARCHAR, tools STRUCT(name VARCHAR, status VARCHAR)[],"
    " models VARCHAR[], input_tokens BIGINT, output_tokens BIGINT, cost_micro_units BIGINT,"
    ' currency_code VARCHAR, latency_us BIGINT, guardrails STRUCT("check" VARCHAR,'
    ' "action" VARCHAR)[], cache_hit BOOLEAN, budget_state VARCHAR, outcome VARCHAR)'
)
_COLUMNS = {"seq": "UBIGINT", "prev": "VARCHAR", "hash": "VARCHAR", "record": _RECORD}
_SELECT = """
SELECT
  seq,
  hash,
  CAST(record.time AS TIMESTAMPTZ) AS time,
  record.request_id, record.tenant_id, record.team_id, record.principal_id,
  record.user_pseudonym, record.session_pseudonym, record.intent, record.worker,
  record.tools, record.models,
  record.input_tokens, record.output_tokens, record.cost_micro_units, record.currency_code,
  record.latency_us, record.latency_us / 1000.0 AS latency_ms,
  record.guardrails, record.cache_hit, record.budget_state, record.outcome,
  ? AS segment
FROM read_json(?, format = 'newline_delimited', columns = ?, ignore_errors = ?)
WHERE record IS NOT NULL AND hash IS NOT NULL
"""


def export_parquet(
    directory: Path,
    out: Path,
    *,
    skip_torn_tail: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write the kept records of ``directory`` to ``out``; the number of rows.

    ``skip_torn_tail`` lets DuckDB skip unreadable lines; pass it only after verification
    found the log intact but for a torn last line."""
    segments = kept_segments(directory, read_retention(directory))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'").fetchall()
            for i, path in enumerate(segments):
                newest = i == len(segments) - 1
                arguments = [path.name, str(path), _COLUMNS, skip_torn_tail and newest]
                if i == 0:
                    con.execute(f"CREATE TABLE audit AS {_SELECT}", arguments).fetchall()
                else:
                    con.execute(f"INSERT INTO audit {_SELECT}", arguments).fetchall()
                if progress is not None:
                    progress(i + 1, len(segments))
            if not segments:
                con.execute(
                    f"CREATE TABLE audit AS {_SELECT} LIMIT 0",
                    ["", "/dev/null", _COLUMNS, False],
                ).fetchall()
            ((count,),) = con.execute("SELECT count(*) FROM audit").fetchall()
            con.table("audit").order("seq").write_parquet(temporary, compression="zstd")
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return int(count)
