"""``waybill report weekly`` over two weeks of turns and charges written with the real audit
log and ledger exporters: the figures (computed here independently), the page's charts and
sections, week over week, an anomaly, exit codes, an empty week."""

from __future__ import annotations

import json
import re
import statistics
import sys
import xml.dom.minidom
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from ledger.charges import ChargeRow
from ledger.reports import export_parquet as export_ledger
from runtime.audit.export import export_parquet as export_audit
from runtime.audit.log import AuditLog
from runtime.audit.record import AuditRecord, ToolCall

WEEK = "2026-W46"
"""Monday 2026-11-09 to Sunday 2026-11-15; the week before is 2026-W45 (from 2026-11-02)."""
START = datetime(2026, 11, 9, tzinfo=UTC)
PREVIOUS = START - timedelta(days=7)
SPIKE = date(2026, 11, 12)
"""acme/support costs 4x its usual on this day."""


@dataclass(frozen=True)
class Turn:
    time: datetime
    tenant: str
    intent: str
    worker: str = "WORKER_TRACKING"
    tools: tuple[ToolCall, ...] = ()
    outcome: str = "OK"
    latency_us: int = 100_000


def _turns() -> list[Turn]:
    turns: list[Turn] = []
    for week, tracking_per_day in ((PREVIOUS, 4), (START, 6)):
        for day in range(7):
            at = week + timedelta(days=day, hours=9)
            for n in range(tracking_per_day):
                tenant = "acme" if n % 2 == 0 else "globex"
                latency = 50_000 + 10_000 * n + 1_000 * day + (20_000 if week == START else 0)
                turns.append(
                    Turn(at + timedelta(minutes=n), tenant, "INTENT_TRACKING", latency_us=latency)
                )
            turns.append(
                Turn(
                    at + timedelta(hours=1),
                    "acme",
                    "INTENT_REFUND",
                    worker="WORKER_REFUND",
                    tools=(ToolCall("get_order", "OK"), ToolCall("escalate_to_human", "OK")),
                    latency_us=900_000 + day,
                )
            )
    extra = START + timedelta(days=2, hours=15)
    turns += [
        Turn(extra, "acme", "", worker="", outcome="REFUSED", latency_us=5_000),
        Turn(extra, "globex", "", worker="", outcome="RESOURCE_EXHAUSTED:BUDGET_EXHAUSTED"),
        Turn(extra, "globex", "INTENT_TRACKING", outcome="UNAVAILABLE:WORKER_DOWN"),
        Turn(extra, "acme", "INTENT_HUMAN_HANDOFF", worker="WORKER_HUMAN"),
        # A failed escalation is not a handover.
        Turn(
            extra,
            "acme",
            "INTENT_REFUND",
            worker="WORKER_REFUND",
            tools=(ToolCall("escalate_to_human", "UNAVAILABLE"),),
            outcome="UNAVAILABLE",
        ),
        # Outside both weeks: never counted.
        Turn(START + timedelta(days=7), "acme", "INTENT_TRACKING"),
        Turn(PREVIOUS - timedelta(seconds=1), "acme", "INTENT_TRACKING"),
    ]
    return sorted(turns, key=lambda t: t.time)


def _records(turns: list[Turn]) -> list[AuditRecord]:
    return [
        AuditRecord(
            time=t.time,
            request_id=f"req-{i:05d}",
            tenant_id=t.tenant,
            team_id="support",
            intent=t.intent,
            worker=t.worker,
            tools=t.tools,
            models=("triton/llama-8b",),
            latency_us=t.latency_us,
            outcome=t.outcome,
        )
        for i, t in enumerate(turns)
    ]


