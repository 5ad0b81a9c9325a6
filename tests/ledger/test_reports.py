"""Cost reports over the journal: figures checked against sums computed here in Python,
never with the SQL under test."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import duckdb
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from waybill.ledger.v1 import ledger_service_pb2 as pb

from ledger.charges import COLUMNS, NO_MODEL, ChargeRow
from ledger.reports import (
    DIMENSIONS,
    REPORT_COLUMNS,
    ReportRow,
    anomalies,
    cost_report,
    export_parquet,
    get_cost_report,
    group_by_names,
    journal_relation,
    read_parquet,
)
from runtime.errors import InvalidArgument

DAY0 = datetime(2026, 11, 1, tzinfo=UTC)
MODELS = ("triton/llama-8b", "openai/gpt-4o-mini", "composer/templates")


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _turn(
    time: datetime,
    *,
    request_id: str,
    tenant: str = "acme",
    team: str = "support",
    user: str = "cust-1",
    feature: str = "order-support",
    generations: Sequence[tuple[str, int, int, int]] = (("triton/llama-8b", 100, 20, 1500),),
    currency: str = "USD",
) -> list[ChargeRow]:
    """The journal rows of one committed turn: one per (model, in, out, cost) generation."""
    made = generations or ((NO_MODEL, 0, 0, 0),)
    return [
        ChargeRow(
            time=time,
            request_id=request_id,
            reservation_id=f"rsv_{request_id}",
            tenant_id=tenant,
            team_id=team,
            user_id=user,
            feature_id=feature,
            model=model,
            first=i == 0,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_micro_units=cost,
            currency_code=currency,
            price_version="2026-11",
        )
        for i, (model, tokens_in, tokens_out, cost) in enumerate(made)
    ]


def _synthetic(seed: int = 7, turns: int = 600) -> list[ChargeRow]:
    rng = random.Random(seed)
    rows: list[ChargeRow] = []
    for n in range(turns):
        generations = [
            (rng.choice(MODELS), rng.randint(0, 900), rng.randint(0, 300), rng.randint(0, 40_000))
            for _ in range(rng.choice((0, 1, 1, 2, 3)))
        ]
        rows += _turn(
            DAY0 + timedelta(seconds=rng.randint(0, 10 * 86_400 - 1)),
            request_id=f"req-{n:06d}",
            tenant=rng.choice(("acme", "acme", "globex")),
            team=rng.choice(("support", "sales", "returns")),
            user=rng.choice(("cust-1", "cust-2", "cust-3", "")),
            feature=rng.choice(("order-support", "negotiation")),
            generations=generations,
        )
    return rows


def _value(row: ChargeRow, dimension: str) -> str:
    if dimension == "day":
        return row.time.astimezone(UTC).date().isoformat()
    attribute = {"tenant": "tenant_id", "team": "team_id", "feature": "feature_id"}
    attribute |= {"user": "user_id", "model": "model"}
    return str(getattr(row, attribute[dimension]))


def _expected(
    rows: Sequence[ChargeRow],
    group_by: Sequence[str],
    *,
    tenant: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[ReportRow]:
    sums: dict[tuple[tuple[str, ...], str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in rows:
        if tenant is not None and row.tenant_id != tenant:
            continue
        if (start is not None and row.time < start) or (end is not None and row.time >= end):
            continue
        figures = sums[tuple(_value(row, d) for d in group_by), row.currency_code]
        figures[0] += 1 if row.first else 0
        figures[1] += row.input_tokens
        figures[2] += row.output_tokens
        figures[3] += row.cost_micro_units
    found = [
        ReportRow(keys, requests, tokens_in, tokens_out, cost, currency)
        for (keys, currency), (requests, tokens_in, tokens_out, cost) in sums.items()
    ]
    return sorted(found, key=lambda r: (-r.cost_micro_units, r.keys, r.currency_code))


@pytest.mark.parametrize(
    "group_by",
    [
        ["team"],
        ["feature"],
        ["model"],
        ["day"],
        ["user"],
        ["model", "team"],
        ["day", "team", "feature"],
        ["tenant", "user"],
        [],
    ],
)
def test_the_report_sums_each_group(group_by: list[str], con: duckdb.DuckDBPyConnection) -> None:
    rows = _synthetic()
    journal = journal_relation(rows, con=con)
    assert cost_report(journal, group_by=group_by) == _expected(rows, group_by)
    start, end = DAY0 + timedelta(days=2, hours=5), DAY0 + timedelta(days=6)
    assert cost_report(
        journal, group_by=group_by, tenant_id="acme", start=start, end=end
    ) == _expected(rows, group_by, tenant="acme", start=start, end=end)


def test_keys_come_in_the_order_asked(con: duckdb.DuckDBPyConnection) -> None:
    journal = journal_relation(_turn(DAY0, request_id="req-1", team="sales"), con=con)
    (by_model_team,) = cost_report(journal, group_by=["model", "team"])
    (by_team_model,) = cost_report(journal, group_by=["team", "model"])
    assert by_model_team.keys == ("triton/llama-8b", "sales")
    assert by_team_model.keys == ("sales", "triton/llama-8b")


def test_a_turn_counts_once_however_many_generations(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        *_turn(
            DAY0,
            request_id="req-1",
            generations=[
                ("triton/llama-8b", 100, 10, 1000),
                ("openai/gpt-4o-mini", 50, 5, 700),
                ("triton/llama-8b", 30, 3, 300),
            ],
        ),
        *_turn(DAY0, request_id="req-2", generations=[]),  # a tool-only answer
    ]
    journal = journal_relation(rows, con=con)
    assert cost_report(journal, group_by=["team"]) == [
        ReportRow(("support",), 2, 180, 18, 2000, "USD")
    ]
    # By model a turn counts under its first generation's model: the requests add up to 2.
    assert cost_report(journal, group_by=["model"]) == [
        ReportRow(("triton/llama-8b",), 1, 130, 13, 1300, "USD"),
        ReportRow(("openai/gpt-4o-mini",), 0, 50, 5, 700, "USD"),
        ReportRow((NO_MODEL,), 1, 0, 0, 0, "USD"),
    ]


def test_another_tenants_rows_never_appear(con: duckdb.DuckDBPyConnection) -> None:
    rows = _turn(DAY0, request_id="req-1", tenant="acme", team="support") + _turn(
        DAY0, request_id="req-2", tenant="globex", team="support", user="spy"
    )
    journal = journal_relation(rows, con=con)
    assert cost_report(journal, group_by=["team", "user"], tenant_id="acme") == [
        ReportRow(("support", "cust-1"), 1, 100, 20, 1500, "USD")
    ]
    assert cost_report(journal, group_by=["team"], tenant_id="initech") == []


def test_the_period_includes_its_start_and_excludes_its_end(
    con: duckdb.DuckDBPyConnection,
) -> None:
    start, end = DAY0, DAY0 + timedelta(days=1)
    times = {
        "before": start - timedelta(microseconds=1),
        "at-start": start,
        "last": end - timedelta(microseconds=1),
        "at-end": end,
    }
    rows = [row for user, t in times.items() for row in _turn(t, request_id=user, user=user)]
    journal = journal_relation(rows, con=con)
    found = cost_report(journal, group_by=["user"], start=start, end=end)
    assert sorted(r.keys[0] for r in found) == ["at-start", "last"]


def test_most_expensive_first_then_by_keys(con: duckdb.DuckDBPyConnection) -> None:
    spend = {"a-team": 500, "b-team": 900, "c-team": 500, "d-team": 1200}
    rows = [
        row
        for team, cost in spend.items()
        for row in _turn(DAY0, request_id=team, team=team, generations=[("m/x", 1, 1, cost)])
    ]
    journal = journal_relation(rows, con=con)
    assert [r.keys[0] for r in cost_report(journal, group_by=["team"])] == [
        "d-team",
        "b-team",
        "a-team",
        "c-team",
    ]


def test_days_are_utc_days_whatever_the_zone(con: duckdb.DuckDBPyConnection) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    # 05:00 on the 2nd in Kolkata is 23:30 on the 1st in UTC.
    rows = _turn(datetime(2026, 11, 2, 5, 0, tzinfo=kolkata), request_id="req-1")
    con.execute("SET TimeZone = 'Asia/Kolkata'")
    journal = journal_relation(rows, con=con)
    assert [r.keys for r in cost_report(journal, group_by=["day"])] == [("2026-11-01",)]


def test_currencies_are_never_added_together(con: duckdb.DuckDBPyConnection) -> None:
    rows = _turn(DAY0, request_id="req-1") + _turn(DAY0, request_id="req-2", currency="EUR")
    journal = journal_relation(rows, con=con)
    assert {
        (r.keys, r.currency_code, r.cost_micro_units)
        for r in cost_report(journal, group_by=["team"])
    } == {(("support",), "USD", 1500), (("support",), "EUR", 1500)}


def test_an_unknown_dimension_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    journal = journal_relation(_turn(DAY0, request_id="req-1"), con=con)
    with pytest.raises(ValueError, match="unknown dimension 'region'"):
        cost_report(journal, group_by=["region"])


def test_naive_times_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    journal = journal_relation(_turn(DAY0, request_id="req-1"), con=con)
    with pytest.raises(ValueError, match="timezone-aware"):
        cost_report(journal, group_by=["team"], start=datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        journal_relation(_turn(datetime(2026, 11, 1), request_id="req-2"), con=con)


# Parquet


def test_parquet_round_trip_keeps_rows_and_column_types(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    rows = _synthetic(turns=300)
    path = tmp_path / "exports" / "journal.parquet"
    seen: list[tuple[int, int]] = []
    assert export_parquet(rows, path, progress=lambda done, total: seen.append((done, total))) == (
        len(rows)
    )
    assert seen[-1] == (len(rows), len(rows))
    assert [p.name for p in path.parent.iterdir()] == ["journal.parquet"]  # no temporary left
    described = con.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    assert [(name, sql_type) for name, sql_type, *_ in described] == [
        (name, "TIMESTAMP WITH TIME ZONE" if sql_type == "TIMESTAMPTZ" else sql_type)
        for name, sql_type in COLUMNS
    ]
    journal = read_parquet([path], con=con)
    back = [ChargeRow(*values) for values in journal.fetchall()]

    def order(r: ChargeRow) -> tuple[str, bool, str, int, int, int]:
        return (
            r.request_id,
            not r.first,
            r.model,
            r.cost_micro_units,
            r.input_tokens,
            r.output_tokens,
        )

    assert sorted(back, key=order) == sorted(rows, key=order)
    assert cost_report(journal, group_by=["day", "model"]) == _expected(rows, ["day", "model"])


def test_a_failed_export_leaves_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.parquet"
    rows = _turn(DAY0, request_id="req-1")
    export_parquet(rows, path)
    before = path.read_bytes()
    broken = [*rows, replace(rows[0], time=datetime(2026, 11, 1))]
    with pytest.raises(ValueError, match="timezone-aware"):
        export_parquet(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["journal.parquet"]


def test_a_directory_of_exports_reads_as_one_journal(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    rows = _synthetic(turns=200)
    export_parquet(rows[:150], tmp_path / "2026-11-01.parquet")
    export_parquet(rows[150:], tmp_path / "later" / "2026-11-02.parquet")
    journal = read_parquet([tmp_path], con=con)
    assert cost_report(journal, group_by=["team"]) == _expected(rows, ["team"])


# Anomalies


def _daily(
    costs: dict[int, int], *, team: str = "support", user: str = "cust-1"
) -> list[ChargeRow]:
    """One turn at noon on each day (index from DAY0) with its cost."""
    return [
        row
        for day, cost in costs.items()
        for row in _turn(
            DAY0 + timedelta(days=day, hours=12),
            request_id=f"{team}-{user}-{day}",
            team=team,
            user=user,
            generations=[("triton/llama-8b", 10, 10, cost)],
        )
    ]


def test_a_day_at_three_times_the_trailing_average_is_flagged(
    con: duckdb.DuckDBPyConnection,
) -> None:
    week = dict.fromkeys(range(7), 1000)
    rows = _daily({**week, 7: 3000}, team="spiky") + _daily({**week, 7: 2900}, team="calm")
    journal = journal_relation(rows, con=con)
    (found,) = anomalies(journal, by="team")
    assert (found.tenant_id, found.key, found.day) == ("acme", "spiky", DAY0.date() + timedelta(7))
    assert found.cost_micro_units == 3000
    assert found.trailing_average_micro_units == 1000
    assert found.ratio == 3.0
    assert (found.history_days, found.currency_code, found.dimension) == (7, "USD", "team")
    assert {a.key for a in anomalies(journal, by="team", ratio=2.9)} == {"calm", "spiky"}


def test_quiet_days_count_as_zero_from_the_first_day_on(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # 2100 over the 7 days before day 8 (two of them quiet): 300 a day on average.
    rows = _daily({1: 700, 2: 700, 3: 0, 5: 700, 8: 900})
    journal = journal_relation(rows, con=con)
    (found,) = anomalies(journal)
    assert (found.day, found.trailing_average_micro_units, found.history_days) == (
        DAY0.date() + timedelta(8),
        300,
        7,
    )
    # Before its first day a team has no history: day 5 averages the 4 days since then.
    early = anomalies(journal, ratio=1.5)
    assert [(a.day.day, a.history_days, a.trailing_average_micro_units) for a in early] == [
        (6, 4, 350.0),
        (9, 7, 300.0),
    ]


def test_a_short_history_is_not_judged(con: duckdb.DuckDBPyConnection) -> None:
    journal = journal_relation(_daily({0: 100, 1: 100, 2: 5000}), con=con)
    assert anomalies(journal) == []  # two days of history, three needed
    (found,) = anomalies(journal, min_history_days=2)
    assert (found.day.day, found.ratio) == (3, 50.0)


def test_spend_after_a_quiet_week_is_flagged_without_a_ratio(
    con: duckdb.DuckDBPyConnection,
) -> None:
    journal = journal_relation(_daily({0: 100, 8: 50}), con=con)
    (found,) = anomalies(journal)
    assert (found.day.day, found.trailing_average_micro_units, found.ratio) == (9, 0, None)
    assert anomalies(journal, min_cost_micro_units=51) == []


def test_history_before_the_period_is_read_but_not_flagged(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = _daily({0: 100, 1: 100, 2: 100, 3: 900, 4: 100, 5: 100, 6: 100, 7: 100, 8: 2000})
    journal = journal_relation(rows, con=con)
    assert [a.day.day for a in anomalies(journal)] == [4, 9]
    start = DAY0 + timedelta(days=5)
    (found,) = anomalies(journal, start=start, end=start + timedelta(days=7))
    # The average of day 8 reaches back to day 1, before the period.
    assert (found.day.day, found.history_days, found.trailing_average_micro_units) == (
        9,
        7,
        (100 + 100 + 900 + 100 + 100 + 100 + 100) / 7,
    )


def test_anomalies_by_user_and_per_tenant(con: duckdb.DuckDBPyConnection) -> None:
    week = dict.fromkeys(range(7), 1000)
    rows = _daily({**week, 7: 5000}, user="heavy") + _daily(week, user="steady")
    rows += [replace(r, tenant_id="globex") for r in _daily({**week, 7: 9000}, user="heavy")]
    journal = journal_relation(rows, con=con)
    assert [(a.tenant_id, a.key) for a in anomalies(journal, by="user")] == [
        ("acme", "heavy"),
        ("globex", "heavy"),
    ]
    assert [a.key for a in anomalies(journal, by="user", tenant_id="acme")] == ["heavy"]


# GetCostReport


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class CarelessStore:
    """A store whose ``charges`` ignores the tenant it is asked for."""

    def __init__(self, rows: list[ChargeRow]) -> None:
        self.rows = rows
        self.asked: list[tuple[datetime, datetime, str | None]] = []

    async def charges(
        self, since: datetime, until: datetime, tenant_id: str | None = None
    ) -> list[ChargeRow]:
        self.asked.append((since, until, tenant_id))
        return self.rows


async def test_get_cost_report_answers_for_the_requests_tenant_only() -> None:
    rows = _synthetic()
    store = CarelessStore(rows)
    start, end = DAY0 + timedelta(days=1), DAY0 + timedelta(days=8)
    request = pb.GetCostReportRequest(
        tenant_id="globex",
        start_time=_timestamp(start),
        end_time=_timestamp(end),
        group_by=[pb.GROUP_BY_MODEL, pb.GROUP_BY_TEAM],
    )
    response = await get_cost_report(store.charges, request)
    assert store.asked == [(start, end, "globex")]
    expected = _expected(rows, ["model", "team"], tenant="globex", start=start, end=end)
    assert [
        (
            tuple(r.keys),
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cost.micro_units,
            r.cost.currency_code,
        )
        for r in response.rows
    ] == [
        (e.keys, e.requests, e.input_tokens, e.output_tokens, e.cost_micro_units, e.currency_code)
        for e in expected
    ]
    globex_teams = {r.team_id for r in rows if r.tenant_id == "globex"}
    assert {r.keys[1] for r in response.rows} <= globex_teams
    assert sum(r.requests for r in response.rows) == sum(
        1 for r in rows if r.first and r.tenant_id == "globex" and start <= r.time < end
    )


def test_every_group_by_of_the_contract_is_a_dimension() -> None:
    # Matched by name: a value added to the contract (GROUP_BY_USER) maps once it is known here.
    for value in pb.GroupBy.values():
        if value != pb.GROUP_BY_UNSPECIFIED:
            (name,) = group_by_names([value])
            assert name in DIMENSIONS
    assert group_by_names([pb.GROUP_BY_DAY, pb.GROUP_BY_TEAM]) == ["day", "team"]
    assert "user" in DIMENSIONS


@pytest.mark.parametrize("value", [pb.GROUP_BY_UNSPECIFIED, 99])
async def test_an_unknown_group_by_is_invalid_argument(value: int) -> None:
    store = CarelessStore(_turn(DAY0, request_id="req-1"))
    request = pb.GetCostReportRequest(
        tenant_id="acme",
        start_time=_timestamp(DAY0),
        end_time=_timestamp(DAY0 + timedelta(days=1)),
        group_by=[pb.GROUP_BY_TEAM, cast(pb.GroupBy, value)],
    )
    with pytest.raises(InvalidArgument) as raised:
        await get_cost_report(store.charges, request)
    assert raised.value.reason == "GROUP_BY_UNSUPPORTED"
    assert store.asked == []


def test_a_journal_of_only_the_columns_a_report_reads(con: duckdb.DuckDBPyConnection) -> None:
    rows = _synthetic(turns=100)
    read = REPORT_COLUMNS | {DIMENSIONS["model"], DIMENSIONS["day"]}
    journal = journal_relation(rows, con=con, only=read)
    assert set(journal.columns) == read
    assert cost_report(journal, group_by=["model", "day"]) == _expected(rows, ["model", "day"])


def test_anomalies_are_not_judged_by_day(con: duckdb.DuckDBPyConnection) -> None:
    journal = journal_relation(_daily({0: 100}), con=con)
    with pytest.raises(ValueError, match="found per day"):
        anomalies(journal, by="day")
