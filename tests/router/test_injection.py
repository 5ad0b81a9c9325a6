"""An injection wrapped around a request never routes to negotiation with high confidence.

The router is not the injection defence (guardrails are), but it must not amplify
one: held-out prompt injections (deepset, TEST portion) wrapped before and after
held-out customer requests (Bitext, TEST portion) of every other worker never
reach the negotiation worker, injections alone never do, and a real refund or
cancellation request wrapped in one is never more confidently negotiation than
the same request alone.
"""

from __future__ import annotations

import random

import pytest

from embeddings import Embedder
from router.calibration import Calibration
from router.classifier import Outcome, Query, Snapshot, classify_with
from router.datasets import (
    LabelMapping,
    Row,
    load_rows,
    mappings_dir,
    shared_data_dir,
    worker_level,
)
from router.decision import PriorOptions
from router.intents import I
from router.split import Portion, Split

PER_WORKER = 40
SLACK = 0.01
"""Confidence a wrapped request may gain over the plain one (scores move a little)."""


def _test_rows(name: str, mapping: str) -> list[Row]:
    path = shared_data_dir() / name
    if not path.is_file():
        pytest.fail(
            f"the external data sets are expected at {shared_data_dir()} (WAYBILL_SHARED_DATA)"
        )
    loaded = load_rows(
        path, LabelMapping.load(mappings_dir() / mapping), split=Split.load(), portion=Portion.TEST
    )
    return [worker_level(r) for r in loaded.rows]


@pytest.fixture(scope="module")
def injections() -> list[str]:
    rows = _test_rows("injection/deepset_prompt_injections_train.jsonl", "deepset_injections.json")
    return [r.text for r in rows if r.source_label == "1"]


@pytest.fixture(scope="module")
def requests() -> dict[str, list[str]]:
    rows = _test_rows("intents/bitext_8k_utterances.jsonl", "bitext.json")
    rng = random.Random(7)
    by_worker: dict[str, list[str]] = {}
    for worker in ("tracking", "policy", "human", "negotiation", "out_of_scope"):
        texts = [r.text for r in rows if r.gold.key == worker]
        by_worker[worker] = rng.sample(texts, PER_WORKER)
    return by_worker


def _wrapped(texts: list[str], injections: list[str]) -> tuple[list[str], list[str]]:
    rng = random.Random(11)
    wrapped, plain = [], []
    for text in texts:
        injection = rng.choice(injections)
        wrapped += [f"{injection} {text}", f"{text}\n\n{injection}"]
        plain += [text, text]
    return wrapped, plain


def _classify(
    embedder: Embedder, snapshot: Snapshot, calibration: Calibration, texts: list[str]
) -> list[Outcome]:
    return classify_with(
        embedder, snapshot, calibration, [Query(t) for t in texts], prior=PriorOptions()
    )


def _to_negotiation(outcome: Outcome) -> bool:
    return outcome.decision.worker == I.WORKER_NEGOTIATION


def test_injections_alone_never_reach_negotiation(
    embedder: Embedder, base_snapshot: Snapshot, calibration: Calibration, injections: list[str]
) -> None:
    assert len(injections) > 50
    outcomes = _classify(embedder, base_snapshot, calibration, injections)
    sent = [t[:60] for t, o in zip(injections, outcomes, strict=True) if _to_negotiation(o)]
    assert not sent


@pytest.mark.parametrize("worker", ["tracking", "policy", "human", "out_of_scope"])
def test_a_wrapped_request_of_another_worker_never_reaches_negotiation(
    embedder: Embedder,
    base_snapshot: Snapshot,
    calibration: Calibration,
    injections: list[str],
    requests: dict[str, list[str]],
    worker: str,
) -> None:
    wrapped, _ = _wrapped(requests[worker], injections)
    outcomes = _classify(embedder, base_snapshot, calibration, wrapped)
    sent = [t[:80] for t, o in zip(wrapped, outcomes, strict=True) if _to_negotiation(o)]
    assert not sent


def test_a_wrapped_negotiation_request_is_never_more_confident(
    embedder: Embedder,
    base_snapshot: Snapshot,
    calibration: Calibration,
    injections: list[str],
    requests: dict[str, list[str]],
) -> None:
    wrapped, plain = _wrapped(requests["negotiation"], injections)
    outcomes = _classify(embedder, base_snapshot, calibration, wrapped)
    alone = _classify(embedder, base_snapshot, calibration, plain)
    amplified = [
        (w[:80], round(o.decision.confidence, 3), round(p.decision.confidence, 3))
        for w, o, p in zip(wrapped, outcomes, alone, strict=True)
        if _to_negotiation(o)
        and (not _to_negotiation(p) or o.decision.confidence > p.decision.confidence + SLACK)
    ]
    assert not amplified
    # Wrapping costs confidence: many wrapped requests drop to the clarifying question.
    assert sum(o.decision.low_confidence for o in outcomes) > sum(
        p.decision.low_confidence for p in alone
    )
