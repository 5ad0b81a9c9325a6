"""The negotiation worker's state machine over real gRPC: a worker in front of a real
orders server (SQLite store, seeded data), each case driven turn by turn with the state
carried from one turn to the next as the gateway carries it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY
from waybill.common.v1 import conversation_pb2, customer_pb2, intent_pb2, money_pb2, usage_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import worker_service_pb2 as pb
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool.composer import Composer
from llm_pool.openai import OpenAIBackend
from llm_pool.pool import LinkOptions, LLMPool
from llm_pool.retry import RetryPolicy
from orders import seed
from orders.service import OrdersServicer
from orders.sqlite_store import SqliteOrderStore
from runtime.client import channel
from runtime.deadlines import DeadlinePolicy
from runtime.errors import error_info_of
from runtime.server import Registration
from tests.conftest import StartServer
from tests.llm_pool import fake_openai
from workers.negotiation import machine
from workers.negotiation.machine import Limits
from workers.negotiation.service import NegotiationServicer
from workers.negotiation.templates import TEMPLATES
from workers.shadow import Shadow, ShadowSettings
from workers.tool_payloads import DIFFERS
from workers.tools import MALFORMED

I = intent_pb2  # noqa: E741
S = customer_pb2.ShipmentStatus
Stage = conversation_pb2.NegotiationStage
EASY = Limits(
    fraud_escalate_bp=10_001,
    auto_refund_minor=dict.fromkeys(range(5), 10**9),
    refunds_per_period=10**6,
)
"""Limits under which nothing escalates for fraud, amount or refund count."""


@dataclass
class Turn:
    events: list[pb.RunTurnResponse]
    error: grpc.aio.AioRpcError | None

    def of(self, kind: str) -> list[pb.RunTurnResponse]:
        return [e for e in self.events if e.WhichOneof("event") == kind]

    @property
    def state(self) -> conversation_pb2.ConversationState:
        (result,) = self.of("result")
        return result.result.state

    @property
    def answer(self) -> str:
        return "".join(e.delta.text for e in self.of("delta"))

    @property
    def tools(self) -> list[str]:
        return [e.tool_call.name for e in self.of("tool_call")]


class Case:
    """One customer's conversation with the worker."""

    def __init__(self, env: Env, order: orders_pb2.Order, session: str) -> None:
        self.env, self.order, self.session = env, order, session
        self.tenant = env.tenant[order.user_id]
        self.state = conversation_pb2.ConversationState()
        self.block = ""
        """The hydrated context block (a model reads it in the system message)."""

    def request(self, **fields: object) -> pb.RunTurnRequest:
        return pb.RunTurnRequest(
            tenant_id=self.tenant,
            user_id=self.order.user_id,
            session_id=self.session,
            state=self.state,
            context=customer_pb2.HydratedContext(
                tier=self.env.tier[self.order.user_id], block=self.block
            ),
            **fields,  # type: ignore[arg-type]
        )

    async def send(
        self,
        message: str,
        intent: intent_pb2.Intent = I.INTENT_NEGOTIATION_DELIVERY_DISPUTE,
        worker: pb_grpc.WorkerServiceStub | None = None,
    ) -> Turn:
        return await self.run(self.request(message=message, intent=intent, confidence=0.9), worker)

    async def decide(
        self,
        decision: conversation_pb2.Decision,
        action_id: str = "",
        worker: pb_grpc.WorkerServiceStub | None = None,
    ) -> Turn:
        action = action_id or self.state.pending_action.action_id
        return await self.run(
            self.request(
                decision=pb.ActionDecision(action_id=action, decision=decision),
                intent=I.INTENT_NEGOTIATION_REFUND_REQUEST,
            ),
            worker,
        )

    async def run(
        self, request: pb.RunTurnRequest, worker: pb_grpc.WorkerServiceStub | None = None
    ) -> Turn:
        events: list[pb.RunTurnResponse] = []
        error = None
        try:
            async for event in (worker or self.env.worker).RunTurn(request, timeout=10):
                events.append(event)
        except grpc.aio.AioRpcError as exc:
            error = exc
        turn = Turn(events, error)
        if error is None:
            self.state = turn.state
            self.state.turns.add(role=conversation_pb2.ROLE_CUSTOMER, text="…")
        return turn

    async def refunds(self) -> list[orders_pb2.Refund]:
        return await self.env.store.refunds(self.tenant, self.order.user_id, self.order.order_id)


