"""Refunds, disputes and the hand-over through real processes: gateway -> guardrails ->
router -> negotiation worker -> orders, with ConfirmAction carrying the customer's
decision. Scripted cases over the seeded data set (the same one orders loads)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from waybill.common.v1 import conversation_pb2, customer_pb2, intent_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from cli.launcher import Mesh
from cli.main import main as cli_main
from orders import core
from runtime.errors import error_info_of
from tests.llm_pool import fake_openai
from tests.mesh.conftest import api_key
from tests.mesh.conversation import (
    DATA,
    SHIPMENT,
    TENANT,
    TIER,
    Chat,
    action_of,
    kinds,
    orders_where,
    refundable_without_a_person,
    text_of,
)
from workers.negotiation.machine import DEFAULT_AUTO_REFUND, Limits

pytestmark = pytest.mark.mesh

S = customer_pb2.ShipmentStatus
EASY = orders_where(refundable_without_a_person)


def _status(*statuses: int) -> Iterator[orders_pb2.Order]:
    return orders_where(lambda o: SHIPMENT[o.awb].status in statuses)


def _escalated(events: list[gw.TurnEvent]) -> str:
    (escalation,) = [e.escalation for e in events if e.WhichOneof("kind") == "escalation"]
    assert escalation.ticket_id in text_of(events)
    return escalation.reason


def _proposal(events: list[gw.TurnEvent]) -> list[conversation_pb2.PendingAction]:
    return [
        e.confirmation_request.action
        for e in events
        if e.WhichOneof("kind") == "confirmation_request"
    ]


@pytest.mark.parametrize(
    "message",
    [
        "My parcel for order {order} shows as delivered but I never received it",
        "Order {order} arrived damaged, I'd like a refund",
        "I want a refund for order {order}",
    ],
)
def test_a_case_is_proposed_confirmed_once_and_refunded(running_mesh: Mesh, message: str) -> None:
    order = next(EASY)
    chat = Chat(running_mesh, order, f"session-refund-{order.order_id[-5:]}")
    proposed = chat.say(message.format(order=order.order_id))
    assert "confirmation_request" in kinds(proposed), text_of(proposed)
    action = action_of(proposed)
    assert (action.order_id, action.amount) == (order.order_id, order.total)
    assert chat.refunded() == 0  # nothing before the customer's confirmation

    done = chat.decide(action.action_id, conversation_pb2.DECISION_CONFIRM, "confirm-key-0001")
    assert kinds(done)[-1] == "final"
    assert "refunded" in text_of(done)
    assert chat.refunded() == order.total.minor_units
    # A double click (same key) replays; a second confirmation finds nothing pending.
    assert (
        chat.decide(action.action_id, conversation_pb2.DECISION_CONFIRM, "confirm-key-0001") == done
    )
    with pytest.raises(grpc.RpcError) as raised:
        chat.decide(action.action_id, conversation_pb2.DECISION_CONFIRM, "confirm-key-0002")
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "NO_PENDING_ACTION"
    assert chat.refunded() == order.total.minor_units
    # The next turn tells the truth.
    again = chat.say(message.format(order=order.order_id))
    assert "already been refunded in full" in text_of(again)


def test_a_declined_proposal_writes_nothing(running_mesh: Mesh) -> None:
    order = next(EASY)
    chat = Chat(running_mesh, order, f"session-decline-{order.order_id[-5:]}")
    action = action_of(chat.say(f"Order {order.order_id} never arrived, please refund it"))
    declined = chat.decide(action.action_id, conversation_pb2.DECISION_DECLINE, "decline-key-0001")
    assert "haven't refunded" in text_of(declined)
    assert chat.refunded() == 0


def test_another_customers_order_answers_like_a_missing_one(running_mesh: Mesh) -> None:
    order = next(EASY)
    theirs = next(
        o
        for o in DATA.orders
        if o.user_id != order.user_id and TENANT[o.user_id] == TENANT[order.user_id]
    )
    answers = []
    for n, asked in enumerate((theirs.order_id, "ORD-99999999")):
        chat = Chat(running_mesh, order, f"session-foreign-{n}-{order.order_id[-5:]}")
        with pytest.raises(grpc.RpcError) as raised:
            chat.say(f"I want a refund for order {asked}")
        error: grpc.RpcError = raised.value
        answers.append((error.code(), error.details()))
    assert answers[0] == answers[1]
    assert answers[0][0] == grpc.StatusCode.NOT_FOUND


def test_asking_for_a_person_gets_a_ticket(running_mesh: Mesh) -> None:
    order = next(EASY)
    chat = Chat(running_mesh, order, f"session-human-{order.order_id[-5:]}")
    events = chat.say("I want to speak to a human agent please")
    seen = kinds(events)
    assert "escalation" in seen, text_of(events)
    (escalation,) = [e.escalation for e in events if e.WhichOneof("kind") == "escalation"]
    assert escalation.ticket_id.startswith("TCK-")
    assert escalation.ticket_id in text_of(events)


def _queue(chat: Chat, call: str, request: object, md: object = None) -> object:
    with grpc.insecure_channel(chat.m.addresses["gateway"]) as ch:
        method = getattr(chat._stub(ch), call)
        return method(request, metadata=md or chat.md, timeout=10)


def _final(events: list[gw.TurnEvent]) -> gw.Final:
    assert kinds(events)[-1] == "final", text_of(events)
    return events[-1].final


def test_a_claimed_conversation_is_handed_over_until_resolved(running_mesh: Mesh) -> None:
    order = next(EASY)
    chat = Chat(running_mesh, order, f"session-agent-{order.order_id[-5:]}")
    (escalation,) = [
        e.escalation
        for e in chat.say("I want to speak to a human agent please")
        if e.WhichOneof("kind") == "escalation"
    ]
    ticket_id = escalation.ticket_id
    # Open: in the agents' queue with a PII-free summary; the assistant still answers.
    listed = _queue(chat, "ListTickets", gw.ListTicketsRequest(state=orders_pb2.TICKET_STATE_OPEN))
    (ticket,) = [t for t in listed.tickets if t.ticket_id == ticket_id]  # type: ignore[attr-defined]
    assert (ticket.user_id, ticket.session_id) == (order.user_id, chat.session)
    assert ticket.summary
    customer = next(c for c in DATA.customers if c.user_id == order.user_id)
    assert customer.display_name not in ticket.summary
    assert _final(chat.say(f"Where is my parcel {order.awb}?")).worker != intent_pb2.WORKER_HUMAN

    # Another tenant cannot see or claim it: exactly like a ticket that does not exist.
    other = next(t for t in set(TENANT.values()) if t != chat.tenant)
    foreign_md = [("x-api-key", api_key(running_mesh, other))]
    answers = []
    for asked in (ticket_id, "TCK-0000000000000000"):
        with pytest.raises(grpc.RpcError) as raised:
            _queue(
                chat,
                "ClaimTicket",
                gw.ClaimTicketRequest(ticket_id=asked, agent_id="eve"),
                foreign_md,
            )
        answers.append((raised.value.code(), raised.value.details()))
    assert answers[0] == answers[1]
    assert answers[0][0] == grpc.StatusCode.NOT_FOUND

    claimed = _queue(
        chat, "ClaimTicket", gw.ClaimTicketRequest(ticket_id=ticket_id, agent_id="agent-ana")
    )
    assert claimed.ticket.state == orders_pb2.TICKET_STATE_CLAIMED  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as raised:
        _queue(chat, "ClaimTicket", gw.ClaimTicketRequest(ticket_id=ticket_id, agent_id="agent-bo"))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "TICKET_CLAIMED"
    # Claimed: the conversation is marked as handed over and the assistant steps aside.
    session = _queue(
        chat, "GetSession", gw.GetSessionRequest(session_id=chat.session, user_id=order.user_id)
    )
    assert session.ticket.state == orders_pb2.TICKET_STATE_CLAIMED  # type: ignore[attr-defined]
    held = chat.say(f"Where is my parcel {order.awb}?")
    assert "tool_call" not in kinds(held)
    final = _final(held)
    assert final.worker == intent_pb2.WORKER_HUMAN
    assert ticket_id in final.answer

    resolved = _queue(
        chat,
        "ResolveTicket",
        gw.ResolveTicketRequest(
            ticket_id=ticket_id, agent_id="agent-ana", resolution="Called back."
        ),
    )
    assert resolved.ticket.state == orders_pb2.TICKET_STATE_RESOLVED  # type: ignore[attr-defined]
    assert _final(chat.say(f"Where is my parcel {order.awb}?")).worker != intent_pb2.WORKER_HUMAN


def test_a_parcel_on_its_way_is_not_refunded_yet(running_mesh: Mesh) -> None:
    order = next(_status(S.SHIPMENT_STATUS_IN_TRANSIT, S.SHIPMENT_STATUS_OUT_FOR_DELIVERY))
    chat = Chat(running_mesh, order, f"session-moving-{order.order_id[-5:]}")
    events = chat.say(f"I want a refund for order {order.order_id}")
    assert "still on its way" in text_of(events)
    assert _proposal(events) == []


def test_a_lost_parcel_is_refunded_as_a_failed_delivery(running_mesh: Mesh) -> None:
    order = next(
        orders_where(
            lambda o: (
                SHIPMENT[o.awb].status == S.SHIPMENT_STATUS_LOST
                and o.total.minor_units <= DEFAULT_AUTO_REFUND[TIER[o.user_id]]
            )
        )
    )
    chat = Chat(running_mesh, order, f"session-lost-{order.order_id[-5:]}")
    (action,) = _proposal(chat.say(f"My order {order.order_id} never arrived, refund please"))
    assert "lost" in action.summary
    chat.decide(action.action_id, conversation_pb2.DECISION_CONFIRM, "confirm-lost-0001")
    assert chat.refunded() == order.total.minor_units


def test_a_wrong_item_is_proposed_as_one(running_mesh: Mesh) -> None:
    order = next(EASY)
    chat = Chat(running_mesh, order, f"session-wrong-{order.order_id[-5:]}")
    (action,) = _proposal(chat.say(f"The wrong item came in order {order.order_id}, refund me"))
    assert "a different item arrived" in action.summary


def test_a_high_fraud_score_goes_to_a_person(running_mesh: Mesh) -> None:
    order = next(
        orders_where(
            lambda o: (
                SHIPMENT[o.awb].status == S.SHIPMENT_STATUS_DELIVERED
                and core.fraud_score_bp(o, SHIPMENT[o.awb]) >= Limits().fraud_escalate_bp
            )
        )
    )
    chat = Chat(running_mesh, order, f"session-fraud-{order.order_id[-5:]}")
    events = chat.say(f"Order {order.order_id} says delivered but I never got it")
    assert _escalated(events) == "fraud"
    assert _proposal(events) == []
    assert chat.refunded() == 0


def test_above_the_tiers_limit_goes_to_a_person(running_mesh: Mesh) -> None:
    order = next(
        orders_where(
            lambda o: (
                SHIPMENT[o.awb].status == S.SHIPMENT_STATUS_DELIVERED
                and core.fraud_score_bp(o, SHIPMENT[o.awb]) < Limits().fraud_escalate_bp
                and o.total.minor_units > DEFAULT_AUTO_REFUND[TIER[o.user_id]]
            )
        )
    )
    chat = Chat(running_mesh, order, f"session-big-{order.order_id[-5:]}")
    events = chat.say(f"Order {order.order_id} arrived damaged, I want a refund")
    assert _escalated(events) == "scope"
    assert chat.refunded() == 0


def test_a_partly_refunded_order_is_offered_the_rest(running_mesh: Mesh) -> None:
    order = next(EASY)
    chat = Chat(running_mesh, order, f"session-part-{order.order_id[-5:]}")
    part = order.total.minor_units // 4
    with grpc.insecure_channel(running_mesh.addresses["orders"]) as ch:
        orders_grpc.OrdersServiceStub(ch).CreateRefund(
            orders.CreateRefundRequest(
                tenant_id=chat.tenant,
                user_id=order.user_id,
                order_id=order.order_id,
                amount=type(order.total)(currency_code=order.total.currency_code, minor_units=part),
                reason=orders_pb2.REFUND_REASON_DAMAGED_ITEM,
                idempotency_key="earlier-partial-0001",
            ),
            timeout=5,
        )
    events = chat.say(f"Order {order.order_id} arrived damaged, please refund it")
    proposals = _proposal(events)
    assert len(proposals) == 1, text_of(events)
    (action,) = proposals
    assert action.amount.minor_units == order.total.minor_units - part


def test_cancellations_before_and_after_shipping(running_mesh: Mesh) -> None:
    unshipped = next(_status(S.SHIPMENT_STATUS_LABEL_CREATED))
    chat = Chat(running_mesh, unshipped, f"session-cancel-{unshipped.order_id[-5:]}")
    assert _escalated(chat.say(f"Please cancel order {unshipped.order_id}")) == "scope"
    shipped = next(_status(S.SHIPMENT_STATUS_IN_TRANSIT))
    chat = Chat(running_mesh, shipped, f"session-cancel-{shipped.order_id[-5:]}")
    events = chat.say(f"Please cancel order {shipped.order_id}")
    assert "already shipped" in text_of(events)


def _verdicts(path: Path, count: int) -> list[dict[str, Any]]:
    """The shadow's verdicts once ``count`` are written (they are written in the background)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"{path} holds fewer than {count} verdicts")


