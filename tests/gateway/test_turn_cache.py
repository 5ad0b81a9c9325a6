"""The answer cache in the gateway's turn, against stand-in peers on real servers: what
is served, what is kept, what never is, and that a served turn is still governed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from waybill.common.v1 import customer_pb2, events_pb2, intent_pb2, money_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2 as ledger
from waybill.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc
from waybill.worker.v1 import worker_service_pb2 as worker

from gateway.audit import Auditor
from gateway.budgets import Budgets, LedgerClient
from gateway.cache.core import AnswerCache, MemoryBackend, UseCase
from gateway.cache.kb_version import KbVersion
from gateway.turn_cache import CachedTurn, decode, encode
from gateway.turn_cache import TurnCache as GatewayTurnCache
from ledger.embedded_store import EmbeddedLedgerStore
from ledger.service import LedgerServicer
from llm_pool import pricing
from runtime.audit.trail import AuditTrail
from runtime.deadlines import DeadlinePolicy
from runtime.server import Registration
from tests.conftest import StartServer
from tests.gateway.cache.vectors import DIM, TableEmbedder, unit
from tests.gateway.standins import GLOBEX_KEY, Harness, build
from tests.gateway.test_audit import Audited
from tests.gateway.test_budgets import ESTIMATE, Ledger

QUESTION = "What is your return policy?"
ANSWER = "Returns are accepted within 30 days [1]."
CITED = "acme-returns#window"


def policy_script(*, tools: tuple[str, ...] = ("search_policy_kb",), extra: Any = None) -> Any:
    """A policy worker: its tool calls, one citation, the text, the result."""

    def script(request: worker.RunTurnRequest) -> list[worker.RunTurnResponse]:
        events = [
            worker.RunTurnResponse(
                tool_call=events_pb2.ToolCall(name=name, outcome=events_pb2.STATUS_CODE_OK)
            )
            for name in tools
        ]
        events.append(
            worker.RunTurnResponse(citation=events_pb2.Citation(chunk_id=CITED, doc_id="d"))
        )
        if extra is not None:
            events.append(extra)
        state = type(request.state)()
        state.CopyFrom(request.state)
        state.policy.cited_chunk_ids.append(CITED)
        events.append(worker.RunTurnResponse(delta=events_pb2.TextDelta(text=ANSWER)))
        events.append(worker.RunTurnResponse(result=worker.TurnResult(answer=ANSWER, state=state)))
        return events

    return script


def turn_cache(kb: Path, embed: TableEmbedder | None = None) -> GatewayTurnCache:
    kb.mkdir(exist_ok=True)
    (kb / "CURRENT").write_text(json.dumps({"version": "v1"}))
    answers = AnswerCache(
        MemoryBackend(dim=DIM),
        {"policy": UseCase("policy", ttl_s=600.0)},
        embed=embed or TableEmbedder({}),
        model_id="test",
    )
    return GatewayTurnCache(answers, KbVersion(kb, poll_s=0.0))


@pytest.fixture
async def cached(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], tmp_path: Path
) -> AsyncIterator[Harness]:
    built = await build(serve, channels, turn_cache=turn_cache(tmp_path / "kb"))
    gw = built.harness
    gw.router.intent = intent_pb2.INTENT_POLICY_RETURN_WINDOW
    gw.router.worker = intent_pb2.WORKER_POLICY
    gw.workers[intent_pb2.WORKER_POLICY].script = policy_script()
    yield gw
    for ch in built.channels:
        await ch.close()


def policy(gw: Harness) -> Any:
    return gw.workers[intent_pb2.WORKER_POLICY]


def kinds(events: list[Any]) -> list[str]:
    return [e.WhichOneof("kind") for e in events]


async def test_the_second_equal_policy_question_is_served_from_the_cache(cached: Harness) -> None:
    first, error = await cached.converse(QUESTION, session_id="session-first1")
    assert error is None
    assert not first[-1].final.cache_hit
    second, error = await cached.converse(
        "  what is your RETURN policy ", session_id="session-other1", user_id="acme-0002"
    )
    assert error is None
    assert policy(cached).calls == 1
    assert kinds(second) == ["citation", "delta", "final"]
    final = second[-1].final
    assert final.cache_hit
    assert final.answer == ANSWER
    assert final.worker == intent_pb2.WORKER_POLICY
    assert final.usage.input_tokens == 0
    assert second[0].citation.chunk_id == CITED
    # The session is written as the worker would have left it.
    session = (await cached.get_session(session_id="session-other1", user_id="acme-0002")).session
    assert [t.text for t in session.state.turns] == ["  what is your RETURN policy ", ANSWER]
    assert list(session.state.policy.cited_chunk_ids) == [CITED]


async def test_the_same_question_from_another_tenant_is_answered_afresh(cached: Harness) -> None:
    await cached.converse(QUESTION)
    events, error = await cached.converse(QUESTION, user_id="globex-0001", key=GLOBEX_KEY)
    assert error is None
    assert not events[-1].final.cache_hit
    assert policy(cached).calls == 2


async def test_a_tracking_answer_is_never_served_from_the_cache(cached: Harness) -> None:
    cached.router.intent = intent_pb2.INTENT_TRACKING_STATUS
    cached.router.worker = intent_pb2.WORKER_TRACKING
    for _ in range(2):
        events, error = await cached.converse("where is my order?")
        assert error is None
        assert not events[-1].final.cache_hit
    assert cached.tracking.calls == 2


async def test_a_message_with_personal_data_is_neither_served_nor_kept(cached: Harness) -> None:
    await cached.converse(QUESTION)  # kept
    cached.guardrails.findings = 1
    events, _ = await cached.converse(QUESTION)
    assert not events[-1].final.cache_hit
    events, _ = await cached.converse("what about exchanges?")
    cached.guardrails.findings = 0
    events, _ = await cached.converse("what about exchanges?")
    assert not events[-1].final.cache_hit  # the turn with personal data was not kept
    assert policy(cached).calls == 4


async def test_a_question_about_the_customers_own_order_bypasses_the_cache(
    cached: Harness,
) -> None:
    cached.orders.active = [
        customer_pb2.OrderBrief(order_id="ORD-20260001", awb="WB1234567890", title="Laptop stand")
    ]
    question = "Can I return my laptop stand?"
    for _ in range(2):
        events, _ = await cached.converse(question)
        assert not events[-1].final.cache_hit
    assert policy(cached).calls == 2


@pytest.mark.parametrize(
    ("tools", "extra"),
    [
        (("get_order", "search_policy_kb"), None),
        (("get_return_window", "search_policy_kb"), None),
        (("search_policy_kb",), worker.RunTurnResponse(escalation=events_pb2.Escalation())),
        (
            ("search_policy_kb",),
            worker.RunTurnResponse(
                refusal=events_pb2.Refusal(reason=events_pb2.REFUSAL_REASON_OUTPUT_BLOCKED)
            ),
        ),
    ],
)
async def test_an_answer_from_a_customer_tool_or_that_ended_elsewhere_is_not_kept(
    cached: Harness, tools: tuple[str, ...], extra: Any
) -> None:
    policy(cached).script = policy_script(tools=tools, extra=extra)
    for _ in range(2):
        events, _ = await cached.converse(QUESTION)
        assert not events[-1].final.cache_hit
    assert policy(cached).calls == 2


async def test_an_answer_that_names_an_order_or_a_parcel_is_not_kept(cached: Harness) -> None:
    def names_a_parcel(request: worker.RunTurnRequest) -> list[worker.RunTurnResponse]:
        text = "Your parcel WB1234567890 can be returned within 30 days."
        return [
            worker.RunTurnResponse(
                tool_call=events_pb2.ToolCall(name="search_policy_kb"),
            ),
            worker.RunTurnResponse(delta=events_pb2.TextDelta(text=text)),
            worker.RunTurnResponse(result=worker.TurnResult(answer=text, state=request.state)),
        ]

    policy(cached).script = names_a_parcel
    for _ in range(2):
        events, _ = await cached.converse(QUESTION)
        assert not events[-1].final.cache_hit
    assert policy(cached).calls == 2


async def test_a_new_knowledge_base_version_is_a_new_partition(
    cached: Harness, tmp_path: Path
) -> None:
    await cached.converse(QUESTION)
    (tmp_path / "kb" / "CURRENT").write_text(json.dumps({"version": "v2"}))
    events, _ = await cached.converse(QUESTION)
    assert not events[-1].final.cache_hit
    assert policy(cached).calls == 2


async def test_no_knowledge_base_version_means_no_cache(cached: Harness, tmp_path: Path) -> None:
    (tmp_path / "kb" / "CURRENT").unlink()
    for _ in range(2):
        events, _ = await cached.converse(QUESTION)
        assert not events[-1].final.cache_hit


async def test_a_near_duplicate_is_served_and_one_below_the_threshold_is_not(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], tmp_path: Path
) -> None:
    near, far = "whats your return policy", "tell me about your returns"
    embed = TableEmbedder(
        {"what is your return policy": unit(0), near: unit(0) * 0.999, far: unit(1)}
    )
    built = await build(serve, channels, turn_cache=turn_cache(tmp_path / "kb", embed))
    gw = built.harness
    gw.router.intent, gw.router.worker = (
        intent_pb2.INTENT_POLICY_RETURN_WINDOW,
        intent_pb2.WORKER_POLICY,
    )
    gw.workers[intent_pb2.WORKER_POLICY].script = policy_script()
    try:
        await gw.converse(QUESTION)
        events, _ = await gw.converse(near)
        assert events[-1].final.cache_hit
        events, _ = await gw.converse(far)
        assert not events[-1].final.cache_hit
    finally:
        for ch in built.channels:
            await ch.close()


@pytest.mark.parametrize("model", ["test", "another-model"])
async def test_a_semantic_lookup_reuses_the_routers_vector_when_the_same_model_made_it(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], tmp_path: Path, model: str
) -> None:
    near = "whats your return policy"
    embed = TableEmbedder({})  # the gateway's own vectors: scattered, so nothing would match
    built = await build(serve, channels, turn_cache=turn_cache(tmp_path / "kb", embed))
    gw = built.harness
    gw.router.intent, gw.router.worker = (
        intent_pb2.INTENT_POLICY_RETURN_WINDOW,
        intent_pb2.WORKER_POLICY,
    )
    gw.router.vectors = {QUESTION: list(unit(0)), near: list(unit(0) * 0.999)}
    gw.router.model_version = model
    gw.workers[intent_pb2.WORKER_POLICY].script = policy_script()
    try:
        await gw.converse(QUESTION)
        events, _ = await gw.converse(near)
        # The router is asked for the vector of a message it routes to a semantically
        # cached worker (the gateway cannot know the worker before asking).
        assert gw.router.embedding_for == [(intent_pb2.WORKER_POLICY,)] * 2
        if model == "test":  # the cache's own model: reused, the gateway ran no model
            assert events[-1].final.cache_hit
            assert embed.asked == []
        else:  # another model's vector is never compared with this cache's
            assert not events[-1].final.cache_hit
            assert embed.asked == ["what is your return policy", near]
    finally:
        for ch in built.channels:
            await ch.close()


async def test_without_semantic_matching_the_router_is_not_asked_for_vectors(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "CURRENT").write_text(json.dumps({"version": "v1"}))
    exact_only = GatewayTurnCache(
        AnswerCache(MemoryBackend(dim=DIM), {"policy": UseCase("policy", ttl_s=600.0)}),
        KbVersion(kb, poll_s=0.0),
    )
    built = await build(serve, channels, turn_cache=exact_only)
    try:
        await built.harness.converse(QUESTION)
        assert built.harness.router.embedding_for == [()]
    finally:
        for ch in built.channels:
            await ch.close()


async def test_a_served_turn_is_reserved_and_charged_nothing(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], tmp_path: Path
) -> None:
    store = await EmbeddedLedgerStore.open(tmp_path / "ledger", default_limit=1_000_000, ttl_s=300)
    address = await serve(
        "ledger",
        [
            Registration(
                "waybill.ledger.v1.LedgerService",
                ledger_grpc.add_LedgerServiceServicer_to_server,
                LedgerServicer(store, pricing.load()),
            )
        ],
    )
    stub = ledger_grpc.LedgerServiceStub(channels(address))
    client = LedgerClient(stub, policy=DeadlinePolicy())
    budgets = Budgets(client, money_pb2.Cost(currency_code="USD", micro_units=ESTIMATE))
    built = await build(serve, channels, budgets=budgets, turn_cache=turn_cache(tmp_path / "kb"))
    gw, books = built.harness, Ledger(stub)
    gw.router.intent, gw.router.worker = (
        intent_pb2.INTENT_POLICY_RETURN_WINDOW,
        intent_pb2.WORKER_POLICY,
    )
    gw.workers[intent_pb2.WORKER_POLICY].script = policy_script()
    try:
        await gw.converse(QUESTION)
        charged = (await books.settled()).spent.micro_units
        events, error = await gw.converse(QUESTION)
        assert error is None
        final = events[-1].final
        assert final.cache_hit
        assert final.budget_state == ledger.BUDGET_STATE_OK
        assert final.usage.cost.micro_units == 0
        assert (await books.settled()).spent.micro_units == charged
        # A budget that cannot cover a turn's worst case refuses a cached answer too.
        await stub.SetBudget(
            ledger.SetBudgetRequest(
                tenant_id="acme-retail",
                team_id="support",
                limit=money_pb2.Cost(currency_code="USD", micro_units=charged + ESTIMATE - 1),
            ),
            timeout=5,
        )
        events, error = await gw.converse(QUESTION)
        assert error is not None
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "final" not in kinds(events)
    finally:
        await budgets.close()
        for ch in built.channels:
            await ch.close()
        await store.close()


def test_a_payload_round_trips_and_junk_decodes_to_nothing() -> None:
    turn = CachedTurn(
        (
            pb.TurnEvent(citation=events_pb2.Citation(chunk_id=CITED)),
            pb.TurnEvent(delta=events_pb2.TextDelta(text=ANSWER)),
        ),
        ANSWER,
    )
    assert decode(encode(turn)) == turn
    for junk in (b"", b"\x00\x00\x00\x05abc", b"\xff" * 10, encode(turn)[:-3]):
        assert decode(junk) is None


async def test_the_audit_record_says_which_turn_was_served_from_the_cache(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], tmp_path: Path
) -> None:
    trail = AuditTrail.open(tmp_path / "audit", keys_file=tmp_path / "keys" / "keys.sqlite3")
    built = await build(
        serve, channels, turn_cache=turn_cache(tmp_path / "kb"), auditor=Auditor(trail)
    )
    gw = built.harness
    gw.router.intent = intent_pb2.INTENT_POLICY_RETURN_WINDOW
    gw.router.worker = intent_pb2.WORKER_POLICY
    gw.workers[intent_pb2.WORKER_POLICY].script = policy_script()
    try:
        for session_id in ("session-first1", "session-other1"):
            _, error = await gw.converse(QUESTION, session_id=session_id)
            assert error is None
        audited = Audited(gw, trail, tmp_path / "audit")
        records = await audited.records()
        assert [r.cache_hit for r in records] == [False, True]
        assert [r.worker for r in records] == ["WORKER_POLICY", "WORKER_POLICY"]
    finally:
        for ch in built.channels:
            await ch.close()
        await trail.aclose()
