"""The fleet: router replicas share one PostgreSQL exemplar store. An addition on one
replica reaches the others (same version, same decision); a replica started later
serves the current version from its first answer; retries are idempotent across
replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from router.classifier import Classifier, ClassifierOptions
from router.exemplars import Exemplar
from router.intents import I
from router.pg_store import PostgresExemplarStore
from router.store import RequestIdReused, StoredConflict
from tests.router.conftest import MakeClassifier
from tests.support.postgres_server import PG_DSN, pg_schema  # noqa: F401

pytestmark = pytest.mark.postgres

T = "acme-retail"
OTHER = "globex-home"
TEXT = "the crimson pallet has not left the quay"
CONVERGE_S = 10.0

OpenStore = Callable[[], Awaitable[PostgresExemplarStore]]


@pytest.fixture
async def open_store(pg_schema: str) -> AsyncIterator[OpenStore]:  # noqa: F811
    """Stores on this test's schema (one per replica); closed after the test."""
    opened: list[PostgresExemplarStore] = []

    async def _open() -> PostgresExemplarStore:
        store = await PostgresExemplarStore.open(PG_DSN, schema=pg_schema)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        await store.close()


async def _converged(replica: Classifier, sequence: int) -> None:
    """Wait until ``replica``'s follower serves the store's rows up to ``sequence``."""
    async with asyncio.timeout(CONVERGE_S):
        await replica.applied(sequence)


async def test_stores_answer_a_retry_the_same_on_any_replica(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    items = [Exemplar(TEXT, I.INTENT_TRACKING_STATUS), Exemplar("quay pallet?", I.INTENT_OTHER)]
    answer = await first.append(T, items, request_id="fleet-0001", fingerprint="f1")
    assert answer.added == 2
    assert answer.tenant_count == 2
    assert await second.append(T, items, request_id="fleet-0001", fingerprint="f1") == answer
    with pytest.raises(RequestIdReused):
        await second.append(T, items[:1], request_id="fleet-0001", fingerprint="f2")
    # The same id is another tenant's own.
    other = await second.append(OTHER, items[:1], request_id="fleet-0001", fingerprint="f2")
    assert other.added == 1
    assert other.last_sequence > answer.last_sequence
    rows = await second.load_all()
    assert {t: len(r) for t, r in rows.items()} == {T: 2, OTHER: 1}
    assert await second.changes_since(answer.last_sequence) == rows[OTHER]


async def test_a_conflict_adds_nothing_and_frees_the_request_id(open_store: OpenStore) -> None:
    store = await open_store()
    await store.append(
        T, [Exemplar(TEXT, I.INTENT_OTHER)], request_id="fleet-0002", fingerprint="f1"
    )
    with pytest.raises(StoredConflict) as raised:
        await store.append(
            T,
            [Exemplar("a new one", I.INTENT_OTHER), Exemplar(TEXT.upper(), I.INTENT_POLICY_REFUND)],
            request_id="fleet-0003",
            fingerprint="f2",
        )
    assert (raised.value.position, raised.value.existing) == (1, I.INTENT_OTHER)
    assert len((await store.load_all())[T]) == 1
    fixed = await store.append(
        T, [Exemplar("a new one", I.INTENT_OTHER)], request_id="fleet-0003", fingerprint="f3"
    )
    assert fixed.added == 1


async def test_one_request_sent_to_two_replicas_at_once_adds_once(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    items = [Exemplar(f"{TEXT} ({i})", I.INTENT_TRACKING_STATUS) for i in range(5)]
    answers = await asyncio.gather(
        first.append(T, items, request_id="fleet-0004", fingerprint="f"),
        second.append(T, items, request_id="fleet-0004", fingerprint="f"),
    )
    assert answers[0] == answers[1]
    assert answers[0].added == 5
    assert len((await first.load_all())[T]) == 5


async def test_an_addition_on_one_replica_reaches_the_others(
    make_classifier: MakeClassifier, open_store: OpenStore
) -> None:
    # A long poll: convergence within the deadline comes from LISTEN/NOTIFY.
    options = ClassifierOptions(follow_poll_s=60.0)
    b_store = await open_store()
    a = make_classifier(store=await open_store(), options=options, follow=True)
    b = make_classifier(store=b_store, options=options, follow=True)
    await asyncio.gather(a.sync(), b.sync())
    before = await b.classify(TEXT, tenant_id=T)
    target = I.INTENT_NEGOTIATION_CANCELLATION
    assert before.decision.intent != target
    # Let b's listener start listening before the commit it must hear of.
    async with asyncio.timeout(CONVERGE_S):
        await b_store.listening.wait()
    result = await a.add_exemplars(
        [Exemplar(TEXT, target), Exemplar("crimson quay pallet still not moving", target)],
        "fleet-0005",
        tenant_id=T,
    )
    assert a.view(T).version == result.version  # a answers once its own overlay is swapped
    await _converged(b, a.applied_sequence)
    on_a = await a.classify(TEXT, tenant_id=T)
    on_b = await b.classify(TEXT, tenant_id=T)
    assert on_a.decision.intent == on_b.decision.intent == target
    assert on_a.version == on_b.version == result.version
    assert b.view(T) == a.view(T)
    # A retry sent to the other replica gets the first answer.
    retry = await b.add_exemplars(
        [Exemplar(TEXT, target), Exemplar("crimson quay pallet still not moving", target)],
        "fleet-0005",
        tenant_id=T,
    )
    assert retry == result
    # Another tenant is untouched on both replicas.
    assert a.view(OTHER) == b.view(OTHER) == a.view()

    late = make_classifier(store=await open_store())
    await late.sync()  # what the router does before it reports SERVING
    assert late.view(T) == a.view(T)
    first_answer = await late.classify(TEXT, tenant_id=T)
    assert first_answer.version == result.version
    assert first_answer.decision.intent == target


async def test_the_poll_catches_up_when_no_notice_comes(
    make_classifier: MakeClassifier, open_store: OpenStore
) -> None:
    writer = await open_store()
    b = make_classifier(
        store=await open_store(), options=ClassifierOptions(follow_poll_s=0.2), follow=True
    )
    await b.sync()
    # A writer that notifies nobody: a row as a lost notice would leave it.
    async with writer._lock:
        conn = await writer._connection()
        async with conn.transaction():
            await conn.execute(
                f"INSERT INTO {writer.schema}.exemplars"
                " (tenant_id, text, dedup_key, intent, request_id, fingerprint)"
                " VALUES (%s, %s, %s, 'INTENT_OTHER', 'manual-0001', 'f')",
                (T, TEXT, TEXT),
            )
    rows = await writer.changes_since(0)
    await _converged(b, rows[-1].sequence)
    assert b.view(T).version == f"{b.snapshot.version}+t{rows[-1].sequence}"
    assert b.view(T).added == 1
