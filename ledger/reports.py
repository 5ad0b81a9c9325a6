"""Cost reports over the ledger's journal of charges, with DuckDB.

The journal is a DuckDB relation with the columns of ``ledger.charges.COLUMNS``: read from
Parquet exports (``read_parquet``) or built from ``ChargeRow``s (``journal_relation``).
``export_parquet`` writes rows as such an export. Reports are plain functions of a journal:

- ``cost_report`` sums requests, tokens and cost by dimensions (``DIMENSIONS``), most
  expensive first;
- ``anomalies`` flags a day whose cost is at least ``ratio`` times the trailing daily average;
- ``get_cost_report`` is the body of the ledger's GetCostReport RPC, over a store's charges.

Periods are half-open: ``start`` inclusive, ``end`` exclusive, as in the contract. Days are
UTC calendar days whatever the session's time zone.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
from waybill.common.v1 import money_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb

from ledger.charges import COLUMNS, ChargeRow
from runtime.errors import InvalidArgument
from runtime.progress import Progress

DIMENSIONS: Mapping[str, str] = {
    "tenant": "tenant_id",
    "team": "team_id",
    "feature": "feature_id",
    "model": "model",
    "user": "user_id",
    "day": "time",
}
"""Dimensions a report can group by: name -> the journal column it reads (``day``: the UTC
calendar date of ``time``, as ``YYYY-MM-DD``)."""

REPORT_COLUMNS = frozenset(
    {
        "time",
        "tenant_id",
        "first",
        "input_tokens",
        "output_tokens",
        "cost_micro_units",
        "currency_code",
    }
)
"""The columns every report reads, whatever it groups by."""

CHUNK_ROWS = 100_000
"""Rows converted and appended to DuckDB at a time (bounds memory; paces progress)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DOMAIN = "ledger.waybill"
_UTC_DAY = "(DATE '1970-01-01' + CAST(epoch_us(time) // 86400000000 AS INTEGER))"
# The UTC date of a TIMESTAMPTZ from its microseconds since the epoch: independent of the
# session's time zone and ten times faster than timezone('UTC', time)::DATE on 1M rows.


class ExportError(ValueError):
    """Files cannot be read as journal exports (none found, not Parquet, columns missing)."""


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One group of a cost report."""

    keys: tuple[str, ...]
    """Values of the grouping dimensions, in the order they were asked for."""
    requests: int
    """Committed turns (rows with ``first``), each counted once."""
    input_tokens: int
    output_tokens: int
    cost_micro_units: int
    currency_code: str
    """Rows in different currencies are different groups: costs are never converted."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A day whose cost is at least ``ratio`` times the trailing daily average of its key."""

    tenant_id: str
    dimension: str
    """What ``key`` is a value of (``team``, ``user``, ...)."""
    key: str
    day: date
    """UTC calendar day."""
    cost_micro_units: int
    trailing_average_micro_units: float
    """Average daily cost over ``history_days`` days before ``day`` (quiet days count as 0)."""
    ratio: float | None
    """``cost / trailing average``; None when the average is 0 (spend out of nothing)."""
    history_days: int
    """Days the average is over: the window, cut at the key's first day in the journal."""
    currency_code: str


class ChargesReader(Protocol):
    """A ledger store's ``charges``: the journal's rows committed in ``[since, until)``."""

    async def __call__(
        self, since: datetime, until: datetime, tenant_id: str | None = None
    ) -> list[ChargeRow]: ...


def _aware(moment: datetime | None, name: str) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _query(relation: duckdb.DuckDBPyRelation, sql: str) -> duckdb.DuckDBPyRelation:
    """``sql`` over ``relation``, which it names ``journal``."""
    result = relation.query("journal", sql)
    if result is None:  # only statements other than queries return nothing
        raise TypeError("not a query")
    return result