@dataclass
class Env:
    data: seed.Dataset
    store: SqliteOrderStore
    worker: pb_grpc.WorkerServiceStub
    start: Callable[..., Awaitable[pb_grpc.WorkerServiceStub]]
    tenant: dict[str, str]
    tier: dict[str, customer_pb2.CustomerTier]
    shipments: dict[str, orders_pb2.Shipment]

    def find(
        self, match: Callable[[orders_pb2.Order, orders_pb2.Shipment], bool], skip: int = 0
    ) -> orders_pb2.Order:
        found = [o for o in self.data.orders if match(o, self.shipments[o.awb])]
        assert len(found) > skip, "the seeded data has no such order"
        return found[skip]

    def case(self, order: orders_pb2.Order, n: int = 0) -> Case:
        return Case(self, order, f"session-neg-{order.order_id[-4:]}-{n}")


def delivered_recently(order: orders_pb2.Order, shipment: orders_pb2.Shipment) -> bool:
    now = datetime.now(UTC)
    return (
        shipment.status == S.SHIPMENT_STATUS_DELIVERED
        and now - shipment.delivered_time.ToDatetime(UTC) < timedelta(days=20)
    )


@pytest.fixture
async def env(serve: StartServer, channels: Callable[[str], grpc.aio.Channel]) -> Env:
    data = seed.generate(customers_per_tenant=20)
    store = SqliteOrderStore(":memory:")
    await store.load(data)
    orders_addr = await serve(
        "orders",
        [
            Registration(
                "waybill.orders.v1.OrdersService",
                orders_grpc.add_OrdersServiceServicer_to_server,
                OrdersServicer(store),
            )
        ],
    )
    downstream = channel(orders_addr, policy=DeadlinePolicy())

    async def start(limits: Limits, **options: Any) -> pb_grpc.WorkerServiceStub:
        servicer = NegotiationServicer(orders_grpc.OrdersServiceStub(downstream), limits, **options)
        address = await serve(
            "negotiation",
            [
                Registration(
                    "waybill.worker.v1.WorkerService",
                    pb_grpc.add_WorkerServiceServicer_to_server,
                    servicer,
                )
            ],
        )
        return pb_grpc.WorkerServiceStub(channels(address))

    return Env(
        data=data,
        store=store,
        worker=await start(EASY),
        start=start,
        tenant={c.user_id: c.tenant_id for c in data.customers},
        tier={c.user_id: c.tier for c in data.customers},
        shipments={s.awb: s for s in data.shipments},
    )


def _code(turn: Turn) -> tuple[grpc.StatusCode, str]:
    assert turn.error is not None
    info = error_info_of(turn.error)
    return turn.error.code(), info.reason if info else ""


async def test_a_dispute_is_proposed_confirmed_refunded_and_notified(env: Env) -> None:
    order = env.find(delivered_recently)
    case = env.case(order)
    proposed = await case.send(f"My order {order.order_id} says delivered but it never came")
    assert proposed.error is None
    assert proposed.tools == ["get_order", "get_order_status", "check_fraud_score"]
    (request,) = proposed.of("confirmation_request")
    action = request.confirmation_request.action
    assert action.amount == order.total
    assert action.order_id == order.order_id
    assert case.state.negotiation.stage == Stage.NEGOTIATION_STAGE_AWAITING_CONFIRMATION
    assert case.state.pending_action == action
    assert "Please confirm" in proposed.answer
    assert await case.refunds() == []  # nothing is written before the confirmation

    done = await case.decide(conversation_pb2.DECISION_CONFIRM)
    assert done.error is None
    assert done.tools == ["get_order", "initiate_refund", "send_notification"]
    (refund,) = await case.refunds()
    assert refund.idempotency_key == action.action_id  # the key is the confirmed action
    assert refund.reason == orders_pb2.REFUND_REASON_DELIVERY_DISPUTE
    assert refund.refund_id in done.answer
    assert case.state.negotiation.stage == Stage.NEGOTIATION_STAGE_COMPLETED
    assert not case.state.HasField("pending_action")
    assert len(await env.store.notifications(case.tenant, order.user_id)) == 1


