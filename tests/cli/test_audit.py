"""``waybill audit``: exit codes and what each subcommand prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from runtime.audit.log import AuditLog
from runtime.audit.pg_log import PostgresAuditLog
from runtime.audit.pseudonyms import PostgresPseudonymKeys, PseudonymKeys
from runtime.audit.segments import segment_files
from tests.runtime.audit.logs import lines, record, rewrite, write_log
from tests.support.postgres_server import PG_DSN, pg_schema  # noqa: F401


def test_verify_an_intact_log_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(tmp_path, days=2, per_day=5)
    assert main(["audit", "verify", str(tmp_path), "--no-progress"]) == 0
    assert "10 records in 2 segments (seq 1..10): intact" in capsys.readouterr().out


def test_verify_names_the_altered_record_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(tmp_path, per_day=5)
    [path] = segment_files(tmp_path)
    content = lines(path)
    content[1] = content[1].replace(b'"outcome":"OK"', b'"outcome":"ERR"')
    rewrite(path, content)
    assert main(["audit", "verify", str(tmp_path), "--no-progress", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["problem"] == {
        "kind": "altered",
        "segment": path.name,
        "line": 2,
        "seq": 2,
        "detail": report["problem"]["detail"],
    }


def test_verify_shows_progress_and_warns_of_a_torn_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(tmp_path, per_day=5)
    [path] = segment_files(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"seq":6,"pr')
    assert main(["audit", "verify", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "intact" in captured.out
    assert "verify" in captured.err
    assert "torn last line" in captured.err


def test_a_missing_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", str(tmp_path / "absent")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "prune", str(tmp_path), "--older-than", "-3"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["audit", "export", str(tmp_path)])
    assert exited.value.code == 2


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for command in ("verify", "export", "prune", "erase"):
        assert command in help_text


def test_export_writes_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs, out = tmp_path / "audit", tmp_path / "audit.parquet"
    write_log(logs, days=2, per_day=5)
    assert main(["audit", "export", str(logs), "--out", str(out), "--no-progress"]) == 0
    assert "exported 10 records" in capsys.readouterr().out
    with duckdb.connect() as con:
        assert con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchall() == [(10,)]


def test_export_refuses_a_broken_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs, out = tmp_path / "audit", tmp_path / "audit.parquet"
    write_log(logs, per_day=5)
    [path] = segment_files(logs)
    rewrite(path, lines(path)[1:])
    assert main(["audit", "export", str(logs), "--out", str(out), "--no-progress"]) == 1
    assert "verification failed" in capsys.readouterr().err
    assert not out.exists()


def test_prune_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    with AuditLog(tmp_path) as log:
        for n, age in enumerate((40, 40, 20, 1, 0)):
            log.append(record(n, at=now - timedelta(days=age)))
    assert main(["audit", "prune", str(tmp_path), "--older-than", "30", "--no-progress"]) == 0
    assert "removed audit-" in capsys.readouterr().out
    assert len(segment_files(tmp_path)) == 3
    assert main(["audit", "verify", str(tmp_path), "--no-progress"]) == 0
    assert "3 records in 3 segments (seq 3..5): intact" in capsys.readouterr().out


def test_erase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_file = tmp_path / "keys.sqlite3"
    with PseudonymKeys(keys_file) as keys:
        keys.user("acme", "cust-9")
    arguments = ["audit", "erase", "--user", "cust-9", "--tenant", "acme", "--keys"]
    assert main([*arguments, str(keys_file)]) == 0
    assert "erased" in capsys.readouterr().out
    assert main([*arguments, str(keys_file)]) == 0
    assert "no key" in capsys.readouterr().out
    assert main([*arguments, str(tmp_path / "absent.sqlite3")]) == 2
    with PseudonymKeys(keys_file) as keys:
        assert keys.known_user("acme", "cust-9") is None


@pytest.mark.postgres
async def test_the_fleet_chain_in_postgres(
    pg_schema: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with PostgresAuditLog(PG_DSN, schema=pg_schema) as log:
        for n in range(6):
            log.append(record(n, at=today - timedelta(days=5 - n)))
    fleet = ["--pg-dsn", PG_DSN, "--pg-schema", pg_schema]
    assert main(["audit", "verify", *fleet, "--no-progress"]) == 0
    assert "6 records: intact" in capsys.readouterr().out
    assert main(["audit", "verify", "somewhere", *fleet]) == 2
    assert main(["audit", "prune", *fleet, "--older-than", "1", "--no-progress"]) == 0
    assert "removed 4 records" in capsys.readouterr().out
    assert main(["audit", "verify", *fleet, "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 2
    with PostgresPseudonymKeys(PG_DSN, schema=pg_schema) as keys:
        keys.user("acme", "cust-9")
    arguments = ["audit", "erase", "--user", "cust-9", "--tenant", "acme", *fleet]
    assert main(arguments) == 0
    assert "erased" in capsys.readouterr().out
