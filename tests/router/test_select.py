"""The classifier comparison: grouped cross-prediction and worker-level figures."""

from __future__ import annotations

import numpy as np
import pytest

from router import select
from router.intents import I


def _clusters() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((3, 16)).astype(np.float32)
    intents = [I.INTENT_TRACKING_STATUS, I.INTENT_POLICY_REFUND, I.INTENT_OTHER]
    vectors, labels = [], []
    for centre, intent in zip(centres, intents, strict=True):
        points = centre + 0.2 * rng.standard_normal((30, 16)).astype(np.float32)
        vectors.append(points / np.linalg.norm(points, axis=1, keepdims=True))
        labels += [intent] * 30
    return np.concatenate(vectors), np.array(labels)


@pytest.mark.parametrize("name", ["knn-m1", "knn-m3", "logreg-C10"])
def test_every_candidate_separates_clear_clusters(name: str) -> None:
    found = select.candidates()
    if name not in found:
        pytest.skip("scikit-learn (the dev extra) is not installed")
    vectors, labels = _clusters()
    fold = np.arange(len(labels)) % 5
    predicted = select.cross_predict(found[name], vectors, labels, fold)
    figures = select.figures(
        [select.worker_of(x) for x in labels], [select.worker_of(x) for x in predicted]
    )
    assert figures == {"in_scope_accuracy": 1.0, "oos_recall": 1.0}


def test_a_row_is_never_predicted_by_a_model_that_saw_it() -> None:
    vectors, labels = _clusters()
    fold = np.arange(len(labels)) % 5
    seen: list[int] = []

    def spy(train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
        overlap = {tuple(q) for q in queries.round(6)} & {tuple(t) for t in train.round(6)}
        assert not overlap
        seen.append(len(queries))
        return np.full(len(queries), I.INTENT_OTHER)

    select.cross_predict(spy, vectors, labels, fold)
    assert sum(seen) == len(labels)


def test_figures_count_a_wrong_worker_and_a_missed_oos() -> None:
    gold = ["tracking", "tracking", "policy", "out_of_scope", "out_of_scope"]
    predicted = ["tracking", "policy", "policy", "out_of_scope", "negotiation"]
    assert select.figures(gold, predicted) == {
        "in_scope_accuracy": pytest.approx(2 / 3),
        "oos_recall": 0.5,
    }