async def test_the_next_message_tells_the_truth_about_a_refund_whose_reply_was_lost(
    env: Env,
) -> None:
    order = env.find(delivered_recently, skip=6)
    case = env.case(order)
    await case.send(f"{order.order_id} never arrived")
    action = case.state.pending_action
    # The confirmation reached orders and the refund was made, but its reply never came
    # back (a crash, a dropped reply, a deadline): the session still has the offer.
    lost = await env.store.create_refund(
        case.tenant,
        order.user_id,
        order.order_id,
        action.amount,
        orders_pb2.REFUND_REASON_DELIVERY_DISPUTE,
        key=action.action_id,
        digest="a-confirmation-whose-reply-was-lost",
        now=datetime.now(UTC),
    )
    turn = await case.send("Did my refund go through?")
    assert turn.error is None
    assert turn.tools == ["list_refunds", "send_notification"]
    assert lost.value.refund_id in turn.answer
    assert "Done: I've refunded" in turn.answer
    assert turn.of("confirmation_request") == []
    assert case.state.negotiation.stage == Stage.NEGOTIATION_STAGE_COMPLETED
    assert not case.state.HasField("pending_action")
    assert len(await case.refunds()) == 1
    assert len(await env.store.notifications(case.tenant, order.user_id)) == 1


async def test_an_offer_that_was_not_carried_out_is_asked_again(env: Env) -> None:
    order = env.find(delivered_recently, skip=7)
    case = env.case(order)
    await case.send(f"{order.order_id} never arrived")
    action = case.state.pending_action
    turn = await case.send("Did my refund go through?")
    assert turn.tools == ["list_refunds"]
    (asked,) = turn.of("confirmation_request")
    assert asked.confirmation_request.action == action
    assert "waiting for your answer" in turn.answer
    assert await case.refunds() == []


async def test_a_retried_or_doubled_confirmation_makes_one_refund(env: Env) -> None:
    order = env.find(delivered_recently, skip=1)
    case = env.case(order)
    await case.send(f"{order.order_id} never arrived")
    pending = conversation_pb2.ConversationState()
    pending.CopyFrom(case.state)
    # Two gateway replicas carry the same confirmation at once, then a retry after a
    # lost reply arrives with the state as it was before the refund.
    first, second = await asyncio.gather(
        case.decide(conversation_pb2.DECISION_CONFIRM),
        case.decide(conversation_pb2.DECISION_CONFIRM),
    )
    case.state = pending
    retry = await case.decide(conversation_pb2.DECISION_CONFIRM)
    answers = {t.answer for t in (first, second, retry)}
    assert len(answers) == 1  # the same refund, told the same way each time
    (refund,) = await case.refunds()
    assert refund.refund_id in answers.pop()
    assert len(await env.store.notifications(case.tenant, order.user_id)) == 1


async def test_a_decline_writes_nothing(env: Env) -> None:
    case = env.case(env.find(delivered_recently, skip=2))
    await case.send(f"{case.order.order_id} never came")
    declined = await case.decide(conversation_pb2.DECISION_DECLINE)
    assert declined.error is None
    assert declined.tools == []
    assert case.state.negotiation.stage == Stage.NEGOTIATION_STAGE_DECLINED
    assert not case.state.HasField("pending_action")
    assert await case.refunds() == []


async def test_forbidden_transitions_write_nothing(env: Env) -> None:
    case = env.case(env.find(delivered_recently, skip=3))
    # A refund before any proposal: FAILED_PRECONDITION.
    early = await case.decide(conversation_pb2.DECISION_CONFIRM, action_id="act_" + "0" * 24)
    assert _code(early) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_PENDING_ACTION")
    await case.send(f"{case.order.order_id} never came")
    # Another action id (someone else's, or a stale one): NOT_FOUND.
    foreign = await case.decide(conversation_pb2.DECISION_CONFIRM, action_id="act_" + "f" * 24)
    assert _code(foreign) == (grpc.StatusCode.NOT_FOUND, "ACTION_NOT_FOUND")
    assert [e.error.message for e in foreign.of("error")] != []
    # The same action after its time ran out: the same NOT_FOUND.
    case.state.pending_action.expire_time.FromDatetime(datetime.now(UTC) - timedelta(seconds=1))
    expired = await case.decide(conversation_pb2.DECISION_CONFIRM)
    assert _code(expired) == (grpc.StatusCode.NOT_FOUND, "ACTION_NOT_FOUND")
    assert await case.refunds() == []


