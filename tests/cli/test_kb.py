"""``waybill kb``: ingest a folder, publish, roll back, show status; exit codes that mean
something and a report a person can read."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from tests.retrieval.conftest import document_text


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_KB_VECTOR_CACHE", str(tmp_path / "vectors"))


def _write(folder: Path, name: str, **kwargs: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(document_text(**kwargs))  # type: ignore[arg-type]


def test_ingest_publishes_then_reports_nothing_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    _write(
        docs,
        "a.md",
        doc_id="acme-a",
        sections={"Fees": "Cancelling is free.", "Window": "30 days."},
    )
    _write(docs, "g.md", doc_id="globex-g", tenant="globex-home", region="DE")
    assert main(["kb", "ingest", str(docs), "--kb-dir", str(kb)]) == 0
    out = capsys.readouterr()
    assert "published v00001-" in out.out
    assert "chunks 3 new or changed, 0 unchanged, 0 removed" in out.out
    assert "embedding changed chunks" in out.err  # the progress bar
    assert main(["kb", "ingest", str(docs), "--kb-dir", str(kb)]) == 0
    assert "nothing changed: v00001-" in capsys.readouterr().out


def test_an_edit_republishes_only_its_chunk_and_rollback_restores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    _write(
        docs,
        "a.md",
        doc_id="acme-a",
        sections={"Fees": "Cancelling is free.", "Window": "30 days."},
    )
    assert main(["kb", "ingest", str(docs), "--kb-dir", str(kb)]) == 0
    _write(
        docs,
        "a.md",
        doc_id="acme-a",
        sections={"Fees": "Cancelling costs 5 USD.", "Window": "30 days."},
    )
    assert main(["kb", "ingest", str(docs), "--kb-dir", str(kb), "--json"]) == 0
    report = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"chunks_indexed": 1' in report
    assert '"chunks_unchanged": 1' in report
    assert '"version": "v00002-' in report
    assert main(["kb", "status", "--kb-dir", str(kb)]) == 0
    status = capsys.readouterr().out
    assert status.startswith("current v00002-")
    assert "acme-retail: 1 documents, 2 chunks" in status
    assert main(["kb", "rollback", "--kb-dir", str(kb)]) == 0
    assert "-> v00001-" in capsys.readouterr().out
    assert main(["kb", "rollback", "--kb-dir", str(kb)]) == 1
    assert "nothing to roll back to" in capsys.readouterr().err


def test_a_rejected_document_publishes_nothing_and_names_file_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    _write(docs, "good.md", doc_id="acme-good")
    _write(docs, "stranger.md", doc_id="acme-x", tenant="initech")
    (docs / "plain.md").write_text("# no front matter\n\n## A\ntext\n")
    assert main(["kb", "ingest", str(docs), "--kb-dir", str(kb)]) == 3
    err = capsys.readouterr().err
    assert f"rejected {docs / 'stranger.md'}" in err
    assert "[client.unknown]" in err
    assert f"rejected {docs / 'plain.md'}" in err
    assert "[front_matter.missing]" in err
    assert "nothing was published" in err
    assert main(["kb", "status", "--kb-dir", str(kb)]) == 0
    assert "no version published" in capsys.readouterr().out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "ingest", str(tmp_path / "missing"), "--kb-dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["kb", "ingest", str(tmp_path / "empty"), "--kb-dir", str(tmp_path / "kb")]) == 2
    with pytest.raises(SystemExit) as raised:
        main(["kb"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit) as raised:
        main(["kb", "ingest", "--help"])
    assert raised.value.code == 0
    assert "nothing is published (exit 3)" in capsys.readouterr().out
