"""The router's training corpus: real customer phrasing first, our exemplars second.

``python -m router.corpus`` writes ``data/router/corpus.v2.jsonl`` from the DEV
portions (``data/router/split.json``) of every external data set a mapping in
``data/router/mappings/`` names (Bitext customer-service utterances, CLINC150's
out-of-scope and other-domain queries, deepset's prompt injections and benign
prompts) plus the DEV portion of the hand-written ``exemplars.v1.jsonl``. The
TEST portions are never read, so every figure on them is on unseen rows.

Each row keeps its source id, so a test can check that no TEST row slipped in.
A text that two sources label differently is left out (and counted): the
index must not hold contradictions. Rows are written in a stable order, so a
rebuild from the same data gives the same file, byte for byte.

Exit statuses: 0 written (or up to date with ``--check``), 1 data missing or
``--check`` found the file stale, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from router import exemplars as exemplar_files
from router.datasets import DataError, LabelMapping, load_rows, mappings_dir, shared_data_dir
from router.exemplars import Exemplar
from router.intents import intent_name
from router.normalize import dedup_key
from router.split import Portion, Split
from runtime import paths

DEFAULT_CORPUS = paths.data_dir("router", "corpus.v2.jsonl")
HAND_WRITTEN = paths.data_dir("router", "exemplars.v1.jsonl")
HAND_SOURCE = "waybill"
"""Source name of the hand-written exemplars."""


@dataclass(frozen=True, slots=True)
class CorpusRow:
    """One training row."""

    id: str
    text: str
    intent: int
    source: str
    """Mapping name (``bitext``, ``clinc``, ...) or ``waybill`` for our own exemplars."""

    def to_json(self) -> str:
        """One JSONL line."""
        row = {"id": self.id, "text": self.text, "intent": intent_name(self.intent)}
        return json.dumps({**row, "source": self.source}, ensure_ascii=False)


@dataclass(slots=True)
class Built:
    """The corpus and what was left out of it."""

    rows: list[CorpusRow]
    conflicts: int = 0
    """Texts left out because sources label them differently."""
    duplicates: int = 0
    """Repeated texts with the same label (kept once)."""
    too_long: int = 0
    """Texts over the exemplar length limit (an exemplar is a message, not a document)."""
    per_source: Counter[str] = field(default_factory=Counter)


def _external(shared: Path, split: Split) -> list[CorpusRow]:
    found: list[CorpusRow] = []
    for mapping_path in sorted(mappings_dir().glob("*.json")):
        mapping = LabelMapping.load(mapping_path)
        names = json.loads(mapping_path.read_text()).get("data", [])
        for name in names:
            loaded = load_rows(shared / name, mapping, split=split, portion=Portion.DEV)
            for row in loaded.rows:
                intent = mapping.training_intent(row)
                found.append(CorpusRow(row.id, row.text, intent, mapping_path.stem))
    return found


def _hand_written(path: Path, split: Split) -> list[CorpusRow]:
    return [
        CorpusRow(e.id, e.text, e.label, HAND_SOURCE)
        for e in exemplar_files.load(path)
        if split.portion_of(e.id, path.name) == Portion.DEV
    ]


def build(shared: Path, *, split: Split | None = None, hand: Path = HAND_WRITTEN) -> Built:
    """The corpus from the DEV portions; DataError/ValueError when a file is unusable."""
    split = split or Split.load()
    candidates = [*_external(shared, split), *_hand_written(hand, split)]
    labels: dict[str, set[int]] = {}
    for row in candidates:
        labels.setdefault(dedup_key(row.text), set()).add(row.intent)
    built = Built(rows=[])
    seen: set[str] = set()
    for row in candidates:
        key = dedup_key(row.text)
        if len(row.text) > exemplar_files.MAX_TEXT_CHARS:
            built.too_long += 1
            continue
        if len(labels[key]) > 1:
            built.conflicts += 1
            continue
        if key in seen:
            built.duplicates += 1
            continue
        seen.add(key)
        built.rows.append(row)
        built.per_source[row.source] += 1
    built.rows.sort(key=lambda r: (r.source, r.id))
    return built


def render(rows: Sequence[CorpusRow]) -> str:
    """The file's content."""
    return "".join(r.to_json() + "\n" for r in rows)


def load(path: Path = DEFAULT_CORPUS) -> list[Exemplar]:
    """The corpus as exemplars (the router's base index); ExemplarFileError on a bad row."""
    return exemplar_files.load(path)


def sources(path: Path = DEFAULT_CORPUS) -> dict[str, str]:
    """Row id -> source name, for per-source figures."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            found[str(row["id"])] = str(row.get("source", ""))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m router.corpus",
        description="Build the router's training corpus from the DEV portions of the"
        " external data sets and our hand-written exemplars.",
        epilog="exit codes: 0 written or up to date, 1 data missing or stale file, 2 usage.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_CORPUS, help="corpus file to write")
    parser.add_argument(
        "--shared-data",
        type=Path,
        help="external data sets (default: $WAYBILL_SHARED_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--check", action="store_true", help="only check that --out is what a build would write"
    )
    args = parser.parse_args(argv)
    shared = args.shared_data or shared_data_dir()
    try:
        built = build(shared)
    except (DataError, ValueError) as exc:
        print(f"router.corpus: {exc}", file=sys.stderr)
        return 1
    text = render(built.rows)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(built.per_source.items()))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"router.corpus: {args.out} is stale; rebuild with python -m router.corpus")
            return 1
        print(f"{args.out} is up to date ({len(built.rows)} rows: {summary})")
        return 0
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, args.out)
    print(
        f"wrote {args.out}: {len(built.rows)} rows ({summary}); {built.duplicates} repeated"
        f" texts kept once, {built.conflicts} left out as labelled differently by two sources,"
        f" {built.too_long} over {exemplar_files.MAX_TEXT_CHARS} characters left out"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