async def test_a_pending_offer_is_asked_again_until_its_time_runs_out(env: Env) -> None:
    case = env.case(env.find(delivered_recently, skip=12))
    first = await case.send(f"{case.order.order_id} never came")
    action = case.state.pending_action
    again = await case.send("so what now?")
    assert again.tools == ["list_refunds"]  # asked again once it was not carried out
    assert again.of("confirmation_request")[0].confirmation_request.action == action
    case.state.pending_action.expire_time.FromDatetime(datetime.now(UTC) - timedelta(seconds=1))
    fresh = await case.send(f"{case.order.order_id} never came")
    (request,) = fresh.of("confirmation_request")
    assert request.confirmation_request.action.action_id != action.action_id  # a new offer
    assert first.error is None
    assert await case.refunds() == []


async def test_a_high_fraud_score_goes_to_a_person(env: Env) -> None:
    env.worker = await env.start(replace(EASY, fraud_escalate_bp=0))
    case = env.case(env.find(delivered_recently, skip=4))
    turn = await case.send(
        f"{case.order.order_id} was never delivered, my address is 12 Elm Street"
    )
    assert turn.error is None
    assert turn.tools[-2:] == ["check_fraud_score", "escalate_to_human"]
    (event,) = turn.of("escalation")
    assert event.escalation.ticket_id.startswith("TCK-")
    assert event.escalation.reason == "fraud"
    assert event.escalation.ticket_id in turn.answer
    assert case.state.negotiation.stage == Stage.NEGOTIATION_STAGE_ESCALATED
    # The conversation remembers its ticket: the gateway hands it over once claimed.
    assert case.state.hand_over.ticket_id == event.escalation.ticket_id
    assert case.state.hand_over.queue == event.escalation.queue
    assert turn.of("confirmation_request") == []
    assert await case.refunds() == []


@pytest.mark.parametrize(("days_ago", "escalates"), [(2, True), (31, False)])
async def test_one_refund_too_many_in_the_period_goes_to_a_person(
    env: Env, days_ago: int, escalates: bool
) -> None:
    env.worker = await env.start(replace(EASY, refunds_per_period=2))
    case = env.case(env.find(delivered_recently, skip=5))
    order = case.order
    for n in range(2):  # two earlier refunds of this customer, days_ago
        await env.store.create_refund(
            case.tenant,
            order.user_id,
            order.order_id,
            money_pb2.Money(currency_code=order.total.currency_code, minor_units=1),
            orders_pb2.REFUND_REASON_DAMAGED_ITEM,
            key=f"earlier-refund-{n}-{days_ago}",
            digest=f"d{n}",
            now=datetime.now(UTC) - timedelta(days=days_ago),
        )
    turn = await case.send(f"{order.order_id} never arrived, please refund it")
    assert turn.error is None
    assert case.state.negotiation.recent_refunds == (2 if escalates else 0)
    if not escalates:  # refunds older than 30 days do not count
        assert len(turn.of("confirmation_request")) == 1
        return
    (event,) = turn.of("escalation")
    assert event.escalation.reason == "frequent"
    assert "several refunds" in turn.answer
    assert turn.of("confirmation_request") == []
    ticket = await env.store.ticket(case.tenant, event.escalation.ticket_id)
    assert ticket is not None
    assert ticket.reason == orders_pb2.ESCALATION_REASON_REFUND_FREQUENCY
    assert "Refunds in the last 30 days: 2." in ticket.summary


async def test_above_the_tiers_limit_goes_to_a_person(env: Env) -> None:
    env.worker = await env.start(replace(EASY, auto_refund_minor=dict.fromkeys(range(5), 1)))
    case = env.case(env.find(delivered_recently, skip=5))
    turn = await case.send(f"{case.order.order_id} never arrived")
    (event,) = turn.of("escalation")
    assert event.escalation.reason == "scope"
    assert await case.refunds() == []


