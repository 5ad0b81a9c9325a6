"""``waybill costs`` over a generated journal export: the figures, JSON, the table, anomalies,
the chart, exit codes."""

from __future__ import annotations

import json
import xml.dom.minidom
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from ledger.charges import ChargeRow
from ledger.reports import export_parquet

DAY0 = datetime(2026, 11, 1, tzinfo=UTC)
SPIKE_DAY = 9
"""acme's support team costs 4x its usual on this day (index from DAY0)."""


def _rows() -> list[ChargeRow]:
    """Ten days: each day each team of each tenant has two turns, the first with two
    generations (llama 1000 + gpt 500 micro units), the second with one (llama 1000)."""
    rows: list[ChargeRow] = []
    for day in range(10):
        for tenant in ("acme", "globex"):
            for team in ("support", "sales"):
                spike = 4 if (tenant, team, day) == ("acme", "support", SPIKE_DAY) else 1
                for turn, generations in enumerate(
                    (
                        [("triton/llama-8b", 100, 10, 1000), ("openai/gpt-4o-mini", 50, 5, 500)],
                        [("triton/llama-8b", 100, 10, 1000)],
                    )
                ):
                    request_id = f"{tenant}-{team}-{day}-{turn}"
                    for i, (model, tokens_in, tokens_out, cost) in enumerate(generations):
                        rows.append(
                            ChargeRow(
                                time=DAY0 + timedelta(days=day, hours=8 + turn),
                                request_id=request_id,
                                reservation_id=f"rsv_{request_id}",
                                tenant_id=tenant,
                                team_id=team,
                                user_id="cust-1",
                                feature_id="order-support",
                                model=model,
                                first=i == 0,
                                input_tokens=tokens_in,
                                output_tokens=tokens_out,
                                cost_micro_units=cost * spike,
                                currency_code="USD",
                                price_version="2026-11",
                            )
                        )
    return rows


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "exports" / "journal.parquet"
    export_parquet(_rows(), path)
    return path


