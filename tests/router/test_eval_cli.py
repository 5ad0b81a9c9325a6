"""``waybill eval-router``: any JSONL file plus a mapping, a table, a JSON report, one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from router.settings import DEFAULT_EXEMPLARS
from tests.embeddings.model import require_model

FIELDS = {
    "in_scope_accuracy",
    "macro_f1",
    "oos_precision",
    "oos_recall",
    "in_scope_false_rejection",
    "rows",
}


def _data(tmp_path: Path) -> tuple[Path, Path]:
    rows = [
        ("where the heck is my parcel", "status"),
        ("when is my box arriving", "eta"),
        ("I'd like my money back for the kettle", "money"),
        ("how do I bake sourdough bread", "cooking"),
        ("what's a good movie tonight", "movies"),
    ]
    data = tmp_path / "theirs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "text": t, "tag": y}) + "\n" for i, (t, y) in enumerate(rows)
        )
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "label_field": "tag",
                "labels": {
                    "status": "tracking",
                    "eta": "INTENT_TRACKING_ETA",
                    "money": "INTENT_NEGOTIATION_REFUND_REQUEST",
                },
                "default": "out_of_scope",
            }
        )
    )
    return data, mapping


def test_a_new_data_set_is_scored_without_code_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_model()
    data, mapping = _data(tmp_path)
    report = tmp_path / "report.json"
    code = main(
        [
            "eval-router",
            "--data",
            str(data),
            "--mapping",
            str(mapping),
            "--portion",
            "all",
            "--json-out",
            str(report),
            "--curve",
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    headline = json.loads(out.strip().splitlines()[-1])
    assert set(headline) >= FIELDS
    assert headline["rows"] == 5
    assert headline["in_scope_rows"] == 3
    assert headline["oos_rows"] == 2
    assert headline["in_scope_accuracy"] == 1.0
    assert headline["oos_recall"] == 1.0
    assert "confusion" in out
    assert "threshold curve" in out
    # Scored by worker: the ETA row counts as tracking too.
    saved = json.loads(report.read_text())
    assert saved["report"]["confusion"]["tracking"] == {"tracking": 2}
    # The naive baseline is scored on the same rows, in the same run.
    assert set(headline["baseline"]) >= FIELDS - {"rows"}
    assert saved["baseline_report"]["rows"] == 5
    assert "error ratio" in out
    assert len(saved["report"]["curve"]) > 5


def test_intent_level_scores_the_intent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_model()
    data, mapping = _data(tmp_path)
    report = tmp_path / "report.json"
    args = ["eval-router", "--data", str(data), "--mapping", str(mapping), "--portion", "all"]
    code = main([*args, "--level", "intent", "--json-out", str(report), "--quiet"])
    assert code == 0
    confusion = json.loads(report.read_text())["report"]["confusion"]
    assert confusion["tracking"] == {"tracking": 1}
    assert confusion["INTENT_TRACKING_ETA"] == {"INTENT_TRACKING_ETA": 1}


def test_the_suite_reports_per_file_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_model()
    from cli import eval_router

    data, mapping = _data(tmp_path)
    monkeypatch.setattr(eval_router, "_suite", lambda: [(data, mapping)])
    report = tmp_path / "suite.json"
    code = main(["eval-router", "--portion", "all", "--json-out", str(report), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    headline = json.loads(out.strip().splitlines()[-1])
    assert headline["suite"] is True
    assert headline["rows"] == 5
    assert headline["per_worker"]["tracking"] == 1.0
    assert "naive kNN" in out
    saved = json.loads(report.read_text())
    assert [f["file"] for f in saved["files"]] == ["theirs.jsonl"]
    assert report.with_suffix(".svg").read_text().startswith("<svg")


def test_the_held_out_exemplars_are_scored_against_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_model()
    code = main(
        [
            "eval-router",
            "--data",
            str(DEFAULT_EXEMPLARS),
            "--json-out",
            str(tmp_path / "r.json"),
            "--quiet",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    headline = json.loads(captured.out.strip().splitlines()[-1])
    assert headline["portion"] == "test"
    assert 100 < headline["rows"] < 200
    assert headline["macro_f1"] > 0.5


def test_unmapped_labels_fail_with_their_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, mapping = _data(tmp_path)
    mapping.write_text(json.dumps({"label_field": "tag", "labels": {"status": "tracking"}}))
    code = main(["eval-router", "--data", str(data), "--mapping", str(mapping), "--portion", "all"])
    assert code == 1
    err = capsys.readouterr().err
    assert "labels with no mapping" in err
    assert "cooking" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["eval-router", "--level", "sentence"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit) as raised:
        main(["eval-router", "--data", "x.jsonl", "--threshold", "1.5"])
    assert raised.value.code == 2
    assert "not in 0..1" in capsys.readouterr().err
