"""Evaluation data: mappings, gold labels, portions; the reviewed external mappings."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from router.datasets import (
    IDENTITY,
    DataError,
    GoldKind,
    LabelMapping,
    load_rows,
    mappings_dir,
    parse_gold,
    shared_data_dir,
)
from router.split import Portion, Split


def _write(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_gold_labels() -> None:
    assert parse_gold("INTENT_TRACKING_ETA").kind == GoldKind.INTENT
    assert parse_gold("tracking").kind == GoldKind.WORKER
    assert parse_gold("out_of_scope").kind == GoldKind.OUT_OF_SCOPE
    assert parse_gold("INTENT_OTHER").kind == GoldKind.OUT_OF_SCOPE
    with pytest.raises(ValueError, match="unknown intent"):
        parse_gold("shipping")


def test_a_mapping_translates_skips_and_defaults(tmp_path: Path) -> None:
    mapping_path = tmp_path / "m.json"
    mapping_path.write_text(
        json.dumps(
            {
                "label_field": "label",
                "labels": {"where": "tracking", "noise": None},
                "default": "out_of_scope",
            }
        )
    )
    data = _write(
        tmp_path / "d.jsonl",
        [
            {"id": "1", "text": "where is it", "label": "where"},
            {"id": "2", "text": "bla", "label": "noise"},
            {"id": "3", "text": "play music", "label": "music"},
        ],
    )
    loaded = load_rows(
        data, LabelMapping.load(mapping_path), split=Split.load(), portion=Portion.ALL
    )
    assert [(r.id, r.gold.key) for r in loaded.rows] == [("1", "tracking"), ("3", "out_of_scope")]
    assert loaded.skipped == Counter({"noise": 1})


def test_unmapped_labels_are_named(tmp_path: Path) -> None:
    mapping_path = tmp_path / "m.json"
    mapping_path.write_text(json.dumps({"labels": {"a": "tracking"}}))
    data = _write(
        tmp_path / "d.jsonl", [{"text": "x", "intent": "b"}, {"text": "y", "intent": "b"}]
    )
    with pytest.raises(DataError, match=r"labels with no mapping: b \(2\)"):
        load_rows(data, LabelMapping.load(mapping_path), split=Split.load(), portion=Portion.ALL)


def test_a_mapping_to_an_unknown_label_is_refused(tmp_path: Path) -> None:
    mapping_path = tmp_path / "m.json"
    mapping_path.write_text(json.dumps({"labels": {"a": "shipping"}}))
    with pytest.raises(ValueError, match="label 'a'"):
        LabelMapping.load(mapping_path)


def test_without_a_mapping_labels_must_be_ours(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", [{"text": "x", "intent": "track_order"}])
    with pytest.raises(DataError, match="--mapping"):
        load_rows(data, IDENTITY, split=Split.load(), portion=Portion.ALL)


def test_portions_come_from_the_row_id(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"text {i}", "intent": "tracking"} for i in range(200)]
    data = _write(tmp_path / "d.jsonl", rows)
    split = Split.load()
    dev = load_rows(data, IDENTITY, split=split, portion=Portion.DEV)
    test = load_rows(data, IDENTITY, split=split, portion=Portion.TEST)
    assert len(dev.rows) + len(test.rows) == 200
    assert dev.other_portion == len(test.rows)
    assert {r.id for r in dev.rows}.isdisjoint({r.id for r in test.rows})


def test_the_reviewed_mappings_cover_every_label_of_their_data() -> None:
    shared = shared_data_dir()
    if not shared.is_dir():
        pytest.fail(f"the external data sets are expected at {shared} (WAYBILL_SHARED_DATA)")
    mappings = sorted(mappings_dir().glob("*.json"))
    assert {m.stem for m in mappings} == {"bitext", "clinc", "deepset_injections"}
    for path in mappings:
        mapping = LabelMapping.load(path)
        for name in json.loads(path.read_text())["data"]:
            loaded = load_rows(shared / name, mapping, split=Split.load(), portion=Portion.ALL)
            assert loaded.rows, f"{name} gives no rows with {path.name}"