def _run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["costs", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_report_by_team_and_model(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        str(export), "--tenant", "acme", "--group-by", "team,model", "--json", capsys=capsys
    )
    assert code == 0
    report = json.loads(out)
    figures = {
        (r["keys"]["team"], r["keys"]["model"]): (
            r["requests"],
            r["input_tokens"],
            r["cost"]["micro_units"],
        )
        for r in report["rows"]
    }
    # support on llama: 2 calls a day for 10 days at 1000, 4000 on the spike day.
    assert figures == {
        ("support", "triton/llama-8b"): (20, 2000, 9 * 2000 + 2 * 4000),
        ("support", "openai/gpt-4o-mini"): (0, 500, 9 * 500 + 2000),
        ("sales", "triton/llama-8b"): (20, 2000, 20_000),
        ("sales", "openai/gpt-4o-mini"): (0, 500, 5000),
    }
    most_expensive = report["rows"][0]["keys"]
    assert (most_expensive["team"], most_expensive["model"]) == ("support", "triton/llama-8b")
    (total,) = report["totals"]
    assert total["requests"] == 40
    assert total["cost"] == {
        "currency_code": "USD",
        "micro_units": 26_000 + 6_500 + 20_000 + 5_000,
        "amount": "0.057500",
    }
    assert "anomalies" not in report


def test_the_period_includes_since_and_excludes_until(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        str(export),
        "--tenant",
        "globex",
        "--since",
        "2026-11-03",
        "--until",
        "2026-11-05",
        "--group-by",
        "day",
        "--json",
        capsys=capsys,
    )
    assert code == 0
    days = {r["keys"]["day"]: r["requests"] for r in json.loads(out)["rows"]}
    assert days == {"2026-11-03": 4, "2026-11-04": 4}


def test_the_table_is_aligned_with_costs_in_major_units(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(str(export), "--group-by", "tenant,team", capsys=capsys)
    assert code == 0
    title, *table = out.strip().splitlines()
    assert title == "costs of every tenant, from the first charge on, by tenant, team"
    assert table[0] == "tenant  team     requests  input tokens  output tokens        cost"
    assert len({len(line) for line in table}) == 1  # every line as wide, columns aligned
    assert table[1].split() == ["acme", "support", "20", "2,500", "250", "0.0325", "USD"]
    assert table[-1].split() == ["total", "80", "10,000", "1,000", "0.1075", "USD"]


def test_a_directory_of_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows()
    export_parquet(rows[:100], tmp_path / "a.parquet")
    export_parquet(rows[100:], tmp_path / "more" / "b.parquet")
    code, out, _ = _run(str(tmp_path), "--json", capsys=capsys)
    assert code == 0
    assert json.loads(out)["totals"][0]["cost"]["micro_units"] == sum(
        r.cost_micro_units for r in rows
    )


def test_anomalies_are_listed_and_fail_when_asked(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(str(export), "--anomalies", "--json", capsys=capsys)
    assert code == 0
    (found,) = json.loads(out)["anomalies"]
    assert (found["day"], found["tenant_id"], found["dimension"], found["key"]) == (
        (DAY0 + timedelta(days=SPIKE_DAY)).date().isoformat(),
        "acme",
        "team",
        "support",
    )
    assert found["ratio"] == 4.0
    assert found["cost"]["micro_units"] == 4 * 2500
    assert found["trailing_average_micro_units"] == 2500
    assert found["history_days"] == 7

    code, out, err = _run(str(export), "--fail-on-anomaly", capsys=capsys)
    assert code == 1
    assert "acme team support: 0.0100 USD vs 0.0025 USD a day over 7 days (4.0x)" in out
    assert "1 anomaly found" in err
    assert _run(str(export), "--fail-on-anomaly", "--tenant", "globex", capsys=capsys)[0] == 0
    code, out, _ = _run(str(export), "--anomalies", "--anomaly-ratio", "4.1", capsys=capsys)
    assert (code, "no anomalies" in out) == (0, True)


def test_the_chart_of_cost_per_day_per_team(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "charts" / "costs.svg"
    code, _, err = _run(
        str(export), "--tenant", "acme", "--anomalies", "--svg-out", str(chart), capsys=capsys
    )
    assert code == 0
    assert str(chart) in err
    svg = chart.read_text()
    xml.dom.minidom.parseString(svg)  # well-formed
    assert svg.count("<polyline") == 2
    assert ">support</text>" in svg
    assert ">sales</text>" in svg
    assert "2026-11-01" in svg
    assert 'stroke="#d00000"' in svg  # the anomaly circled
    assert "support 2026-11-10: 0.01 USD" in svg


def test_help_names_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["costs", "--help"])
    assert exited.value.code == 0
    assert "Exit statuses" in capsys.readouterr().out


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(str(tmp_path / "missing.parquet"), capsys=capsys)
    assert (code, "no such file" in err) == (2, True)

    not_parquet = tmp_path / "notes.parquet"
    not_parquet.write_text("team,cost\nsupport,1\n")
    code, _, err = _run(str(not_parquet), capsys=capsys)
    assert (code, err.startswith("costs: ")) == (2, True)

    other = tmp_path / "other.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 1 AS team_id) TO '{other}' (FORMAT parquet)")
    code, _, err = _run(str(other), capsys=capsys)
    assert (code, "not a journal export: missing columns time" in err) == (2, True)

    (tmp_path / "empty").mkdir()
    code, _, err = _run(str(tmp_path / "empty"), capsys=capsys)
    assert (code, "holds no .parquet files" in err) == (2, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--group-by", "team,region"], "unknown dimension region"),
        (["--since", "2026-11-05", "--until", "2026-11-05"], "--until must be after --since"),
        (["--anomaly-ratio", "0"], "--anomaly-ratio must be > 0"),
        (["--anomalies", "--anomaly-by", "team,day"], "anomalies are found per day already"),
    ],
)
def test_usage_errors_exit_2(
    export: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(str(export), *argv, capsys=capsys)
    assert code == 2
    assert message in err


def test_a_date_that_is_not_one_exits_2(export: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["costs", str(export), "--since", "last tuesday"])
    assert exited.value.code == 2


def test_from_ledger_exports_the_running_ledgers_journal_and_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from waybill.common.v1 import money_pb2, usage_pb2
    from waybill.ledger.v1 import ledger_service_pb2 as pb

    from ledger.embedded_store import EmbeddedLedgerStore
    from ledger.service import LedgerServicer
    from llm_pool import pricing

    async def two_turns() -> None:
        store = await EmbeddedLedgerStore.open(tmp_path / "ledger", default_limit=10**9, ttl_s=60)
        servicer = LedgerServicer(store, pricing.load())
        for n, tokens in enumerate((1000, 3000)):
            held = await servicer.Reserve(
                pb.ReserveRequest(
                    request_id=f"turn-0000{n}",
                    tenant_id="acme-retail",
                    team_id="support",
                    feature_id="order-support",
                    estimate=money_pb2.Cost(currency_code="USD", micro_units=100_000),
                ),
                None,
            )
            usage = usage_pb2.Usage()
            usage.generations.add(backend="openai", model="gpt-4o-mini", input_tokens=tokens)
            await servicer.Commit(
                pb.CommitRequest(
                    reservation_id=held.reservation_id, usage=usage, tenant_id="acme-retail"
                ),
                None,
            )
        # The ledger is still "running": a line it is writing must not be cut by a reader.
        with (tmp_path / "ledger" / "journal.jsonl").open("ab") as fh:
            fh.write(b'{"half a li')
        await store.close()

    asyncio.run(two_turns())
    monkeypatch.setenv("WAYBILL_LEDGER_DIR", str(tmp_path / "ledger"))
    monkeypatch.delenv("WAYBILL_LEDGER_POSTGRES_URL", raising=False)
    out = tmp_path / "costs.parquet"
    assert main(["costs", "--from-ledger", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["rows"]
    assert row["keys"] == {"team": "support"}
    assert row["requests"] == 2
    # gpt-4o-mini input: 0.15 USD per 1M tokens -> 150 + 450 micro units
    assert row["cost"]["micro_units"] == 600
    assert (tmp_path / "ledger" / "journal.jsonl").read_bytes().endswith(b'{"half a li')
    assert main(["costs"]) == 2  # neither exports nor --from-ledger
