"""Retention drops whole old segments; the kept chain still verifies, gaps are still caught."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from runtime.audit.log import AuditLog
from runtime.audit.retention import PruneError, prune
from runtime.audit.segments import read_retention, segment_files
from runtime.audit.verify import Problem, verify
from tests.runtime.audit.logs import DAY0, lines, record, rewrite, segment, write_log

NOW = DAY0 + timedelta(days=5)


def test_prune_removes_old_segments_and_verify_stays_green(tmp_path: Path) -> None:
    write_log(tmp_path, days=5, per_day=10)
    result = prune(tmp_path, older_than_days=2, now=NOW)
    assert result.removed == (
        "audit-2026-11-01.jsonl",
        "audit-2026-11-02.jsonl",
        "audit-2026-11-03.jsonl",
    )
    assert result.base.seq == 30
    assert [p.name for p in segment_files(tmp_path)] == [
        "audit-2026-11-04.jsonl",
        "audit-2026-11-05.jsonl",
    ]
    manifest = read_retention(tmp_path)
    assert manifest.base == result.base
    assert manifest.removed["audit-2026-11-02.jsonl"].first_seq == 11
    verified = verify(tmp_path)
    assert verified.ok, verified.problem
    assert (verified.records, verified.base.seq, verified.last.seq) == (20, 30, 50)


def test_a_removed_middle_segment_is_still_caught_after_pruning(tmp_path: Path) -> None:
    write_log(tmp_path, days=5, per_day=10)
    prune(tmp_path, older_than_days=3, now=NOW)
    middle = segment(tmp_path, 1)
    middle.unlink()
    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
    assert problem.segment == middle.name


def test_removing_the_first_kept_segment_is_caught(tmp_path: Path) -> None:
    write_log(tmp_path, days=4, per_day=10)
    prune(tmp_path, older_than_days=3, now=NOW)
    segment(tmp_path, 0).unlink()
    (tmp_path / "checkpoint.json").unlink()
    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
    assert problem.seq == 21


def test_the_writer_continues_after_pruning(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=5)
    prune(tmp_path, older_than_days=0, now=NOW)
    assert len(segment_files(tmp_path)) == 1
    with AuditLog(tmp_path) as log:
        log.append(record(99, at=NOW))
    result = verify(tmp_path)
    assert (result.ok, result.records, result.last.seq) == (True, 6, 16)


def test_the_newest_segment_is_never_pruned(tmp_path: Path) -> None:
    write_log(tmp_path, days=2, per_day=5)
    result = prune(tmp_path, older_than_days=0, now=NOW + timedelta(days=30))
    assert result.removed == ("audit-2026-11-01.jsonl",)
    assert [p.name for p in segment_files(tmp_path)] == ["audit-2026-11-02.jsonl"]


def test_a_dry_run_removes_nothing(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=5)
    result = prune(tmp_path, older_than_days=1, now=NOW, dry_run=True)
    assert len(result.removed) == 2
    assert len(segment_files(tmp_path)) == 3
    assert not (tmp_path / "retention.json").exists()


def test_pruning_refuses_to_anchor_a_broken_chain(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=5)
    second = segment(tmp_path, 1)
    rewrite(second, lines(second)[1:])
    with pytest.raises(PruneError, match="does not continue"):
        prune(tmp_path, older_than_days=0, now=DAY0 + timedelta(days=1))
    assert len(segment_files(tmp_path)) == 3


def test_nothing_old_enough_removes_nothing(tmp_path: Path) -> None:
    write_log(tmp_path, days=2, per_day=5)
    assert prune(tmp_path, older_than_days=30, now=NOW).removed == ()
