"""Live retraining: new exemplars, a new version, an atomic swap under load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from router.exemplars import Exemplar
from router.intents import I
from router.store import FileExemplarStore
from runtime.errors import FailedPrecondition
from tests.router.conftest import MakeClassifier

NEW = "my pallet hasn't left the freight depot"
TENANT = "acme-retail"


async def test_adding_exemplars_swaps_in_a_new_version(make_classifier: MakeClassifier) -> None:
    classifier = make_classifier()
    before = classifier.snapshot
    result = await classifier.add_exemplars(
        [Exemplar(NEW, I.INTENT_TRACKING_STATUS), Exemplar("hold the crate", I.INTENT_OTHER)],
        "req-00000001",
        tenant_id=TENANT,
    )
    assert result.added == 2
    assert result.version != before.version
    assert result.version.startswith(f"{before.version}+t")
    assert result.exemplar_count == len(before.index) + 2
    view = classifier.view(TENANT)
    assert (view.version, view.exemplar_count, view.added) == (
        result.version,
        result.exemplar_count,
        2,
    )
    outcome = await classifier.classify(NEW, tenant_id=TENANT)
    assert outcome.version == result.version
    assert outcome.decision.intent == I.INTENT_TRACKING_STATUS
    # The shipped snapshot is untouched: every other tenant still uses it.
    assert classifier.snapshot is before
    assert classifier.view().version == before.version


async def test_duplicates_add_nothing_and_keep_the_version(make_classifier: MakeClassifier) -> None:
    classifier = make_classifier()
    version = classifier.snapshot.version
    result = await classifier.add_exemplars(
        [Exemplar("Where is my order?", I.INTENT_TRACKING_STATUS)], "req-00000002", tenant_id=TENANT
    )
    assert result.added == 0
    assert result.version == version


async def test_a_conflicting_label_is_refused(make_classifier: MakeClassifier) -> None:
    classifier = make_classifier()
    with pytest.raises(FailedPrecondition) as raised:
        await classifier.add_exemplars(
            [
                Exemplar("a fresh one", I.INTENT_OTHER),
                Exemplar("where is my order?", I.INTENT_OTHER),
            ],
            "req-00000003",
            tenant_id=TENANT,
        )
    assert raised.value.reason == "EXEMPLAR_LABEL_CONFLICT"
    assert raised.value.metadata == {"index": "1", "existing_intent": "INTENT_TRACKING_STATUS"}
    assert classifier.view(TENANT).added == 0


async def test_a_retry_with_the_same_request_id_answers_the_same(
    make_classifier: MakeClassifier,
) -> None:
    classifier = make_classifier()
    items = [Exemplar(NEW, I.INTENT_TRACKING_STATUS)]
    first = await classifier.add_exemplars(items, "req-00000004", tenant_id=TENANT)
    again = await classifier.add_exemplars(items, "req-00000004", tenant_id=TENANT)
    assert again == first
    with pytest.raises(FailedPrecondition) as raised:
        await classifier.add_exemplars(
            [Exemplar("other", I.INTENT_OTHER)], "req-00000004", tenant_id=TENANT
        )
    assert raised.value.reason == "REQUEST_ID_REUSED"


async def test_added_exemplars_survive_a_restart_in_the_file_store(
    make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    path = tmp_path / "router" / "added-exemplars.jsonl"
    classifier = make_classifier(store=FileExemplarStore(path))
    items = [Exemplar(NEW, I.INTENT_TRACKING_STATUS)]
    result = await classifier.add_exemplars(items, "req-00000005", tenant_id=TENANT)
    await classifier.close()
    restarted = make_classifier(store=FileExemplarStore(path))
    await restarted.sync()
    view = restarted.view(TENANT)
    assert (view.version, view.exemplar_count, view.added) == (
        result.version,
        result.exemplar_count,
        1,
    )
    outcome = await restarted.classify(NEW, tenant_id=TENANT)
    assert outcome.version == result.version
    # The request is remembered too: a retry after the restart gets the first answer.
    assert await restarted.add_exemplars(items, "req-00000005", tenant_id=TENANT) == result
    with pytest.raises(FailedPrecondition) as raised:
        await restarted.add_exemplars(
            [Exemplar("other text", I.INTENT_OTHER)], "req-00000005", tenant_id=TENANT
        )
    assert raised.value.reason == "REQUEST_ID_REUSED"


async def test_no_request_fails_while_indexes_are_swapped(make_classifier: MakeClassifier) -> None:
    """Callers hammer the classifier while three swaps happen; every call succeeds."""
    classifier = make_classifier()
    versions = [classifier.view(TENANT).version]
    stop = asyncio.Event()
    seen: list[str] = []
    failures: list[BaseException] = []
    answered = asyncio.Event()

    async def caller(text: str) -> None:
        while not stop.is_set():
            try:
                outcome = await classifier.classify(text, tenant_id=TENANT)
            except Exception as exc:  # recorded, asserted below
                failures.append(exc)
                answered.set()
                return
            assert outcome.decision.intent == I.INTENT_TRACKING_STATUS
            seen.append(outcome.version)
            answered.set()

    async def answers(count: int) -> None:
        """Wait until ``count`` more calls were answered (callers are in flight)."""
        target = len(seen) + count
        async with asyncio.timeout(30):
            while len(seen) < target and not failures:
                answered.clear()
                await answered.wait()

    callers = [asyncio.ensure_future(caller("where is my parcel?")) for _ in range(8)]
    for round_ in range(3):
        await answers(8)
        added = [
            Exemplar(f"{NEW} (case {round_}-{i})", I.INTENT_TRACKING_STATUS) for i in range(40)
        ]
        result = await classifier.add_exemplars(added, f"swap-{round_:05d}", tenant_id=TENANT)
        versions.append(result.version)
    await answers(8)
    stop.set()
    await asyncio.gather(*callers)
    assert not failures
    assert len(set(versions)) == 4
    assert set(seen) <= set(versions)
    assert seen[-1] == versions[-1]
    # Batches run one after another, each on one snapshot: versions only move forward.
    order = {v: i for i, v in enumerate(versions)}
    positions = [order[v] for v in seen]
    assert positions == sorted(positions)
    assert positions[0] == 0
