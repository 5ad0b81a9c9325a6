"""``waybill shadow-report`` over verdict logs: the figures, JSON, the chart, exit codes."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main


def _line(candidate: str, tool: str, verdict: str, **extra: Any) -> str:
    record = {"candidate": candidate, "tool": tool, "verdict": verdict, "use_case": "negotiation"}
    return json.dumps({**record, **extra})


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "verdicts.jsonl"
    lines = [
        *[_line("v2", "initiate_refund", "agree") for _ in range(6)],
        _line("v2", "initiate_refund", "differ", fields=["amount.minorUnits"]),
        _line("v2", "initiate_refund", "invalid", rule_ids=["payload.malformed_json"]),
        _line("v2", "initiate_refund", "failed"),
        *[_line("v2", "send_notification", "agree") for _ in range(2)],
        _line("large", "initiate_refund", "agree"),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["shadow-report", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_agreement_counts_what_the_candidate_answered(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(str(log), "--json", capsys=capsys)
    assert code == 0
    report = json.loads(out)
    v2 = report["v2"]
    # 8 of the 10 answered calls agreed; the failed one is reported, not counted.
    assert v2["overall"]["compared"] == 10
    assert v2["overall"]["agreement"] == pytest.approx(0.8)
    assert v2["overall"]["failed"] == 1
    refund = v2["tools"]["initiate_refund"]
    assert (refund["agree"], refund["differ"], refund["invalid"]) == (6, 1, 1)
    assert refund["fields"] == {"amount.minorUnits": 1}
    assert refund["rule_ids"] == {"payload.malformed_json": 1}
    assert report["large"]["overall"]["agreement"] == 1.0


def test_the_table_and_the_chart(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "agreement.svg"
    code, out, err = _run(str(log), "--svg-out", str(chart), capsys=capsys)
    assert code == 0
    assert "candidate v2: agreement 80.0% of 10 calls answered (1 failed, 0 skipped)" in out
    assert "amount.minorUnits x1" in out
    svg = chart.read_text()
    assert svg.startswith("<svg")
    assert "initiate_refund" in svg
    assert ">75</text>" in svg  # v2's agreement on initiate_refund, in percent
    assert str(chart) in err


def test_a_candidate_below_the_bar_exits_1(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(str(log), "--min-agreement", "0.9", capsys=capsys)
    assert code == 1
    assert "below 90.0% agreement: v2" in err
    assert "large" not in err
    assert _run(str(log), "--min-agreement", "0.8", capsys=capsys)[0] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("", "holds no verdicts"),
        ('{"candidate": "v2", "tool": "x"}\n', "line 1 is not a shadow verdict"),
        ('{"candidate": "v2", "tool": "x", "verdict": "maybe"}\n', "line 1 is not"),
        ("not json\n", "line 1 is not"),
    ],
)
def test_a_log_that_is_not_verdicts_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "verdicts.jsonl"
    if content is not None:
        path.write_text(content)
    code, _, err = _run(str(path), capsys=capsys)
    assert code == 2
    assert message in err
    assert _run(str(path), "--min-agreement", "2", capsys=capsys)[0] == 2


def test_main_module_help_lists_the_command() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "shadow-report" in out.getvalue()
