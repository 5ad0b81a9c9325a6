"""Verification names the first altered, removed or reordered record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from runtime.audit.chain import encode_line, link, parse_line
from runtime.audit.retention import prune
from runtime.audit.segments import CHECKPOINT, read_retention
from runtime.audit.verify import Problem, UnreadableLog, verify
from tests.runtime.audit.logs import DAY0, lines, rewrite, segment, write_log


def test_an_intact_log_verifies(tmp_path: Path) -> None:
    count = write_log(tmp_path, days=3, per_day=10)
    result = verify(tmp_path)
    assert result.ok, result.problem
    assert (result.records, result.segments, result.last.seq) == (count, 3, count)
    assert result.torn is None


def test_an_empty_directory_verifies(tmp_path: Path) -> None:
    result = verify(tmp_path)
    assert result.ok
    assert result.records == 0


def test_a_missing_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableLog):
        verify(tmp_path / "absent")


def test_an_altered_field_is_named(tmp_path: Path) -> None:
    write_log(tmp_path, days=2, per_day=10)
    path = segment(tmp_path, 1)
    content = lines(path)
    assert b'"input_tokens":114' in content[4]
    content[4] = content[4].replace(b'"input_tokens":114', b'"input_tokens":999')
    rewrite(path, content)

    result = verify(tmp_path)
    assert result.problem is not None
    assert result.problem.kind is Problem.ALTERED
    assert (result.problem.segment, result.problem.line, result.problem.seq) == (path.name, 5, 15)
    assert result.last.seq == 14


def test_an_altered_record_with_a_fresh_hash_is_named(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=10)
    path = segment(tmp_path)
    content = lines(path)
    old = parse_line(content[2])
    assert old is not None
    body = old.canonical.replace(b'"cost_micro_units":350', b'"cost_micro_units":1')
    content[2] = encode_line(old.seq, old.prev, link(old.prev, old.seq, body), body)
    rewrite(path, content)

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.ALTERED
    assert (problem.segment, problem.line, problem.seq) == (path.name, 3, 3)


def test_a_removed_record_is_named(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=10)
    path = segment(tmp_path)
    content = lines(path)
    del content[6]
    rewrite(path, content)

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
    assert (problem.segment, problem.line, problem.seq) == (path.name, 7, 7)
    assert "seq 7 missing" in problem.detail


def test_swapped_records_are_named(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=10)
    path = segment(tmp_path)
    content = lines(path)
    content[3], content[4] = content[4], content[3]
    rewrite(path, content)

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REORDERED
    assert (problem.segment, problem.line, problem.seq) == (path.name, 4, 5)
    assert f"{path.name}:5" in problem.detail


def test_a_record_moved_back_is_reordered(tmp_path: Path) -> None:
    write_log(tmp_path, days=2, per_day=5)
    first, second = segment(tmp_path, 0), segment(tmp_path, 1)
    moved = lines(first)
    rewrite(second, [*lines(second), moved.pop(1)])
    rewrite(first, moved)

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REORDERED
    assert (problem.segment, problem.line) == (first.name, 2)
    assert f"{second.name}:6" in problem.detail


def test_a_removed_middle_segment_is_named(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=10)
    middle = segment(tmp_path, 1)
    middle.unlink()

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
    assert (problem.segment, problem.seq) == (middle.name, 11)
    assert "11..20" in problem.detail


def test_a_removed_middle_segment_is_caught_without_the_checkpoint(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=10)
    segment(tmp_path, 1).unlink()
    (tmp_path / CHECKPOINT).unlink()

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
    assert (problem.segment, problem.line, problem.seq) == (segment(tmp_path, 1).name, 1, 11)


def test_records_cut_from_the_end_are_caught_by_the_head_anchor(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=10)
    path = segment(tmp_path)
    rewrite(path, lines(path)[:7])

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
    assert problem.seq == 8
    assert "8..10" in problem.detail


def test_a_sealed_segment_cut_short_is_caught(tmp_path: Path) -> None:
    write_log(tmp_path, days=2, per_day=10)
    first = segment(tmp_path, 0)
    rewrite(first, lines(first)[:-1])

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
    assert problem.segment == first.name
    assert "sealed this segment at seq 10" in problem.detail


def test_a_torn_last_line_is_reported_apart_not_as_tampering(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=10)
    path = segment(tmp_path)
    with path.open("ab") as f:
        f.write(lines(path)[0][:40])

    result = verify(tmp_path)
    assert result.ok
    assert result.records == 10
    assert result.torn is not None
    assert (result.torn.kind, result.torn.segment, result.torn.line) == (
        Problem.TORN,
        path.name,
        11,
    )


def test_a_broken_line_elsewhere_is_altered(tmp_path: Path) -> None:
    write_log(tmp_path, per_day=10)
    path = segment(tmp_path)
    content = lines(path)
    content[5] = content[5][:50] + b"\n"
    rewrite(path, content)

    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.ALTERED
    assert (problem.line, problem.detail) == (6, "not a record line")


def test_progress_is_reported(tmp_path: Path) -> None:
    write_log(tmp_path, days=2, per_day=5)
    seen: list[tuple[int, int]] = []
    verify(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert seen


def test_a_suffix_rewritten_with_fresh_hashes_is_caught_by_the_head_anchor(
    tmp_path: Path,
) -> None:
    write_log(tmp_path, per_day=10)
    path = segment(tmp_path)
    content = lines(path)
    prev = None
    for i in range(4, 10):
        old = parse_line(content[i])
        assert old is not None
        body = old.canonical.replace(b'"outcome":"OK"', b'"outcome":"NO"')
        link_to = prev if prev is not None else old.prev
        digest = link(link_to, old.seq, body)
        content[i] = encode_line(old.seq, link_to, digest, body)
        prev = digest
    rewrite(path, content)

    problem = verify(tmp_path).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == (Problem.ALTERED, 10)
    assert "head anchor" in problem.detail


def test_segments_a_prune_left_behind_are_skipped(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=5)
    first = segment(tmp_path, 0)
    saved = first.read_bytes()
    prune(tmp_path, older_than_days=0, now=DAY0 + timedelta(days=1))
    first.write_bytes(saved)  # as if the prune stopped between its manifest and the deletion
    assert read_retention(tmp_path).base.seq == 5
    result = verify(tmp_path)
    assert (result.ok, result.records, result.segments) == (True, 10, 2)


def test_a_removed_newest_segment_is_caught_by_the_head_anchor(tmp_path: Path) -> None:
    write_log(tmp_path, days=3, per_day=5)
    newest = segment(tmp_path, 2)
    newest.unlink()
    problem = verify(tmp_path).problem
    assert problem is not None
    assert (problem.kind, problem.segment, problem.seq) == (Problem.REMOVED, newest.name, 11)


def test_every_segment_removed_is_caught(tmp_path: Path) -> None:
    write_log(tmp_path, days=2, per_day=5)
    for path in list(tmp_path.glob("audit-*.jsonl")):
        path.unlink()
    problem = verify(tmp_path).problem
    assert problem is not None
    assert problem.kind is Problem.REMOVED
