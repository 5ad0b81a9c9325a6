"""The versioned exemplar file and its loader."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from router import exemplars
from router.exemplars import Exemplar, ExemplarFileError
from router.intents import FOLLOW_UP, WORKER_OF, I
from router.settings import DEFAULT_EXEMPLARS, DEFAULT_FOLLOW_UPS


def test_at_least_40_hand_written_exemplars_per_intent() -> None:
    rows = exemplars.load(DEFAULT_EXEMPLARS)
    counts = Counter(e.label for e in rows)
    # Cancellation-fee questions come from real phrasing only (the corpus has them).
    assert set(counts) == set(WORKER_OF) - {I.INTENT_POLICY_CANCELLATION_FEE}
    assert min(counts.values()) >= 40, counts
    assert len({e.id for e in rows}) == len(rows)


def test_follow_ups_load_as_their_own_label() -> None:
    rows = exemplars.load_follow_ups(DEFAULT_FOLLOW_UPS)
    assert len(rows) >= 20
    assert {e.label for e in rows} == {FOLLOW_UP}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "hi", "intent": "INTENT_NOPE"}\n', "unknown intent"),
        ('{"text": "", "intent": "INTENT_OTHER"}\n', "non-empty string"),
        ("not json\n", "not JSON"),
        (
            '{"text": "Hi", "intent": "INTENT_OTHER"}\n{"text": "hi ", "intent": "INTENT_OTHER"}\n',
            "duplicate of line 1",
        ),
        ("", "no exemplars"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ex.jsonl"
    path.write_text(content)
    with pytest.raises(ExemplarFileError, match=message):
        exemplars.load(path)


def test_added_exemplars_append_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "router" / "added.jsonl"
    assert exemplars.load_added(path) == []
    first = [Exemplar("where's my box", I.INTENT_TRACKING_STATUS)]
    exemplars.append(path, first)
    exemplars.append(path, [Exemplar("refund it", I.INTENT_NEGOTIATION_REFUND_REQUEST)])
    loaded = exemplars.load_added(path)
    assert [(e.text, e.label) for e in loaded] == [
        ("where's my box", I.INTENT_TRACKING_STATUS),
        ("refund it", I.INTENT_NEGOTIATION_REFUND_REQUEST),
    ]


def test_digest_ignores_order_and_case() -> None:
    a = [Exemplar("Hi", I.INTENT_OTHER), Exemplar("refund", I.INTENT_NEGOTIATION_REFUND_REQUEST)]
    b = [Exemplar("refund", I.INTENT_NEGOTIATION_REFUND_REQUEST), Exemplar("hi ", I.INTENT_OTHER)]
    assert exemplars.digest(a) == exemplars.digest(b)
    assert exemplars.digest(a) != exemplars.digest(a[:1])