def _chunks(rows: Iterable[ChargeRow], size: int) -> Iterator[list[ChargeRow]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _columns(
    chunk: Sequence[ChargeRow], columns: Sequence[tuple[str, str]]
) -> dict[str, np.ndarray[Any, Any]]:
    """The chunk as one NumPy array per column (DuckDB scans them without copies per row)."""
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for name, sql_type in columns:
        if name == "time":
            try:
                micros = [(r.time - _EPOCH) // _MICROSECOND for r in chunk]
            except TypeError:
                raise ValueError("charge times must be timezone-aware") from None
            arrays[name] = np.array(micros, dtype=np.int64).view("datetime64[us]")
        elif sql_type == "VARCHAR":
            arrays[name] = np.array([getattr(r, name) for r in chunk], dtype=object)
        elif sql_type == "BOOLEAN":
            arrays[name] = np.array([getattr(r, name) for r in chunk], dtype=np.bool_)
        else:
            arrays[name] = np.array([getattr(r, name) for r in chunk], dtype=np.int64)
    return arrays


def _select_columns(
    source: str, *, naive_time: bool, columns: Sequence[tuple[str, str]] = COLUMNS
) -> str:
    # A naive TIMESTAMP (NumPy's datetime64, or a file written without a zone) holds UTC:
    # casting it would read it in the session's zone, timezone('UTC', ...) does not.
    time = "timezone('UTC', time)" if naive_time else "CAST(time AS TIMESTAMPTZ)"
    parts = [
        f"{time} AS time" if name == "time" else f'CAST("{name}" AS {sql_type}) AS "{name}"'
        for name, sql_type in columns
    ]
    return f"SELECT {', '.join(parts)} FROM {source}"  # noqa: S608 - fixed names


def journal_relation(
    rows: Iterable[ChargeRow],
    *,
    con: duckdb.DuckDBPyConnection,
    progress: Progress | None = None,
    only: Collection[str] | None = None,
) -> duckdb.DuckDBPyRelation:
    """The rows as a journal: a temporary table of ``con`` with the columns of ``COLUMNS``
    (or ``only`` those named: converting rows costs per column, and a report reads few)."""
    total = len(rows) if isinstance(rows, Sequence) else 0
    table = f"journal_{os.urandom(6).hex()}"
    columns = [(n, t) for n, t in COLUMNS if only is None or n in only]
    declared = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns)
    con.execute(f"CREATE TEMPORARY TABLE {table} ({declared})")
    select = _select_columns(f"{table}_chunk", naive_time=True, columns=columns)
    done = 0
    for chunk in _chunks(rows, CHUNK_ROWS):
        view = f"{table}_chunk"
        con.register(view, _columns(chunk, columns))
        try:
            con.execute(f"INSERT INTO {table} {select}")
        finally:
            con.unregister(view)
        done += len(chunk)
        if progress is not None:
            progress(done, max(total, done))
    return con.table(table)


def export_parquet(
    rows: Iterable[ChargeRow], path: Path, *, progress: Progress | None = None
) -> int:
    """Write the rows to ``path`` as Parquet (zstd); the number of rows written.

    The file appears whole or not at all: it is written next to ``path`` under a temporary
    name, flushed to disk and renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with duckdb.connect() as con:
            journal = journal_relation(rows, con=con, progress=progress)
            written = _count(journal)
            journal.write_parquet(temporary, compression="zstd")
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)  # the rename itself survives a crash
    return written


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _count(journal: duckdb.DuckDBPyRelation) -> int:
    ((count,),) = _query(journal, "SELECT count(*) FROM journal").fetchall()
    return int(count)


def parquet_files(paths: Iterable[Path]) -> list[Path]:
    """The Parquet files named: files as given, directories searched for ``*.parquet``."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith("."))
            if not found:
                raise ExportError(f"{path} holds no .parquet files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ExportError(f"{path}: no such file or directory")
    if not files:
        raise ExportError("no Parquet files given")
    return files


def read_parquet(
    paths: Iterable[Path], *, con: duckdb.DuckDBPyConnection
) -> duckdb.DuckDBPyRelation:
    """The journal held by Parquet exports (files or directories of them).

    Columns are matched by name across files (a newer export may add columns); the
    journal has exactly the columns of ``COLUMNS``, cast to their types."""
    files = [str(p) for p in parquet_files(paths)]
    try:
        raw = con.read_parquet(files, union_by_name=True)
    except duckdb.Error as exc:
        raise ExportError(f"cannot read the Parquet files: {exc}") from None
    missing = [name for name, _ in COLUMNS if name not in raw.columns]
    if missing:
        raise ExportError(f"not a journal export: missing columns {', '.join(missing)}")
    naive = str(dict(zip(raw.columns, raw.types, strict=True))["time"]) == "TIMESTAMP"
    return _query(raw, _select_columns("journal", naive_time=naive))


def _scoped(
    journal: duckdb.DuckDBPyRelation,
    *,
    tenant_id: str | None,
    start: datetime | None,
    end: datetime | None,
) -> duckdb.DuckDBPyRelation:
    # Values go in as constant expressions, never spliced into SQL text.
    column, constant = duckdb.ColumnExpression, duckdb.ConstantExpression
    conditions = []
    if tenant_id is not None:
        conditions.append(column("tenant_id") == constant(tenant_id))
    if start is not None:
        conditions.append(column("time") >= constant(start))
    if end is not None:
        conditions.append(column("time") < constant(end))
    if not conditions:
        return journal
    where = conditions[0]
    for condition in conditions[1:]:
        where = where & condition
    return journal.filter(where)


def _dimension(name: str) -> str:
    """The SQL of a dimension's value."""
    if name not in DIMENSIONS:
        raise ValueError(f"unknown dimension {name!r} (known: {', '.join(DIMENSIONS)})")
    return _UTC_DAY if name == "day" else DIMENSIONS[name]


def cost_report(
    journal: duckdb.DuckDBPyRelation,
    *,
    group_by: Sequence[str],
    tenant_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[ReportRow]:
    """Requests, tokens and cost per group of ``group_by`` (names of ``DIMENSIONS``; none: one
    total per currency) over ``[start, end)`` of one tenant (None: every tenant), most
    expensive first, then by keys.

    ``requests`` counts the rows with ``first``: a turn counts once, in the group of its first
    row. Grouped by model, a turn that used two models counts under its first one only, so
    the requests of every row add up to the turns of the period."""
    _aware(start, "start")
    _aware(end, "end")
    # Grouped on typed values (a day is a DATE), made text after aggregation; ISO dates
    # order as their text does.
    keys = [f"{_dimension(name)} AS k{i}" for i, name in enumerate(group_by)]
    key_refs = [f"k{i}" for i in range(len(group_by))]
    scoped = _scoped(journal, tenant_id=tenant_id, start=start, end=end)
    sql = f"""
        SELECT [{", ".join(f"CAST({k} AS VARCHAR)" for k in key_refs)}]::VARCHAR[] AS keys,
               currency_code,
               count(*) FILTER (WHERE "first") AS requests,
               coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
               coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
               coalesce(sum(cost_micro_units), 0)::BIGINT AS cost
        FROM (SELECT {", ".join([*keys, "*"])} FROM journal)
        GROUP BY {", ".join([*key_refs, "currency_code"])}
        ORDER BY cost DESC, {", ".join([*key_refs, "currency_code"])}
    """  # noqa: S608 - dimensions from DIMENSIONS only
    return [
        ReportRow(
            keys=tuple(found_keys),
            requests=int(requests),
            input_tokens=int(input_tokens),
            output_tokens=int(output_tokens),
            cost_micro_units=int(cost),
            currency_code=str(currency),
        )
        for found_keys, currency, requests, input_tokens, output_tokens, cost in _query(
            scoped, sql
        ).fetchall()
    ]


def anomalies(
    journal: duckdb.DuckDBPyRelation,
    *,
    by: str = "team",
    tenant_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    ratio: float = 3.0,
    window_days: int = 7,
    min_history_days: int = 3,
    min_cost_micro_units: int = 1,
) -> list[Anomaly]:
    """Days in ``[start, end)`` on which a key of ``by`` (per tenant and currency) cost at least
    ``ratio`` times its average daily cost over the ``window_days`` days before.

    The journal is read from ``window_days`` before ``start``, so the first days of the period
    have their history. Days without traffic count as 0 in the average, but only from the key's
    first day in the journal on: before it the key did not exist (or the export does not go
    back that far), so those days are not history. A key needs ``min_history_days`` days of
    history before it can be flagged: a key's first days (a launch, a new team) have no
    baseline to compare with. A day after a quiet window (average 0) is flagged when it costs
    at least ``min_cost_micro_units``, with ``ratio`` None. Days are whole UTC days: give
    midnight bounds, or the days at the edges count only their hours inside the period."""
    _aware(start, "start")
    _aware(end, "end")
    if not ratio > 0 or ratio == float("inf"):
        raise ValueError("ratio must be a positive number")
    if window_days < 1 or not 1 <= min_history_days <= window_days:
        raise ValueError("need window_days >= 1 and 1 <= min_history_days <= window_days")
    if by == "day":
        raise ValueError("anomalies are found per day: judge a team, user, feature or model")
    key = _dimension(by)
    read_from = None if start is None else start - timedelta(days=window_days)
    scoped = _scoped(journal, tenant_id=tenant_id, start=read_from, end=end)
    first_day = "DATE '0001-01-01'" if start is None else f"DATE '{start.astimezone(UTC).date()}'"
    # Integers and a float formatted here, never caller text; a decimal literal keeps
    # `cost * days >= ratio * trailing` exact.
    sql = f"""
        WITH daily AS (
            SELECT tenant_id, CAST({key} AS VARCHAR) AS key, currency_code,
                   {_UTC_DAY} AS day,
                   sum(cost_micro_units)::BIGINT AS cost
            FROM journal GROUP BY ALL
        ), windowed AS (
            SELECT *,
                   min(day) OVER (PARTITION BY tenant_id, key, currency_code) AS since,
                   coalesce(sum(cost) OVER (
                       PARTITION BY tenant_id, key, currency_code ORDER BY day
                       RANGE BETWEEN INTERVAL {int(window_days)} DAYS PRECEDING
                             AND INTERVAL 1 DAYS PRECEDING), 0)::BIGINT AS trailing_cost
            FROM daily
        )
        SELECT tenant_id, key, day, cost, trailing_cost,
               least({int(window_days)}, day - since) AS history, currency_code
        FROM windowed
        WHERE day >= {first_day}
          AND cost >= {int(min_cost_micro_units)}
          AND least({int(window_days)}, day - since) >= {int(min_history_days)}
          AND cost * least({int(window_days)}, day - since) >= {float(ratio)!r} * trailing_cost
        ORDER BY day, tenant_id, key, currency_code
    """  # noqa: S608 - a dimension from DIMENSIONS, numbers and a date
    found = []
    for tenant, value, day, cost, trailing, history, currency in _query(scoped, sql).fetchall():
        average = int(trailing) / int(history)
        found.append(
            Anomaly(
                tenant_id=str(tenant),
                dimension=by,
                key=str(value),
                day=day,
                cost_micro_units=int(cost),
                trailing_average_micro_units=average,
                ratio=int(cost) / average if average else None,
                history_days=int(history),
                currency_code=str(currency),
            )
        )
    return found


def group_by_names(values: Iterable[int]) -> list[str]:
    """The dimension names of ``GroupBy`` values (``GROUP_BY_TEAM`` -> ``team``), matched by
    name so that a dimension added to the contract works once it is in ``DIMENSIONS``."""
    names = []
    for value in values:
        try:
            enum_name = pb.GroupBy.Name(value)
        except ValueError:
            enum_name = str(value)
        name = enum_name.removeprefix("GROUP_BY_").lower()
        if name not in DIMENSIONS:
            raise InvalidArgument(
                f"cannot group a cost report by {enum_name}",
                reason="GROUP_BY_UNSUPPORTED",
                domain=_DOMAIN,
                metadata={"group_by": enum_name},
            )
        names.append(name)
    return names


def _report_of_rows(
    rows: list[ChargeRow],
    *,
    group_by: Sequence[str],
    tenant_id: str,
    start: datetime,
    end: datetime,
) -> list[ReportRow]:
    with duckdb.connect() as con:
        read = REPORT_COLUMNS | {DIMENSIONS[name] for name in group_by}
        journal = journal_relation(rows, con=con, only=read)
        return cost_report(journal, group_by=group_by, tenant_id=tenant_id, start=start, end=end)


async def get_cost_report(
    charges: ChargesReader, request: pb.GetCostReportRequest
) -> pb.GetCostReportResponse:
    """GetCostReport over a store's ``charges``: the request's tenant only, ``[start, end)``.

    The rows are filtered by tenant and period again here, so a store that returned more than
    it was asked for still never shows another tenant's costs."""
    group_by = group_by_names(request.group_by)
    start = request.start_time.ToDatetime(tzinfo=UTC)
    end = request.end_time.ToDatetime(tzinfo=UTC)
    rows = await charges(since=start, until=end, tenant_id=request.tenant_id)
    # DuckDB releases the GIL while it works: keep the event loop serving meanwhile.
    report = await asyncio.to_thread(
        _report_of_rows,
        rows,
        group_by=group_by,
        tenant_id=request.tenant_id,
        start=start,
        end=end,
    )
    return pb.GetCostReportResponse(
        rows=[
            pb.CostReportRow(
                keys=row.keys,
                requests=row.requests,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cost=money_pb2.Cost(
                    currency_code=row.currency_code, micro_units=row.cost_micro_units
                ),
            )
            for row in report
        ]
    )
