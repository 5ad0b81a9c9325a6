"""The writer: one chain under concurrent appends, day segments, reopening, crash repair."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from runtime.audit.log import (
    AuditBacklogError,
    AuditBusyError,
    AuditClosedError,
    AuditIntegrityError,
    AuditLog,
    AuditLogOptions,
)
from runtime.audit.segments import TORN_DIR, read_checkpoint, segment_files
from runtime.audit.verify import verify
from tests.runtime.audit.logs import DAY0, lines, record, rewrite, segment, write_log


def test_flush_returns_the_last_seq_on_disk(tmp_path: Path) -> None:
    with AuditLog(tmp_path) as log:
        for n in range(5):
            log.append(record(n))
        assert log.flush(timeout_s=10) == 5
        assert len(lines(segment(tmp_path))) == 5


def test_concurrent_appends_keep_one_valid_chain(tmp_path: Path) -> None:
    threads, each = 8, 500
    with AuditLog(tmp_path) as log:
        start = threading.Barrier(threads)

        def append_many(t: int) -> None:
            start.wait()
            for n in range(each):
                log.append(record(t * each + n))

        workers = [threading.Thread(target=append_many, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    result = verify(tmp_path)
    assert result.ok, result.problem
    assert result.records == threads * each
    ids = {json.loads(line)["record"]["request_id"] for line in lines(segment(tmp_path))}
    assert len(ids) == threads * each


async def test_appends_from_tasks_then_aflush_and_aclose(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)

    async def turn(n: int) -> None:
        await asyncio.sleep(0)
        log.append(record(n))

    await asyncio.gather(*(turn(n) for n in range(200)))
    assert await log.aflush(timeout_s=10) == 200
    await log.aclose()
    assert verify(tmp_path).records == 200


def test_each_utc_day_gets_a_segment_chained_to_the_last(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=4)
    files = segment_files(tmp_path)
    assert [p.name for p in files] == [
        "audit-2026-11-01.jsonl",
        "audit-2026-11-02.jsonl",
        "audit-2026-11-03.jsonl",
    ]
    checkpoint = read_checkpoint(tmp_path)
    assert sorted(checkpoint.sealed) == [files[0].name, files[1].name]
    assert checkpoint.sealed[files[1].name].first_seq == 5
    assert checkpoint.sealed[files[1].name].last.seq == 8
    last_of_first = json.loads(lines(files[0])[-1])
    first_of_second = json.loads(lines(files[1])[0])
    assert first_of_second["prev"] == last_of_first["hash"]
    assert checkpoint.head is not None
    assert checkpoint.head.seq == 12


def test_a_record_dated_before_the_open_segment_goes_into_it(tmp_path: Path) -> None:
    with AuditLog(tmp_path) as log:
        log.append(record(0, at=DAY0 + timedelta(days=1)))
        log.append(record(1, at=DAY0))  # the clock stepped back
    assert [p.name for p in segment_files(tmp_path)] == ["audit-2026-11-02.jsonl"]
    assert verify(tmp_path).records == 2


def test_reopening_continues_the_chain_in_the_same_segment(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=3)
    with AuditLog(tmp_path) as log:
        assert log.last_seq == 3
        log.append(record(3))
    assert len(segment_files(tmp_path)) == 1
    result = verify(tmp_path)
    assert (result.ok, result.records) == (True, 4)


def test_reopening_on_a_later_day_seals_the_old_segment(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=3)
    with AuditLog(tmp_path) as log:
        log.append(record(3, at=DAY0 + timedelta(days=1)))
    sealed = read_checkpoint(tmp_path).sealed
    assert sealed["audit-2026-11-01.jsonl"].first_seq == 1
    assert sealed["audit-2026-11-01.jsonl"].last.seq == 3
    assert verify(tmp_path).ok


def test_a_torn_last_line_is_cut_on_open_and_kept(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=5)
    path = segment(tmp_path)
    torn = lines(path)[0][:33]
    with path.open("ab") as f:
        f.write(torn)
    with AuditLog(tmp_path) as log:
        assert log.last_seq == 5
        log.append(record(5))
    result = verify(tmp_path)
    assert (result.ok, result.records, result.torn) == (True, 6, None)
    [kept] = (tmp_path / TORN_DIR).iterdir()
    assert kept.read_bytes() == torn


def test_a_log_cut_short_of_its_head_is_refused(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=5)
    path = segment(tmp_path)
    rewrite(path, lines(path)[:3])
    with pytest.raises(AuditIntegrityError, match="head anchor"):
        AuditLog(tmp_path)


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    with AuditLog(tmp_path), pytest.raises(AuditBusyError):
        AuditLog(tmp_path)


def test_append_after_close_raises(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.close()
    log.close()
    with pytest.raises(AuditClosedError):
        log.append(record(0))


def test_a_full_backlog_refuses(tmp_path: Path) -> None:
    with (
        AuditLog(tmp_path, options=AuditLogOptions(max_backlog=0)) as log,
        pytest.raises(AuditBacklogError),
    ):
        log.append(record(0))


def test_a_failed_writer_fails_appends_and_flushes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_gone(fd: int) -> None:
        raise OSError(5, "Input/output error")

    log = AuditLog(tmp_path)
    log.append(record(0))
    log.flush(timeout_s=10)
    monkeypatch.setattr("runtime.audit.log.os.fdatasync", disk_gone)
    log.append(record(1))
    with pytest.raises(AuditClosedError) as failed:
        log.flush(timeout_s=10)
    assert isinstance(failed.value.__cause__, OSError)
    with pytest.raises(AuditClosedError):
        log.append(record(2))
    with pytest.raises(AuditClosedError):
        log.close()


def test_an_empty_segment_left_by_a_crash_is_removed_on_open(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=3)
    (tmp_path / "audit-2026-11-02.jsonl").touch()  # created, then the process died
    with AuditLog(tmp_path) as log:
        assert log.last_seq == 3
        log.append(record(3, at=DAY0 + timedelta(days=2)))
    assert [p.name for p in segment_files(tmp_path)] == [
        "audit-2026-11-01.jsonl",
        "audit-2026-11-03.jsonl",
    ]
    assert verify(tmp_path).ok