def test_a_shadow_candidate_runs_beside_the_worker_process(
    running_mesh: Mesh, tmp_path: Path
) -> None:
    prompt = tmp_path / "refunds-v2.txt"
    # The candidate prompt version writes every refund for one cent (a knob of the fake).
    prompt.write_text("Refunds assistant, candidate v2. [[fake:set=amount.minorUnits=1]]\n")
    log = tmp_path / "verdicts.jsonl"
    with fake_openai.serving() as (url, recorder):
        running_mesh.restart(
            "negotiation",
            env={
                "WAYBILL_LLM_OPENAI_URL": url,
                "WAYBILL_OPENAI_API_KEY": fake_openai.API_KEY,
                "WAYBILL_LLM_CHAIN_NEGOTIATION": "composer",
                "WAYBILL_SHADOW_CHAIN": "openai",
                "WAYBILL_SHADOW_PROMPT_FILE": str(prompt),
                "WAYBILL_SHADOW_LOG": str(log),
            },
        )
        try:
            order = next(EASY)
            chat = Chat(running_mesh, order, f"session-shadow-{order.order_id[-5:]}")
            action = action_of(chat.say(f"Order {order.order_id} never arrived, refund it please"))
            done = chat.decide(
                action.action_id, conversation_pb2.DECISION_CONFIRM, "shadow-confirm-0001"
            )
            assert kinds(done)[-1] == "final", text_of(done)
            verdicts = {v["tool"]: v for v in _verdicts(log, 2)}
        finally:
            running_mesh.restart("negotiation", env={})
    # Production's refund is the one decided; the candidate was asked and only recorded.
    assert chat.refunded() == order.total.minor_units
    assert recorder.bodies, "the candidate was never asked"
    refund = verdicts["initiate_refund"]
    assert (refund["candidate"], refund["backend"]) == ("openai+refunds-v2", "openai")
    assert (refund["verdict"], refund["fields"]) == ("differ", ["amount.minorUnits"])
    assert verdicts["send_notification"]["verdict"] == "invalid"
    # The report reads the same log: the candidate is below any useful bar.
    assert cli_main(["shadow-report", str(log), "--min-agreement", "0.5"]) == 1
