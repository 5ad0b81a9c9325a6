"""The answer cache over the in-process backend: partitions, thresholds, TTLs."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY

from gateway.cache.core import AnswerCache, MemoryBackend, Partition, UseCase
from gateway.cache.index import VectorIndex
from tests.gateway.cache.vectors import DIM, TableEmbedder, at_cosine, unit
from tests.gateway.clock import FakeClock

QUESTION = "what is your return policy"


def partition(tenant: str = "acme-retail", **overrides: str) -> Partition:
    fields = {"use_case": "policy", "intent": "INTENT_POLICY_RETURN_WINDOW", "version": "v1"}
    fields.update(overrides)
    return Partition(tenant=tenant, scope=("region=US", "tier=CUSTOMER_TIER_GOLD"), **fields)


def make(
    table: dict[str, np.ndarray] | None = None,
    *,
    ttl_s: float = 60.0,
    threshold: float = 0.95,
    entries: int = 100,
) -> tuple[AnswerCache, FakeClock, TableEmbedder]:
    clock = FakeClock()
    embed = TableEmbedder(table or {QUESTION: unit(0)})
    cache = AnswerCache(
        MemoryBackend(dim=DIM, entries=entries, clock=clock),
        {"policy": UseCase("policy", ttl_s=ttl_s, threshold=threshold)},
        embed=embed,
        model_id="test",
    )
    return cache, clock, embed


async def remember(cache: AnswerCache, where: Partition, text: str, payload: bytes) -> None:
    lookup = await cache.lookup(where, text)
    assert not lookup.hit
    assert await cache.store(lookup, payload)


async def test_an_equal_question_hits_exactly_without_embedding() -> None:
    cache, _, embed = make()
    await remember(cache, partition(), "What is your return policy?", b"answer")
    embed.asked.clear()
    found = await cache.lookup(partition(), "  what is your RETURN policy ")
    assert found.found is not None
    assert found.found.payload == b"answer"
    assert not found.found.semantic
    assert embed.asked == []


async def test_the_same_question_from_two_tenants_never_shares_an_entry() -> None:
    near = "whats your return policy"
    cache, _, _ = make({QUESTION: unit(0), near: at_cosine(0.999)})
    await remember(cache, partition("acme-retail"), QUESTION, b"acme")
    exact = await cache.lookup(partition("globex-home"), QUESTION)
    semantic = await cache.lookup(partition("globex-home"), near)
    assert not exact.hit
    assert not semantic.hit
    # ...while the owner finds both.
    assert (await cache.lookup(partition("acme-retail"), QUESTION)).hit
    assert (await cache.lookup(partition("acme-retail"), near)).hit


@pytest.mark.parametrize(
    "other",
    [
        {"intent": "INTENT_POLICY_SHIPPING"},
        {"version": "v2"},
        {"use_case": "chat"},
    ],
)
async def test_intent_version_and_use_case_are_walls_too(other: dict[str, str]) -> None:
    cache, _, _ = make()
    await remember(cache, partition(), QUESTION, b"v1")
    assert not (await cache.lookup(partition(**other), QUESTION)).hit


async def test_a_near_duplicate_at_the_threshold_hits_and_just_below_misses() -> None:
    above, below = "return policy please", "tell me the return policy"
    cache, _, _ = make({QUESTION: unit(0), above: at_cosine(0.951), below: at_cosine(0.949)})
    await remember(cache, partition(), QUESTION, b"answer")
    hit = await cache.lookup(partition(), above)
    assert hit.found is not None
    assert hit.found.semantic
    assert hit.found.similarity == pytest.approx(0.951, abs=1e-4)
    assert not (await cache.lookup(partition(), below)).hit


async def test_the_threshold_is_per_use_case() -> None:
    near = "return policy please"
    cache, _, _ = make({QUESTION: unit(0), near: at_cosine(0.97)}, threshold=0.99)
    await remember(cache, partition(), QUESTION, b"answer")
    assert not (await cache.lookup(partition(), near)).hit


async def test_a_question_with_a_number_only_matches_exactly() -> None:
    fourteen, thirty = "can i return after 14 days", "can i return after 30 days"
    cache, _, embed = make({fourteen: unit(0), thirty: unit(0)})  # embeddings identical
    await remember(cache, partition(), fourteen, b"14")
    assert not (await cache.lookup(partition(), thirty)).hit
    assert embed.asked == []


async def test_entries_expire_after_their_ttl() -> None:
    near = "return policy please"
    cache, clock, _ = make({QUESTION: unit(0), near: at_cosine(0.99)}, ttl_s=30.0)
    await remember(cache, partition(), QUESTION, b"answer")
    clock.advance(29.9)
    assert (await cache.lookup(partition(), QUESTION)).hit
    assert (await cache.lookup(partition(), near)).hit
    clock.advance(0.2)
    assert not (await cache.lookup(partition(), QUESTION)).hit
    assert not (await cache.lookup(partition(), near)).hit


async def test_a_full_partition_drops_its_oldest_entry() -> None:
    table = {f"question {c}": unit(i) for i, c in enumerate("abc")}
    cache, _, _ = make(table, entries=2)
    for text in table:
        await remember(cache, partition(), text, text.encode())
    assert not (await cache.lookup(partition(), "question a")).hit
    assert (await cache.lookup(partition(), "question c")).hit


async def test_an_uncached_use_case_is_never_looked_up_or_stored() -> None:
    cache, _, embed = make()
    lookup = await cache.lookup(partition(use_case="tracking"), QUESTION)
    assert not lookup.hit
    assert not await cache.store(lookup, b"x")
    assert embed.asked == []


def test_the_vector_index_skips_expired_and_removed_rows_and_grows() -> None:
    index = VectorIndex(DIM, capacity=2)
    index.put("a", unit(0), expires_at=10.0)
    index.put("b", at_cosine(0.9), expires_at=20.0)
    index.put("c", unit(2), expires_at=20.0)  # grows
    best = index.nearest(unit(0), now=5.0)
    assert best is not None
    assert best.entry_id == "a"
    best = index.nearest(unit(0), now=15.0)
    assert best is not None
    assert best.entry_id == "b"
    index.remove("b")
    best = index.nearest(unit(0), now=15.0)
    assert best is not None
    assert best.entry_id == "c"
    index.expire(30.0)
    assert len(index) == 0
    assert index.nearest(unit(0), now=30.0) is None


def test_partition_keys_name_no_content() -> None:
    key = partition().key
    assert key.startswith("acme-retail:policy:")
    assert "US" not in key
    assert "GOLD" not in key
    assert "RETURNS" not in key


async def test_lookups_are_counted_by_result_and_match() -> None:
    def count(result: str, match: str) -> float:
        labels = {"use_case": "policy", "result": result, "match": match}
        return REGISTRY.get_sample_value("waybill_answer_cache_lookups_total", labels) or 0.0

    near = "return policy please"
    cache, _, _ = make({QUESTION: unit(0), near: at_cosine(0.99)})
    before = {k: count(*k) for k in (("miss", ""), ("hit", "exact"), ("hit", "semantic"))}
    await remember(cache, partition(), QUESTION, b"answer")
    await cache.lookup(partition(), QUESTION)
    await cache.lookup(partition(), near)
    assert count("miss", "") == before["miss", ""] + 1
    assert count("hit", "exact") == before["hit", "exact"] + 1
    assert count("hit", "semantic") == before["hit", "semantic"] + 1
