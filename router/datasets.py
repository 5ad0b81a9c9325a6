"""Evaluation data: JSONL rows, label mappings to our intents, and portions.

A data file is JSONL with a text field and a label field. A mapping file
(``data/router/mappings/*.json``) says which field holds the label and what
each label means for us: an intent name (scored by intent), a worker name
(``tracking``, ``policy``, ``negotiation``, ``human``: scored by worker), or
``out_of_scope`` (should land in the low-confidence bucket); ``null`` leaves
the rows out. Without a mapping the labels must already be ours.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from router.intents import OUT_OF_SCOPE, WORKER_NAMES, WORKER_OF, I, parse_intent, worker_name
from router.split import Portion, Split
from runtime import paths

SHARED_DATA_ENV = paths.SHARED_DATA_ENV
shared_data_dir = paths.shared_data_dir


def mappings_dir() -> Path:
    """Label mappings of the external data sets (``data/router/mappings``)."""
    return paths.data_dir("router", "mappings")


class GoldKind(StrEnum):
    """At which level a row is scored."""

    INTENT = "intent"
    WORKER = "worker"
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class Gold:
    """The expected answer for a row."""

    kind: GoldKind
    key: str
    """``INTENT_...``, a worker name, or ``out_of_scope``."""
    value: int = 0
    """The intent or worker enum value (0 for out of scope)."""

    @property
    def in_scope(self) -> bool:
        """Whether a worker should get the row."""
        return self.kind != GoldKind.OUT_OF_SCOPE


def parse_gold(label: str) -> Gold:
    """Our label for ``label``: an intent name, a worker name, or ``out_of_scope``."""
    if label == OUT_OF_SCOPE:
        return Gold(GoldKind.OUT_OF_SCOPE, OUT_OF_SCOPE)
    if label in WORKER_NAMES:
        return Gold(GoldKind.WORKER, label, WORKER_NAMES[label])
    intent = parse_intent(label)
    if intent == I.INTENT_OTHER:
        return Gold(GoldKind.OUT_OF_SCOPE, OUT_OF_SCOPE)
    return Gold(GoldKind.INTENT, label, intent)


@dataclass(frozen=True, slots=True)
class Row:
    """One evaluation row."""

    id: str
    text: str
    gold: Gold
    source_label: str
    """The label as the data file has it."""


def worker_level(row: Row) -> Row:
    """The row scored by worker (an intent label becomes its worker's name)."""
    if row.gold.kind != GoldKind.INTENT:
        return row
    name = worker_name(WORKER_OF[row.gold.value])
    return Row(row.id, row.text, parse_gold(name), row.source_label)


@dataclass(frozen=True, slots=True)
class LabelMapping:
    """Their labels -> ours."""

    label_field: str = "intent"
    text_field: str = "text"
    id_field: str = "id"
    labels: dict[str, str | None] = field(default_factory=dict)
    """Source label -> our label, or None to leave the rows out."""
    identity: bool = False
    """No mapping file: the labels are ours already."""
    has_default: bool = False
    default: str | None = None
    """For labels not listed, if ``has_default``."""
    train_labels: dict[str, int] = field(default_factory=dict)
    """Source label -> the intent its rows train, where the label is scored by worker."""

    @classmethod
    def load(cls, path: Path) -> LabelMapping:
        """Read and check a mapping file; ValueError names the bad entry."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read the mapping ({exc})") from None
        labels = raw.get("labels")
        if not isinstance(labels, dict):
            raise ValueError(f"{path}: 'labels' must be an object of source label -> our label")
        mapping = cls(
            label_field=str(raw.get("label_field", "intent")),
            text_field=str(raw.get("text_field", "text")),
            id_field=str(raw.get("id_field", "id")),
            labels={str(k): (None if v is None else str(v)) for k, v in labels.items()},
            has_default="default" in raw,
            default=None if raw.get("default") is None else str(raw["default"]),
        )
        train = raw.get("train_labels", {})
        if not isinstance(train, dict):
            raise ValueError(f"{path}: 'train_labels' must be an object of source label -> intent")
        for source, name in train.items():
            try:
                mapping.train_labels[str(source)] = parse_intent(str(name))
            except ValueError as exc:
                raise ValueError(f"{path}: train label {source!r}: {exc}") from None
        for source, ours in [*mapping.labels.items(), ("default", mapping.default)]:
            if ours is not None:
                try:
                    parse_gold(ours)
                except ValueError as exc:
                    raise ValueError(f"{path}: label {source!r}: {exc}") from None
        return mapping

    def ours(self, source: str) -> str | None:
        """Our label for a source label; None: leave the row out. KeyError: unmapped."""
        if self.identity:
            return source
        if source in self.labels:
            return self.labels[source]
        if self.has_default:
            return self.default
        raise KeyError(source)

    def training_intent(self, row: Row) -> int:
        """The intent a row trains: its gold intent, ``train_labels`` for worker-level
        labels, INTENT_OTHER out of scope; ValueError when a worker label has none."""
        if row.source_label in self.train_labels:
            return self.train_labels[row.source_label]
        if row.gold.kind == GoldKind.INTENT:
            return row.gold.value
        if row.gold.kind == GoldKind.OUT_OF_SCOPE:
            return int(I.INTENT_OTHER)
        raise ValueError(
            f"label {row.source_label!r} is scored by worker: give it a train_labels intent"
        )


IDENTITY = LabelMapping(identity=True)


@dataclass(slots=True)
class Loaded:
    """Rows of one portion of a file, and what was left out."""

    rows: list[Row]
    skipped: Counter[str] = field(default_factory=Counter)
    """Source labels mapped to null, with their row counts."""
    other_portion: int = 0
    """Rows of the file in the other portion."""


class DataError(ValueError):
    """A data file that cannot be scored as it is."""


def load_rows(path: Path, mapping: LabelMapping, *, split: Split, portion: Portion) -> Loaded:
    """The rows of ``path`` in ``portion``, mapped to our labels."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    loaded = Loaded(rows=[])
    unmapped: Counter[str] = Counter()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}:{number}: not JSON ({exc})") from None
        text = record.get(mapping.text_field) if isinstance(record, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{number}: no text in field {mapping.text_field!r}")
        if mapping.label_field not in record:
            raise DataError(f"{path}:{number}: no label field {mapping.label_field!r}")
        source = str(record[mapping.label_field])
        row_id = str(record.get(mapping.id_field) or text)
        if not split.keeps(row_id, path.name, portion):
            loaded.other_portion += 1
            continue
        try:
            ours = mapping.ours(source)
        except KeyError:
            unmapped[source] += 1
            continue
        if ours is None:
            loaded.skipped[source] += 1
            continue
        try:
            gold = parse_gold(ours)
        except ValueError as exc:
            raise DataError(f"{path}:{number}: {exc} (use --mapping for foreign labels)") from None
        loaded.rows.append(Row(id=row_id, text=text.strip(), gold=gold, source_label=source))
    if unmapped:
        names = ", ".join(f"{k} ({v})" for k, v in unmapped.most_common())
        raise DataError(f"{path}: labels with no mapping: {names}")
    return loaded
