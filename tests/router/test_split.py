"""The held-out split is deterministic and close to its nominal share."""

from __future__ import annotations

from pathlib import Path

import pytest

from router import exemplars
from router.settings import DEFAULT_EXEMPLARS
from router.split import Portion, Split


def test_the_split_is_stable_and_near_its_share() -> None:
    split = Split.load()
    rows = exemplars.load(DEFAULT_EXEMPLARS)
    name = DEFAULT_EXEMPLARS.name
    test = [e for e in rows if split.portion_of(e.id, name) == Portion.TEST]
    assert split.percent_for(name) == 20
    assert 0.14 < len(test) / len(rows) < 0.26
    again = [e for e in rows if split.portion_of(e.id, name) == Portion.TEST]
    assert again == test


def test_portions_partition_the_rows() -> None:
    split = Split.load()
    ids = [f"row-{i}" for i in range(1000)]
    dev = {i for i in ids if split.keeps(i, "other.jsonl", Portion.DEV)}
    test = {i for i in ids if split.keeps(i, "other.jsonl", Portion.TEST)}
    assert dev.isdisjoint(test)
    assert dev | test == set(ids)
    assert all(split.keeps(i, "other.jsonl", Portion.ALL) for i in ids)
    assert 400 < len(test) < 600


def test_a_bad_split_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    path.write_text('{"salt": "x", "test_percent": {"a.jsonl": 20}}')
    with pytest.raises(ValueError, match="default"):
        Split.load(path)
