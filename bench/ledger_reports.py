"""Cost reports over a large journal: how long the export and the queries take.

``python -m bench.ledger_reports --rows 1000000`` makes that many synthetic journal rows
(30 days, 2 tenants, 20 teams, 500 users, 4 models, one to three generations a turn), then
times, each once after one untimed warm-up query:

- ``export``: ``export_parquet`` of the rows (NumPy columns into DuckDB, zstd Parquet,
  atomic rename), with the file's size;
- ``report by team`` / ``by day, team, model`` / ``by user``: ``cost_report`` over the Parquet
  file, one tenant, the whole period;
- ``anomalies by team``: ``anomalies`` over the same;
- ``GetCostReport by team``: the RPC's body over rows a store hands over (every row is the
  tenant's: the worst case), rows -> DuckDB (the columns a report reads) -> report.

Prints a table and one JSON line. Making the rows is not timed (a store hands them over).
Exit 0; 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb
from waybill.ledger.v1 import ledger_service_pb2 as pb

from ledger.charges import ChargeRow
from ledger.reports import (
    ReportRow,
    anomalies,
    cost_report,
    export_parquet,
    get_cost_report,
    read_parquet,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
T = TypeVar("T")
MODELS = ("triton/llama-8b", "openai/gpt-4o-mini", "openai/gpt-4o", "composer/templates")


def synthetic_rows(count: int, *, seed: int = 1, days: int = 30) -> list[ChargeRow]:
    """``count`` journal rows of turns spread over ``days`` days from ``START``."""
    rng = random.Random(seed)
    teams = [f"team-{n:02d}" for n in range(20)]
    users = [f"cust-{n:03d}" for n in range(500)]
    rows: list[ChargeRow] = []
    turn = 0
    while len(rows) < count:
        turn += 1
        tenant = "acme" if turn % 3 else "globex"
        at = START + timedelta(seconds=rng.randrange(days * 86_400))
        team, user = rng.choice(teams), rng.choice(users)
        for i in range(min(rng.choice((1, 1, 2, 3)), count - len(rows))):
            tokens_in, tokens_out = rng.randrange(50, 4000), rng.randrange(10, 800)
            rows.append(
                ChargeRow(
                    time=at,
                    request_id=f"turn-{turn:09d}",
                    reservation_id=f"rsv_{turn:020d}",
                    tenant_id=tenant,
                    team_id=team,
                    user_id=user,
                    feature_id="order-support" if turn % 4 else "negotiation",
                    model=rng.choice(MODELS),
                    first=i == 0,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_micro_units=tokens_in * 2 + tokens_out * 6,
                    currency_code="USD",
                    price_version="2026-11",
                )
            )
    return rows


def _timed(work: Callable[[], T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = work()
    return time.perf_counter() - began, result


def run(count: int) -> dict[str, Any]:
    """Measure; the figures (seconds, and the export's size in bytes)."""
    rows = synthetic_rows(count)
    end = START + timedelta(days=31)
    figures: dict[str, Any] = {"rows": count}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "journal.parquet"
        figures["export_s"], _ = _timed(lambda: export_parquet(rows, path))
        figures["parquet_bytes"] = path.stat().st_size
        with duckdb.connect() as con:
            journal = read_parquet([path], con=con)

            def report(group_by: list[str]) -> list[ReportRow]:
                return cost_report(
                    journal, group_by=group_by, tenant_id="acme", start=START, end=end
                )

            report(["team"])  # warm-up: the file's metadata
            for name, group_by in (
                ("report_team_s", ["team"]),
                ("report_day_team_model_s", ["day", "team", "model"]),
                ("report_user_s", ["user"]),
            ):
                figures[name], found = _timed(partial(report, group_by))
                figures[name.removesuffix("_s") + "_groups"] = len(found)
            figures["anomalies_team_s"], _ = _timed(
                lambda: anomalies(journal, by="team", tenant_id="acme", start=START, end=end)
            )

        async def charges(
            since: datetime, until: datetime, tenant_id: str | None = None
        ) -> list[ChargeRow]:
            return rows  # the store's rows, handed over as they are

        request = pb.GetCostReportRequest(tenant_id="acme", group_by=[pb.GROUP_BY_TEAM])
        request.start_time.FromDatetime(START)
        request.end_time.FromDatetime(end)

        def rpc() -> int:
            return len(asyncio.run(get_cost_report(charges, request)).rows)

        figures["get_cost_report_s"], _ = _timed(rpc)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, measure, print; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_reports", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="journal rows (1000000)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be positive")
    figures = run(args.rows)
    print(f"{figures['rows']:,} journal rows")
    print(
        f"  export to Parquet          {figures['export_s']:7.2f} s  "
        f"({figures['parquet_bytes'] / 1e6:.1f} MB)"
    )
    print(f"  report by team             {figures['report_team_s']:7.3f} s")
    print(
        f"  report by day, team, model {figures['report_day_team_model_s']:7.3f} s  "
        f"({figures['report_day_team_model_groups']:,} groups)"
    )
    print(f"  report by user             {figures['report_user_s']:7.3f} s")
    print(f"  anomalies by team          {figures['anomalies_team_s']:7.3f} s")
    print(f"  GetCostReport by team      {figures['get_cost_report_s']:7.2f} s  (from rows)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