def _charges() -> list[ChargeRow]:
    """Every day from 2026-10-26 to 2026-11-15: acme/support 1.00 USD a day on llama (2.00
    this week), globex/sales 0.50 on gpt; acme/support 4x on SPIKE."""
    rows: list[ChargeRow] = []
    day0 = datetime(2026, 10, 26, 10, tzinfo=UTC)
    for n in range(21):
        at = day0 + timedelta(days=n)
        for tenant, team, model, usual in (
            ("acme", "support", "triton/llama-8b", 1_000_000),
            ("globex", "sales", "openai/gpt-4o-mini", 500_000),
        ):
            cost = usual
            if team == "support" and at >= START:
                cost *= 2
            if team == "support" and at.date() == SPIKE:
                cost *= 4
            rows.append(
                ChargeRow(
                    time=at,
                    request_id=f"{tenant}-{n}",
                    reservation_id=f"rsv-{tenant}-{n}",
                    tenant_id=tenant,
                    team_id=team,
                    user_id="",
                    feature_id="order-support",
                    model=model,
                    first=True,
                    input_tokens=100,
                    output_tokens=10,
                    cost_micro_units=cost,
                    currency_code="USD",
                    price_version="2026-11",
                )
            )
    return rows


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    log = tmp_path / "audit-log"
    with AuditLog(log) as writer:
        for record in _records(_turns()):
            writer.append(record)
    audit, ledger = tmp_path / "audit.parquet", tmp_path / "ledger.parquet"
    export_audit(log, audit)
    export_ledger(_charges(), ledger)
    budgets = tmp_path / "budgets.json"
    budgets.write_text(json.dumps({"acme/support": 40_000_000}))
    return {"log": log, "audit": audit, "ledger": ledger, "budgets": budgets}