async def test_a_parcel_on_its_way_is_not_refunded(env: Env) -> None:
    moving = {
        S.SHIPMENT_STATUS_IN_TRANSIT,
        S.SHIPMENT_STATUS_OUT_FOR_DELIVERY,
        S.SHIPMENT_STATUS_DELAYED,
    }
    case = env.case(env.find(lambda o, s: s.status in moving))
    turn = await case.send(
        f"refund {case.order.order_id} please", I.INTENT_NEGOTIATION_REFUND_REQUEST
    )
    assert turn.error is None
    assert "still on its way" in turn.answer
    assert "check_fraud_score" not in turn.tools
    assert turn.of("confirmation_request") == []


async def test_a_lost_parcel_is_refunded_as_a_failed_delivery(env: Env) -> None:
    case = env.case(env.find(lambda o, s: s.status == S.SHIPMENT_STATUS_LOST))
    await case.send(
        f"where is my refund for {case.order.order_id}", I.INTENT_NEGOTIATION_REFUND_REQUEST
    )
    done = await case.decide(conversation_pb2.DECISION_CONFIRM)
    (refund,) = await case.refunds()
    assert refund.reason == orders_pb2.REFUND_REASON_DELIVERY_FAILED
    assert refund.refund_id in done.answer


async def test_a_partly_refunded_order_offers_the_rest_then_nothing(env: Env) -> None:
    order = env.find(delivered_recently, skip=6)
    case = env.case(order)
    earlier = money_pb2.Money(
        currency_code=order.total.currency_code, minor_units=order.total.minor_units // 3
    )
    await env.store.create_refund(
        case.tenant,
        order.user_id,
        order.order_id,
        earlier,
        orders_pb2.REFUND_REASON_DAMAGED_ITEM,
        key="earlier-partial-refund",
        digest="d",
        now=datetime.now(UTC),
    )
    proposed = await case.send(
        f"{order.order_id} arrived damaged", I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM
    )
    rest = order.total.minor_units - earlier.minor_units
    assert case.state.pending_action.amount.minor_units == rest
    assert proposed.of("confirmation_request")
    await case.decide(conversation_pb2.DECISION_CONFIRM)
    again = env.case(order, 1)
    turn = await again.send(
        f"{order.order_id} arrived damaged", I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM
    )
    assert "already been refunded in full" in turn.answer
    assert [r.amount.minor_units for r in await case.refunds()] == [earlier.minor_units, rest]


async def test_another_customers_order_answers_like_a_missing_one(env: Env) -> None:
    mine = env.find(delivered_recently, skip=7)
    theirs = next(
        o
        for o in env.data.orders
        if o.user_id != mine.user_id and env.tenant[o.user_id] == env.tenant[mine.user_id]
    )
    foreign = await env.case(mine).send(f"refund {theirs.order_id}")
    missing = await env.case(mine, 1).send("refund ORD-99999999")
    assert _code(foreign) == _code(missing) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")
    assert [e.error.message for e in foreign.of("error")] == [
        e.error.message for e in missing.of("error")
    ]


async def test_asking_for_a_person_opens_a_ticket_with_a_pii_free_summary(env: Env) -> None:
    case = env.case(env.find(delivered_recently, skip=8))
    turn = await case.send(
        "I want to talk to a human, I'm Jane Roe, call 415-555-0134", I.INTENT_HUMAN_HANDOFF
    )
    assert turn.error is None
    (event,) = turn.of("escalation")
    assert event.escalation.reason == "asked"
    assert "business day" in turn.answer
    (call,) = [e.tool_call for e in turn.of("tool_call")]
    summary = str(call.arguments["summary"])
    assert "Jane" not in summary
    assert "555" not in summary
    assert "human_handoff" in summary


async def test_a_cancellation_before_shipping_goes_to_a_person_after_it_is_refused(
    env: Env,
) -> None:
    unshipped = env.case(env.find(lambda o, s: s.status == S.SHIPMENT_STATUS_LABEL_CREATED))
    turn = await unshipped.send(
        f"cancel {unshipped.order.order_id}", I.INTENT_NEGOTIATION_CANCELLATION
    )
    (event,) = turn.of("escalation")
    assert event.escalation.reason == "scope"
    moving = env.case(env.find(lambda o, s: s.status == S.SHIPMENT_STATUS_IN_TRANSIT))
    turn = await moving.send(f"cancel {moving.order.order_id}", I.INTENT_NEGOTIATION_CANCELLATION)
    assert turn.of("escalation") == []
    assert "already shipped" in turn.answer
    done = env.case(env.find(delivered_recently, skip=10))
    turn = await done.send(f"cancel {done.order.order_id}", I.INTENT_NEGOTIATION_CANCELLATION)
    assert "already been delivered" in turn.answer
    assert await done.refunds() == []


