"""Scenario registry, turn streams and the corpus."""

from __future__ import annotations

import random
import re

import pytest

from bench import corpus, scenarios
from bench.endpoints import SetupError
from bench.gateway import Customer

SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CUSTOMERS = [
    Customer("acme-retail", "k1", "acme-ann", ("WB0000000001",)),
    Customer("acme-retail", "k1", "acme-bob"),
    Customer("globex-home", "k2", "globex-cat", ("WB0000000002", "WB0000000003")),
]


def test_registry_has_the_standard_scenarios() -> None:
    assert {"skeleton", "tracking", "policy", "negotiation"} <= set(scenarios.names())
    assert scenarios.get("skeleton").name == "skeleton"
    with pytest.raises(KeyError, match="known: "):
        scenarios.get("nope")


def test_register_rejects_duplicates() -> None:
    async def build(_ctx: scenarios.ScenarioContext) -> scenarios.TurnSource:
        raise NotImplementedError

    with pytest.raises(ValueError, match="already registered"):
        scenarios.register("skeleton", "again")(build)


def _messages(seed: int, run_tag: str = "tag00000") -> list[tuple[str, str, str, str]]:
    source = scenarios.question_turns(
        CUSTOMERS, corpus.CORE + corpus.VARIANTS, seed=seed, run_tag=run_tag
    )
    turns = [source(i) for i in range(200)]
    return [(t.api_key, t.request.user_id, t.request.message, t.request.session_id) for t in turns]


def test_turns_are_repeatable_per_seed_and_valid() -> None:
    first, again, other = _messages(7), _messages(7), _messages(8)
    assert first == again
    assert [m[:3] for m in first] != [m[:3] for m in other]
    keys = {c.user_id: c.api_key for c in CUSTOMERS}
    for api_key, user_id, message, session_id in first:
        assert keys[user_id] == api_key  # each customer is sent with its tenant's key
        assert SESSION.match(session_id)
        assert 1 <= len(message) <= 4000
    assert len({m[3] for m in first}) == len(first)  # a fresh session per turn


def test_run_tag_changes_sessions_not_workload() -> None:
    a, b = _messages(7, "aaaaaaaa"), _messages(7, "bbbbbbbb")
    assert [m[:3] for m in a] == [m[:3] for m in b]
    assert not {m[3] for m in a} & {m[3] for m in b}


def test_awb_questions_name_the_customers_own_awbs() -> None:
    awbs = {awb for c in CUSTOMERS for awb in c.awbs}
    messages = [m for _, user, m, _ in _messages(7) if "WB" in m]
    assert messages  # 200 draws at 35% for two of three customers
    for _, user_id, message, _ in _messages(7):
        named = set(re.findall(r"WB\d{10}", message))
        own = {a for c in CUSTOMERS if c.user_id == user_id for a in c.awbs}
        assert named <= own <= awbs


def test_corpus_pick_without_awbs_stays_in_phrasings() -> None:
    rng = random.Random(1)
    picked = {corpus.pick(rng, corpus.CORE) for _ in range(100)}
    assert picked == set(corpus.CORE)


def test_empty_customer_pool_is_a_setup_error() -> None:
    with pytest.raises(SetupError, match="no customers"):
        scenarios.question_turns([], corpus.CORE, seed=7, run_tag="t")


def test_dispute_turns_name_only_the_customers_own_shipments() -> None:
    source = scenarios.dispute_turns(CUSTOMERS, seed=3, run_tag="tag00000")
    turns = [source(i) for i in range(100)]
    own = {c.user_id: set(c.awbs) for c in CUSTOMERS}
    assert {t.request.user_id for t in turns} == {"acme-ann", "globex-cat"}  # bob has none
    for t in turns:
        (named,) = re.findall(r"WB\d{10}", t.request.message)
        assert named in own[t.request.user_id]
    with pytest.raises(SetupError, match="no customer has an active shipment"):
        scenarios.dispute_turns(CUSTOMERS[1:2], seed=3, run_tag="tag00000")