def _run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["report", "weekly", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _in_week(turns: list[Turn], start: datetime) -> list[Turn]:
    return [t for t in turns if start <= t.time < start + timedelta(days=7)]


def _change(this: float, last: float) -> float:
    return 100.0 * (this - last) / last


def _report(exports: dict[str, Path], out: Path, capsys: Any, *extra: str) -> dict[str, Any]:
    code, stdout, _ = _run(
        "--audit",
        str(exports["audit"]),
        "--ledger",
        str(exports["ledger"]),
        "--budgets",
        str(exports["budgets"]),
        "--week",
        WEEK,
        "--out",
        str(out),
        "--json",
        *extra,
        capsys=capsys,
    )
    assert code == 0
    report: dict[str, Any] = json.loads(stdout)
    return report


def test_volume_endings_and_latency(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(exports, tmp_path / "out", capsys)
    turns = _turns()
    this, last = _in_week(turns, START), _in_week(turns, PREVIOUS)
    assert report["turns"]["this_week"] == len(this) == 42 + 7 + 5
    assert report["turns"]["last_week"] == len(last) == 28 + 7
    assert report["turns"]["change"] == pytest.approx(_change(len(this), len(last)))
    by_intent = {c["key"]: c for c in report["by_intent"]}
    tracking_this = sum(t.intent == "INTENT_TRACKING" for t in this)
    assert by_intent["INTENT_TRACKING"]["this_week"] == tracking_this == 43
    assert by_intent["INTENT_TRACKING"]["change"] == pytest.approx(_change(43, 28))
    assert by_intent["(none)"] == {"key": "(none)", "this_week": 2, "last_week": 0, "change": None}
    by_tenant = {c["key"]: (c["this_week"], c["last_week"]) for c in report["by_tenant"]}
    assert by_tenant == {
        tenant: (sum(t.tenant == tenant for t in this), sum(t.tenant == tenant for t in last))
        for tenant in ("acme", "globex")
    }
    endings = {k: (v["this_week"], v["last_week"]) for k, v in report["endings"].items()}
    assert endings == {
        "resolved": (42, 28),
        "handed_to_person": (7 + 1, 7),
        "refused": (2, 0),
        "failed": (2, 0),
    }
    latency = {row["intent"]: row for row in report["latency"]}
    tracking = [t.latency_us / 1000 for t in this if t.intent == "INTENT_TRACKING"]
    tracking_last = [t.latency_us / 1000 for t in last if t.intent == "INTENT_TRACKING"]
    quantiles = statistics.quantiles(tracking, n=20, method="inclusive")
    assert latency["INTENT_TRACKING"]["p50_ms"] == pytest.approx(statistics.median(tracking))
    assert latency["INTENT_TRACKING"]["p95_ms"] == pytest.approx(quantiles[18])
    assert latency["INTENT_TRACKING"]["last_week_p95_ms"] == pytest.approx(
        statistics.quantiles(tracking_last, n=20, method="inclusive")[18]
    )


def test_cost_budget_and_anomaly(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(exports, tmp_path / "out", capsys)
    teams = {c["key"]: c for c in report["cost_by_team"]}
    support = teams["acme/support"]
    # This week: six days at 2.00 and the spike at 8.00; last week seven at 1.00.
    assert support["this_week_micro_units"] == 6 * 2_000_000 + 8_000_000
    assert support["last_week_micro_units"] == 7 * 1_000_000
    assert support["change"] == pytest.approx(_change(20, 7))
    # Month to date: November 1st (one day of the week before last) to the 15th.
    assert support["month_to_date_micro_units"] == 8 * 1_000_000 + 20_000_000
    assert support["budget_micro_units"] == 40_000_000
    assert support["budget_used"] == pytest.approx(70.0)
    assert teams["globex/sales"]["change"] == pytest.approx(0.0)
    assert teams["globex/sales"]["budget_micro_units"] is None
    models = {c["key"]: c["this_week_micro_units"] for c in report["cost_by_model"]}
    assert models == {"triton/llama-8b": 20_000_000, "openai/gpt-4o-mini": 3_500_000}
    flagged = {(a["day"], a["dimension"], a["key"]) for a in report["anomalies"]}
    assert flagged == {
        (SPIKE.isoformat(), "team", "support"),
        (SPIKE.isoformat(), "model", "triton/llama-8b"),
    }


def test_the_page_and_the_summary(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        "--audit",
        str(exports["audit"]),
        "--ledger",
        str(exports["ledger"]),
        "--end",
        "2026-11-15",
        "--out",
        str(out),
        capsys=capsys,
    )
    assert code == 0
    page, summary = out / f"weekly-{WEEK}.html", out / f"weekly-{WEEK}.md"
    assert f"wrote {page}" in stdout
    assert f"wrote {summary}" in stdout
    assert "report: 2026-W46: turns, endings and latency" in stderr
    assert "report: 2026-W46: cost, budgets and anomalies" in stderr
    html = page.read_text()
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.DOTALL)
    assert len(svgs) == 3  # turns per day, endings, cost per day
    for svg in svgs:
        xml.dom.minidom.parseString(svg)
    assert 'stroke="#d00000"' in html  # the anomaly circled
    for section in ("week-over-week", "volume", "endings", "cost", "latency", "anomalies"):
        assert f'id="{section}"' in html
    text = summary.read_text()
    assert text.startswith(f"# Weekly ops report {WEEK}")
    assert "| turns | 54 | 35 | +54.3% |" in text
    assert "| cost (USD) | 23.50 USD | 10.50 USD | +123.8% |" in text
    assert "| cost anomalies (3x rule) | 2 | 0 | +2 |" in text
    assert "intent INTENT_TRACKING: 28 -> 43 turns (+53.6%)" in text
    # The 7 days before the spike: four at 1.00, three at 2.00.
    assert f"- {SPIKE.isoformat()} acme team support: 8.00 USD vs 1.43 USD a day (5.6x)" in text


def test_fail_on_anomaly_and_from_audit(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _, stderr = _run(
        "--from-audit",
        str(exports["log"]),
        "--ledger",
        str(exports["ledger"]),
        "--week",
        WEEK,
        "--out",
        str(out),
        "--fail-on-anomaly",
        capsys=capsys,
    )
    assert code == 1
    assert "2 anomalies in 2026-W46" in stderr
    assert (out / f"weekly-{WEEK}.html").is_file()
    assert len(list((out / "exports").glob("audit-*.parquet"))) == 1
    assert "| turns | 54 | 35 |" in (out / f"weekly-{WEEK}.md").read_text()
    # A week with no anomaly passes.
    code, _, _ = _run(
        "--ledger", str(exports["ledger"]), "--week", "2026-W45", "--out", str(out),
        "--fail-on-anomaly", capsys=capsys,
    )  # fmt: skip
    assert code == 0


def test_a_week_without_data(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        "--audit", str(exports["audit"]), "--ledger", str(exports["ledger"]),
        "--week", "2027-W10", "--out", str(out), "--json", capsys=capsys,
    )  # fmt: skip
    assert code == 0
    assert "no turns and no charges in 2027-W10" in stderr
    report = json.loads(stdout)
    assert report["empty"] is True
    assert report["turns"] == {"key": "turns", "this_week": 0, "last_week": 0, "change": None}
    assert report["cost_by_team"] == []
    assert report["anomalies"] == []
    assert "**No turns and no charges in 2027-W10.**" in (out / "weekly-2027-W10.md").read_text()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--week", "2026-W99", "--ledger", "x.parquet"],
        ["--week", "November", "--ledger", "x.parquet"],
        ["--ledger", "missing.parquet"],
        ["--audit", "LEDGER"],
        ["--ledger", "AUDIT"],
        ["--audit", "AUDIT", "--from-audit", "."],
        ["--ledger", "LEDGER", "--budgets", "missing.json"],
    ],
)
def test_usage_and_unreadable_input(
    argv: list[str],
    exports: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = {"LEDGER": str(exports["ledger"]), "AUDIT": str(exports["audit"])}
    argv = [names.get(a, a) for a in argv]
    code, _, stderr = _run(*argv, "--out", str(tmp_path / "out"), capsys=capsys)
    assert code == 2
    assert stderr.startswith("report: ")
    assert not list((tmp_path / "out").glob("weekly-*"))


def test_from_ledger_reads_the_charges_and_the_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from ledger.core import PricedGeneration, PricedUsage, ReserveInput
    from ledger.embedded_store import EmbeddedLedgerStore
    from ledger.settings import DIR_ENV

    now = datetime.now(UTC)

    async def charge() -> None:
        store = await EmbeddedLedgerStore.open(tmp_path / "ledger", default_limit=10**9, ttl_s=60)
        await store.set_budget("acme", "support", 5_000_000, now=now)
        for n, team in enumerate(("support", "sales")):
            held = await store.reserve(
                ReserveInput(f"turn-{n}", "acme", team, "", "order-support", 1_000_000), now=now
            )
            generation = PricedGeneration("openai/gpt-4o-mini", 100, 10, 1_000_000)
            await store.commit(
                "acme", held.reservation_id, PricedUsage((generation,), "2026-11"), now=now
            )
        await store.close()

    asyncio.run(charge())
    monkeypatch.setenv(DIR_ENV, str(tmp_path / "ledger"))
    monkeypatch.setenv("WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS", "8000000")
    monkeypatch.delenv("WAYBILL_LEDGER_POSTGRES_URL", raising=False)
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        "--from-ledger", "--end", now.date().isoformat(), "--out", str(out), "--json",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0
    assert "report: reading the teams' budgets from the ledger" in stderr
    teams = {c["key"]: c for c in json.loads(stdout)["cost_by_team"]}
    assert teams["acme/support"]["this_week_micro_units"] == 1_000_000
    assert teams["acme/support"]["budget_micro_units"] == 5_000_000
    # Month to date is the month of the week's Sunday: a week across two months counts the
    # second one's days only.
    sunday = now.date() + timedelta(days=6 - now.weekday())
    month_to_date = 1_000_000 if sunday.month == now.month else 0
    assert teams["acme/support"]["month_to_date_micro_units"] == month_to_date
    assert teams["acme/support"]["budget_used"] == pytest.approx(100 * month_to_date / 5_000_000)
    assert teams["acme/sales"]["budget_micro_units"] == 8_000_000  # the ledger's default
    assert len(list((out / "exports").glob("ledger-*.parquet"))) == 1


def test_the_default_week_is_the_last_complete_one(
    exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli import report
    from cli.main import build_parser

    out = tmp_path / "out"
    args = build_parser().parse_args(
        ["report", "weekly", "--ledger", str(exports["ledger"]), "--out", str(out)]
    )
    wednesday = date(2026, 11, 18)  # in 2026-W47, not over yet
    assert report.run(args, out=sys.stdout, err=sys.stderr, today=lambda: wednesday) == 0
    assert f"wrote {out / f'weekly-{WEEK}.md'}" in capsys.readouterr().out