async def test_a_case_that_runs_past_five_turns_goes_to_a_person(env: Env) -> None:
    case = env.case(env.find(delivered_recently, skip=9))
    for _ in range(machine.MAX_TURNS):
        turn = await case.send("I want a refund", I.INTENT_NEGOTIATION_REFUND_REQUEST)
        assert turn.of("escalation") == []
    last = await case.send("I want a refund", I.INTENT_NEGOTIATION_REFUND_REQUEST)
    (event,) = last.of("escalation")
    assert event.escalation.reason == "stuck"


async def test_an_ambiguous_request_asks_which_order(env: Env) -> None:
    order = env.find(delivered_recently)
    case = env.case(order, 2)
    active = [
        customer_pb2.OrderBrief(order_id=o.order_id, awb=o.awb, title=o.title)
        for o in env.data.orders
        if o.user_id == order.user_id
    ][:3]
    if len(active) < 2:
        pytest.skip("the customer has one order")
    request = case.request(
        message="I want a refund", intent=I.INTENT_NEGOTIATION_REFUND_REQUEST, confidence=0.9
    )
    request.context.active_orders.extend(active)
    turn = await case.run(request)
    assert "Which order" in turn.answer
    assert list(case.state.offered_order_ids) == [o.order_id for o in active]
    assert turn.tools == []


async def test_an_order_among_the_active_ones_or_named_by_its_awb_is_found(env: Env) -> None:
    order = env.find(delivered_recently, skip=11)
    brief = customer_pb2.OrderBrief(order_id=order.order_id, awb=order.awb, title=order.title)
    for n, message in enumerate((f"refund {order.order_id}", f"{order.awb} never arrived")):
        case = env.case(order, 10 + n)
        request = case.request(
            message=message, intent=I.INTENT_NEGOTIATION_DELIVERY_DISPUTE, confidence=0.9
        )
        request.context.active_orders.append(brief)
        turn = await case.run(request)
        assert turn.error is None, turn.error
        assert sorted(turn.tools[:2]) == ["get_order", "get_order_status"]
        assert case.state.pending_action.order_id == order.order_id
    case = env.case(order, 12)  # an AWB not among the active orders
    turn = await case.send(f"{order.awb} never arrived")
    assert turn.tools[:2] == ["get_order_status", "get_order"]
    assert case.state.pending_action.order_id == order.order_id


# -- the pure rules ------------------------------------------------------------------------

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _delivered(days_ago: int) -> orders_pb2.Shipment:
    shipment = orders_pb2.Shipment(status=S.SHIPMENT_STATUS_DELIVERED)
    shipment.delivered_time.FromDatetime(NOW - timedelta(days=days_ago))
    return shipment


ORDER = orders_pb2.Order(
    order_id="ORD-20260001", total=money_pb2.Money(currency_code="USD", minor_units=5000)
)


@pytest.mark.parametrize(
    ("intent", "message", "reason"),
    [
        (I.INTENT_NEGOTIATION_REFUND_REQUEST, "the wrong item came", "REFUND_REASON_WRONG_ITEM"),
        (I.INTENT_NEGOTIATION_REFUND_REQUEST, "it is broken", "REFUND_REASON_DAMAGED_ITEM"),
        (I.INTENT_NEGOTIATION_REFUND_REQUEST, "refund please", "REFUND_REASON_CUSTOMER_REQUEST"),
        (I.INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM, "look at it", "REFUND_REASON_DAMAGED_ITEM"),
        (I.INTENT_NEGOTIATION_DELIVERY_DISPUTE, "never came", "REFUND_REASON_DELIVERY_DISPUTE"),
    ],
)
def test_the_reason_follows_what_the_customer_says(
    intent: intent_pb2.Intent, message: str, reason: str
) -> None:
    verdict = machine.eligibility(intent, message, ORDER, _delivered(3), now=NOW)
    assert isinstance(verdict, machine.Eligible)
    assert orders_pb2.RefundReason.Name(verdict.reason) == reason
    assert verdict.amount.minor_units == 5000


