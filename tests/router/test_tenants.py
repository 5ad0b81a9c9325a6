"""Per-tenant exemplars: one tenant's additions never change another's decisions;
duplicates, conflicts and request ids are each tenant's own."""

from __future__ import annotations

import numpy as np
import pytest

from router.classifier import Outcome, Query
from router.exemplars import Exemplar
from router.index import merge_neighbours
from router.intents import I
from runtime.errors import FailedPrecondition
from tests.router.conftest import MakeClassifier

A = "acme-retail"
B = "globex-home"
MOVED = "is the teal crate from the harbour moving yet"
PARAPHRASES = ("has the teal crate from the harbour moved yet", "the teal harbour crate, moving?")
OTHERS = (
    "where is my order?",
    "I want my money back for the broken lamp",
    "cancel the order I placed this morning",
    "when will the sofa arrive",
    "can I change the delivery address",
    "tell me a joke about cats",
    "and the other one?",
    "the parcel came damaged",
)


def _target(intent: int) -> int:
    """A served intent the text is not decided as today."""
    cancel = I.INTENT_NEGOTIATION_CANCELLATION
    return cancel if intent != cancel else I.INTENT_TRACKING_ETA


def _same(a: Outcome, b: Outcome) -> bool:
    """Equal decisions; the int8 model run on a padded batch moves confidences by ~0.01."""
    return (
        a.version == b.version
        and a.decision.intent == b.decision.intent
        and a.decision.low_confidence == b.decision.low_confidence
        and a.decision.confidence == pytest.approx(b.decision.confidence, abs=0.03)
    )


async def test_one_tenants_exemplars_move_its_decision_and_nobody_elses(
    make_classifier: MakeClassifier,
) -> None:
    classifier = make_classifier()
    texts = (MOVED, *OTHERS)
    before_b = [await classifier.classify(t, tenant_id=B) for t in texts]
    before_a = [await classifier.classify(t, tenant_id=A) for t in texts]
    assert before_a == before_b  # nobody has added anything yet
    target = _target(before_a[0].decision.intent)
    result = await classifier.add_exemplars(
        [Exemplar(t, target) for t in (MOVED, *PARAPHRASES)], "tenant-a-0001", tenant_id=A
    )
    assert result.added == 3

    after_a = await classifier.classify(MOVED, tenant_id=A)
    assert after_a.decision.intent == target
    assert not after_a.decision.low_confidence
    assert after_a.version == result.version != before_a[0].version

    after_b = [await classifier.classify(t, tenant_id=B) for t in texts]
    assert after_b == before_b  # decision, confidence, alternatives and version, all equal
    shipped = [await classifier.classify(t) for t in texts]
    assert shipped == before_b
    assert classifier.view(B) == classifier.view()


async def test_a_mixed_batch_decides_each_query_with_its_own_tenants_exemplars(
    make_classifier: MakeClassifier,
) -> None:
    classifier = make_classifier()
    base = await classifier.classify(MOVED, tenant_id=B)
    target = _target(base.decision.intent)
    await classifier.add_exemplars(
        [Exemplar(t, target) for t in (MOVED, *PARAPHRASES)], "tenant-a-0002", tenant_id=A
    )
    queries = [Query(MOVED, tenant_id=t) for t in (A, B, "", A)] + [
        Query(t, tenant_id=A) for t in OTHERS[:3]
    ]
    batch = classifier.classify_batch(queries)
    one_by_one = [classifier.classify_batch([q])[0] for q in queries]
    assert all(_same(x, y) for x, y in zip(batch, one_by_one, strict=True))
    assert batch[0].decision.intent == batch[3].decision.intent == target
    assert batch[0].version == classifier.view(A).version
    assert _same(batch[1], base)
    assert _same(batch[2], base)


async def test_conflicts_are_checked_within_a_tenant_only(make_classifier: MakeClassifier) -> None:
    classifier = make_classifier()
    text = "the mauve box is stuck at customs"
    await classifier.add_exemplars([Exemplar(text, I.INTENT_OTHER)], "conflict-0001", tenant_id=A)
    # Another tenant labels the same text otherwise: its own business.
    other = await classifier.add_exemplars(
        [Exemplar(text, I.INTENT_TRACKING_STATUS)], "conflict-0001", tenant_id=B
    )
    assert other.added == 1
    with pytest.raises(FailedPrecondition) as raised:
        await classifier.add_exemplars(
            [
                Exemplar("a fresh text for a", I.INTENT_OTHER),
                Exemplar(text, I.INTENT_POLICY_REFUND),
            ],
            "conflict-0002",
            tenant_id=A,
        )
    assert raised.value.reason == "EXEMPLAR_LABEL_CONFLICT"
    assert raised.value.metadata == {"index": "1", "existing_intent": "INTENT_OTHER"}
    assert classifier.view(A).added == 1  # the fresh text of the refused request is not added
    # A duplicate within the tenant adds nothing and keeps the version.
    again = await classifier.add_exemplars(
        [Exemplar(text.upper(), I.INTENT_OTHER)], "conflict-0003", tenant_id=A
    )
    assert again.added == 0
    assert again.version == classifier.view(A).version


async def test_request_ids_are_each_tenants_own(make_classifier: MakeClassifier) -> None:
    classifier = make_classifier()
    first_a = await classifier.add_exemplars(
        [Exemplar("my ochre parcel is late", I.INTENT_TRACKING_STATUS)], "shared-0001", tenant_id=A
    )
    first_b = await classifier.add_exemplars(
        [Exemplar("refund the ochre parcel", I.INTENT_POLICY_REFUND)], "shared-0001", tenant_id=B
    )
    assert first_b.added == 1
    assert (
        await classifier.add_exemplars(
            [Exemplar("my ochre parcel is late", I.INTENT_TRACKING_STATUS)],
            "shared-0001",
            tenant_id=A,
        )
        == first_a
    )
    with pytest.raises(FailedPrecondition) as raised:
        await classifier.add_exemplars(
            [Exemplar("refund the ochre parcel", I.INTENT_POLICY_REFUND)],
            "shared-0001",
            tenant_id=A,
        )
    assert raised.value.reason == "REQUEST_ID_REUSED"


async def test_versions_name_the_tenants_last_stored_sequence(
    make_classifier: MakeClassifier,
) -> None:
    classifier = make_classifier()
    base = classifier.snapshot.version
    a1 = await classifier.add_exemplars(
        [Exemplar("the lilac crate is lost", I.INTENT_TRACKING_STATUS)], "version-0001", tenant_id=A
    )
    b1 = await classifier.add_exemplars(
        [Exemplar("the lilac crate broke", I.INTENT_OTHER)], "version-0001", tenant_id=B
    )
    assert a1.version == f"{base}+t1"
    assert b1.version == f"{base}+t2"
    assert classifier.view(A).version == a1.version


def test_merging_neighbour_lists_keeps_the_k_nearest_first_list_first_on_ties() -> None:
    first = (np.array([[0.9, 0.5, 0.1]], np.float32), np.array([[1, 2, 3]], np.int32))
    second = (np.array([[0.95, 0.5]], np.float32), np.array([[7, 8]], np.int32))
    sims, labels = merge_neighbours(first, second, 4)
    assert sims[0].tolist() == pytest.approx([0.95, 0.9, 0.5, 0.5])
    assert labels.tolist() == [[7, 1, 2, 8]]
