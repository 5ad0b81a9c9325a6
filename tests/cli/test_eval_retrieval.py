"""``waybill eval-retrieval`` on a small knowledge base and golden file: the tables, the
report files and the one JSON line, with figures that follow the rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.retrieval.conftest import document_text


def _golden(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _row(n: int, question: str, expected: list[str], **extra: object) -> dict[str, object]:
    return {
        "id": f"t{n:04d}",
        "tenant_id": "acme-retail",
        "category": extra.pop("category", "exact_code"),
        "question": question,
        "region": "US-CA",
        "product_category": "",
        "tier": "gold",
        "as_of": "2026-12-10",
        "expected_chunk_ids": expected,
        "answerable": bool(expected),
        "answer_contains": extra.pop("answer_contains", []),
    }


def test_a_run_prints_tables_writes_reports_and_ends_with_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYBILL_KB_VECTOR_CACHE", str(tmp_path / "vectors"))
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text(
        document_text(
            doc_id="acme-fees",
            sections={
                "Cancellation fees": "Under fee schedule CXL-9 cancelling in transit costs 8 USD.",
                "Exchanges": "A different size can be exchanged free of charge within 30 days.",
            },
        )
    )
    rows = [
        _row(n, q, e, answer_contains=a)
        for n, (q, e, a) in enumerate(
            [
                ("what does CXL-9 charge in transit?", ["acme-fees#cancellation-fees"], ["8 USD"]),
                ("can I swap for a bigger size?", ["acme-fees#exchanges"], ["30 days"]),
                ("do you price match?", [], []),
            ]
        )
    ]
    golden = tmp_path / "golden.jsonl"
    _golden(golden, rows)
    out_dir = tmp_path / "out"
    code = main(
        [
            "eval-retrieval",
            "--data",
            str(golden),
            "--kb",
            str(kb),
            "--portion",
            "all",
            "--out",
            str(out_dir),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Retrieval by mode" in printed
    for mode in ("lexical", "dense", "hybrid", "hybrid+rerank"):
        assert mode in printed
    line = json.loads(printed.strip().splitlines()[-1])
    assert line["rows"] == 3
    assert line["recall_at_5"] == 1.0  # two chunks in all: both found in the top 5
    assert line["foreign_chunks"] == 0
    assert line["grounded_rate"] == 1.0
    report = json.loads((out_dir / "eval-retrieval-all.json").read_text())
    assert report["total"]["answerable"] == 2
    assert (out_dir / "eval-retrieval-all.svg").read_text().startswith("<svg")


def test_a_bad_golden_file_fails_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_text('{"id": "x"}\n')
    assert main(["eval-retrieval", "--data", str(golden)]) == 1
    assert f"{golden}:1" in capsys.readouterr().err