def test_past_the_dispute_window_is_not_refunded_automatically() -> None:
    inside = machine.eligibility(
        I.INTENT_NEGOTIATION_DELIVERY_DISPUTE, "never came", ORDER, _delivered(30), now=NOW
    )
    outside = machine.eligibility(
        I.INTENT_NEGOTIATION_DELIVERY_DISPUTE, "never came", ORDER, _delivered(31), now=NOW
    )
    assert isinstance(inside, machine.Eligible)
    assert isinstance(outside, machine.Ineligible)
    assert "more than 30 days ago" in outside.answer


def test_escalation_rules_and_money_words() -> None:
    verdict = machine.Eligible(ORDER.total, orders_pb2.REFUND_REASON_DAMAGED_ITEM)
    standard = customer_pb2.CUSTOMER_TIER_STANDARD
    limits = Limits(fraud_escalate_bp=5000, refunds_per_period=3)

    def checked(bp: int, recent: int = 0) -> conversation_pb2.NegotiationState:
        return conversation_pb2.NegotiationState(fraud_score_bp=bp, recent_refunds=recent)

    assert machine.escalation_needed(verdict, checked(4999), standard, limits) is None
    assert machine.escalation_needed(verdict, checked(5000), standard, limits) is machine.Why.FRAUD
    assert machine.escalation_needed(verdict, checked(0, 2), standard, limits) is None
    assert (
        machine.escalation_needed(verdict, checked(0, 3), standard, limits) is machine.Why.FREQUENT
    )
    big = machine.Eligible(money_pb2.Money(currency_code="USD", minor_units=20_001), verdict.reason)
    assert machine.escalation_needed(big, checked(0), standard, limits) is machine.Why.SCOPE
    gold = customer_pb2.CUSTOMER_TIER_GOLD
    assert machine.escalation_needed(big, checked(0), gold, limits) is None
    assert machine.money(money_pb2.Money(currency_code="EUR", minor_units=123456)) == "€1,234.56"
    assert machine.money(money_pb2.Money(currency_code="JPY", minor_units=5)) == "0.05 JPY"


# -- payloads written by the pool, and a shadow candidate ---------------------------------


@pytest.fixture(scope="module")
def model() -> Iterator[str]:
    """A server speaking the OpenAI protocol: its tool arguments are the prompt's facts."""
    with fake_openai.serving() as (url, _):
        yield url


def _model_pool(url: str, chains: dict[str, list[str]]) -> LLMPool:
    return LLMPool(
        [
            OpenAIBackend(
                name="openai", base_url=url, served_model="gpt-4o-mini", api_key=fake_openai.API_KEY
            ),
            Composer(TEMPLATES),
        ],
        chains,
        options={"openai": LinkOptions(timeout_s=10, min_attempt_s=0.01)},
        retry=RetryPolicy(attempts=1),
    )


def _invalid(tool: str, rule: str) -> float:
    labels = {"tool": tool, "rule_id": rule}
    return REGISTRY.get_sample_value("waybill_tool_payload_invalid_total", labels) or 0.0


def _usage(turn: Turn) -> usage_pb2.Usage:
    (result,) = turn.of("result")
    return result.result.usage


async def test_write_payloads_are_written_by_the_pool_and_charged_to_the_turn(env: Env) -> None:
    case = env.case(env.find(delivered_recently, skip=9))
    await case.send(f"{case.order.order_id} never arrived")
    done = await case.decide(conversation_pb2.DECISION_CONFIRM)
    assert done.error is None
    usage = _usage(done)
    # The payloads of initiate_refund and send_notification, then the answer.
    assert [g.backend for g in usage.generations] == ["composer", "composer", "composer"]
    assert usage.output_tokens > 0
    (call,) = [e.tool_call for e in done.of("tool_call") if e.tool_call.name == "initiate_refund"]
    assert call.arguments["orderId"] == case.order.order_id


