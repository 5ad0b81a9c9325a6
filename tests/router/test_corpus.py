"""The training corpus: real phrasing from DEV portions only, every intent covered."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from router import corpus
from router.datasets import LabelMapping, mappings_dir, shared_data_dir
from router.intents import WORKER_OF, I
from router.split import Portion, Split

SHIPPED = [json.loads(line) for line in corpus.DEFAULT_CORPUS.read_text().splitlines()]


def _file_of(source: str, row_id: str) -> str:
    """The data file a corpus row came from (its split share is per file name)."""
    if source == corpus.HAND_SOURCE:
        return corpus.HAND_WRITTEN.name
    names = json.loads((mappings_dir() / f"{source}.json").read_text())["data"]
    stems = {Path(n).stem: Path(n).name for n in names}
    for stem, name in stems.items():
        if row_id.startswith(stem):
            return name
    # CLINC ids are "val-12", "oos_train-3": the prefix names the file.
    prefix = row_id.rsplit("-", 1)[0]
    return {"val": "inscope_val.jsonl"}.get(prefix, f"{prefix}.jsonl")


def test_no_corpus_row_is_from_a_test_portion() -> None:
    split = Split.load()
    leaked = [
        r["id"]
        for r in SHIPPED
        if split.portion_of(r["id"], _file_of(r["source"], r["id"])) != Portion.DEV
    ]
    assert not leaked, leaked[:5]


def test_real_phrasing_is_the_core_and_every_intent_is_covered() -> None:
    by_source = Counter(r["source"] for r in SHIPPED)
    assert by_source[corpus.HAND_SOURCE] < 0.2 * len(SHIPPED)
    rows = corpus.load()
    counts = Counter(e.label for e in rows)
    assert set(counts) == set(WORKER_OF)
    assert min(counts.values()) >= 30, counts
    # Near (unserved customer-service requests) and far (other domains) negatives.
    others = Counter(r["source"] for r in SHIPPED if r["intent"] == "INTENT_OTHER")
    assert others["bitext"] > 1000
    assert others["clinc"] > 1000


def test_the_label_decisions_hold() -> None:
    mapping = LabelMapping.load(mappings_dir() / "bitext.json")
    assert mapping.ours("check_cancellation_fee") == "INTENT_POLICY_CANCELLATION_FEE"
    assert mapping.ours("delivery_period") == "INTENT_TRACKING_ETA"
    assert mapping.ours("delivery_options") == "INTENT_POLICY_SHIPPING"
    for label in ("cancel_order", "get_refund"):
        assert WORKER_OF[int(I.Intent.Value(str(mapping.ours(label))))] == I.WORKER_NEGOTIATION
    assert mapping.ours("track_refund") == "negotiation"
    assert mapping.ours("complaint") == "human"
    for unserved in ("create_account", "get_invoice", "newsletter_subscription", "place_order"):
        assert mapping.ours(unserved) == "out_of_scope"


def test_the_shipped_corpus_is_what_a_build_writes() -> None:
    if not (shared_data_dir() / "intents").is_dir():
        pytest.fail(
            f"the external data sets are expected at {shared_data_dir()} (WAYBILL_SHARED_DATA)"
        )
    built = corpus.build(shared_data_dir())
    assert corpus.render(built.rows) == corpus.DEFAULT_CORPUS.read_text()
    assert built.conflicts == 0


def test_texts_labelled_differently_by_two_sources_are_left_out(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "intents").mkdir(parents=True)
    rows = [
        {"id": "b-1", "text": "cancel my order", "intent": "cancel_order"},
        {"id": "b-2", "text": "Cancel my order", "intent": "check_cancellation_fee"},
        {"id": "b-3", "text": "what does cancelling cost", "intent": "check_cancellation_fee"},
    ]
    (shared / "intents" / "bitext_8k_utterances.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    for name in (
        "oos/oos_train.jsonl",
        "oos/oos_val.jsonl",
        "oos/inscope_val.jsonl",
        "injection/deepset_prompt_injections_train.jsonl",
    ):
        (shared / name).parent.mkdir(parents=True, exist_ok=True)
        (shared / name).write_text("")
    everything = Split(salt="s", test_percent={"default": 0})
    built = corpus.build(shared, split=everything)
    texts = {r.text for r in built.rows if r.source == "bitext"}
    assert texts == {"what does cancelling cost"}
    # Both Bitext rows (and any hand-written exemplar with the same text).
    assert built.conflicts >= 2