async def test_a_model_writes_the_answers_and_its_payload_that_differs_never_runs(
    env: Env, model: str
) -> None:
    pool = _model_pool(model, {"negotiation": ["openai", "composer"]})
    worker = await env.start(EASY, pool=pool)
    case = env.case(env.find(delivered_recently, skip=10))
    # The model writes every refund for one cent (the knob rides in the context block).
    case.block = "[[fake:set=amount.minorUnits=1]]"
    before = _invalid("initiate_refund", DIFFERS)
    proposed = await case.send(f"{case.order.order_id} never came", worker=worker)
    # The model wrote the answer (the fake recites the facts it was given) ...
    assert proposed.answer.startswith("Here is what I found.")
    assert "Kind: proposal." in proposed.answer
    assert machine.money(case.order.total) in proposed.answer
    assert [g.backend for g in _usage(proposed).generations] == ["openai"]
    # ... and the offer the customer confirms is the machine's.
    (offer,) = proposed.of("confirmation_request")
    assert offer.confirmation_request.action.amount == case.order.total
    done = await case.decide(conversation_pb2.DECISION_CONFIRM, worker=worker)
    assert done.error is None
    assert _invalid("initiate_refund", DIFFERS) == before + 1
    (refund,) = await case.refunds()
    assert refund.amount == case.order.total  # what was decided, not what the model wrote
    assert "openai" in [g.backend for g in _usage(done).generations]
    await pool.close()


async def test_a_malformed_model_payload_never_runs(env: Env, model: str) -> None:
    pool = _model_pool(model, {"negotiation": ["openai", "composer"]})
    worker = await env.start(EASY, pool=pool)
    case = env.case(env.find(delivered_recently, skip=11))
    before = _invalid("escalate_to_human", MALFORMED)
    # bad-args: the model adds a field the contract does not have.
    turn = await case.send("a person please [[fake:bad-args]]", I.INTENT_HUMAN_HANDOFF, worker)
    assert turn.error is None
    assert _invalid("escalate_to_human", MALFORMED) == before + 1
    (escalation,) = turn.of("escalation")
    ticket = await env.store.ticket(case.tenant, escalation.escalation.ticket_id)
    assert ticket is not None
    assert ticket.reason == orders_pb2.ESCALATION_REASON_CUSTOMER_REQUEST
    await pool.close()


def _shadow(pool: LLMPool, tmp_path: Path, instructions: str = "") -> Shadow:
    settings = ShadowSettings(
        chain=("openai",),
        instructions=instructions,
        label="candidate",
        log_path=tmp_path / "verdicts.jsonl",
    )
    return Shadow(pool, settings, use_case="negotiation", candidate_use_case="negotiation_shadow")


def _verdicts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_shadow_candidate_is_asked_recorded_and_never_obeyed(
    env: Env, model: str, tmp_path: Path
) -> None:
    # Production writes with the composer; the candidate is a model whose prompt version
    # writes every refund for one cent.
    pool = _model_pool(
        model, {"negotiation": ["composer"], "negotiation_shadow": ["openai", "composer"]}
    )
    shadow = _shadow(pool, tmp_path, "Candidate prompt v2. [[fake:set=amount.minorUnits=1]]")
    worker = await env.start(EASY, pool=pool, shadow=shadow)
    case = env.case(env.find(delivered_recently, skip=12))
    await case.send(f"{case.order.order_id} never came", worker=worker)
    done = await case.decide(conversation_pb2.DECISION_CONFIRM, worker=worker)
    assert done.error is None
    await shadow.close()
    (refund,) = await case.refunds()
    assert refund.amount == case.order.total
    # The candidate's generations are not the turn's: production used the composer only.
    assert {g.backend for g in _usage(done).generations} == {"composer"}
    verdicts = {v["tool"]: v for v in _verdicts(tmp_path / "verdicts.jsonl")}
    assert verdicts["initiate_refund"]["verdict"] == "differ"
    assert verdicts["initiate_refund"]["fields"] == ["amount.minorUnits"]
    assert verdicts["initiate_refund"]["backend"] == "openai"
    # send_notification has no amount: the candidate's one-cent field is not in its contract.
    assert verdicts["send_notification"]["verdict"] == "invalid"
    assert verdicts["send_notification"]["rule_ids"] == [MALFORMED]
    await pool.close()
