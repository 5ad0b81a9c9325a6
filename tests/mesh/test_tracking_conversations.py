"""Scripted multi-turn tracking conversations through the real mesh.

Each script checks the order the session resolved (GetSession's focus) and the
facts in each answer against the system of record read directly from orders.
"""

from __future__ import annotations

import itertools
import re

import pytest
from waybill.common.v1 import customer_pb2

from cli.launcher import Mesh
from tests.mesh.conversation import STATUS_PHRASE, Conversation, customers, shipment

pytestmark = pytest.mark.mesh
S = customer_pb2.ShipmentStatus
_ids = itertools.count(1)


def _talk(m: Mesh, user_id: str, tenant: str = "acme-retail") -> Conversation:
    return Conversation(m, tenant, user_id, f"script-{next(_ids):04d}-{user_id}")


def _product(title: str) -> str:
    """How a customer names an order's item: "the rain jacket" (not "the rain")."""
    return re.sub(r" and \d+ more$", "", title).lower()


def _title_word(title: str) -> str:
    words = [w for w in re.findall(r"[A-Za-z]+", title) if len(w) > 3 and w.lower() != "more"]
    return str(words[0]).lower()


@pytest.fixture(scope="module")
def people(running_mesh: Mesh) -> dict[str, dict[str, list[customer_pb2.OrderBrief]]]:
    return {t: customers(running_mesh, t) for t in ("acme-retail", "globex-home")}


def _pick(
    people: dict[str, dict[str, list[customer_pb2.OrderBrief]]],
    tenant: str,
    want: int,
) -> tuple[str, list[customer_pb2.OrderBrief]]:
    for user, orders in people[tenant].items():
        titles = {_title_word(o.title) for o in orders}
        if len(orders) == want and len(titles) == want:
            return user, orders
    raise AssertionError(f"no {tenant} customer with {want} distinct active orders")


def test_single_order_status_eta_photo(running_mesh: Mesh) -> None:
    chat = _talk(running_mesh, "acme-0001")
    first = chat.say("where is my package?")
    awb = first.focus_awb
    truth = shipment(running_mesh, "acme-retail", "acme-0001", awb).shipment
    assert awb in first.answer
    assert STATUS_PHRASE[truth.status] in first.answer
    assert first.tools == ["get_order_status"]
    eta = chat.say("when will it arrive?")
    assert (eta.focus_awb, eta.tools) == (awb, ["get_eta"])
    assert awb in eta.answer
    photo = chat.say("can I see the delivery photo?")
    assert photo.focus_awb == awb
    assert photo.tools[0] == "get_delivery_photo"


def test_several_orders_ask_which_then_resolve_by_ordinal(
    running_mesh: Mesh, people: dict[str, dict[str, list[customer_pb2.OrderBrief]]]
) -> None:
    user, orders = _pick(people, "acme-retail", 3)
    chat = _talk(running_mesh, user)
    ask = chat.say("where is my package?")
    assert ask.tools == []
    assert ask.focus_awb == ""
    for o in orders:
        assert o.awb in ask.answer
    second = chat.say("the second one")
    assert second.focus_awb == orders[1].awb
    assert orders[1].awb in second.answer


def test_product_named_then_the_other_one(
    running_mesh: Mesh, people: dict[str, dict[str, list[customer_pb2.OrderBrief]]]
) -> None:
    user, (a, b) = _pick(people, "acme-retail", 2)
    chat = _talk(running_mesh, user)
    assert chat.say("where is my package?").focus_awb == ""
    named = chat.say(f"what about the {_product(b.title)}?")
    assert named.focus_awb == b.awb
    other = chat.say("and the other one?")
    assert other.focus_awb == a.awb
    assert a.awb in other.answer
    truth = shipment(running_mesh, "acme-retail", user, a.awb).shipment
    assert STATUS_PHRASE[truth.status] in other.answer


def test_follow_up_eta_keeps_the_chosen_order(
    running_mesh: Mesh, people: dict[str, dict[str, list[customer_pb2.OrderBrief]]]
) -> None:
    user, orders = _pick(people, "acme-retail", 2)
    chat = _talk(running_mesh, user)
    chat.say(f"where is the {_product(orders[0].title)}?")
    eta = chat.say("when will it arrive?")
    assert eta.focus_awb == orders[0].awb
    assert eta.tools == ["get_eta"]


@pytest.mark.parametrize(
    "variant",
    [
        lambda awb: awb.lower(),
        lambda awb: f"{awb[:2]} {awb[2:6]} {awb[6:9]} {awb[9:]}",
        lambda awb: f"{awb[:2]}-{awb[2:6]}-{awb[6:]}",
    ],
)
def test_typed_awb_variants_normalise(running_mesh: Mesh, variant: object) -> None:
    chat = _talk(running_mesh, "acme-0002")
    own = customers(running_mesh, "acme-retail")["acme-0002"][0].awb
    reply = chat.say(f"track {variant(own)} please")  # type: ignore[operator]
    assert reply.focus_awb == own
    assert own in reply.answer


def test_lost_shipment_has_no_eta(
    running_mesh: Mesh, people: dict[str, dict[str, list[customer_pb2.OrderBrief]]]
) -> None:
    user, brief = next(
        (u, o)
        for u, orders in people["acme-retail"].items()
        for o in orders
        if o.status == S.SHIPMENT_STATUS_LOST
    )
    chat = _talk(running_mesh, user)
    status = chat.say(f"where is {brief.awb}?")
    assert "reported lost" in status.answer
    eta = chat.say("when will it arrive?")
    assert eta.focus_awb == brief.awb
    assert "can't give an arrival date" in eta.answer


def test_delivered_with_photo(
    running_mesh: Mesh, people: dict[str, dict[str, list[customer_pb2.OrderBrief]]]
) -> None:
    user, brief = next(
        (u, o)
        for u, orders in people["globex-home"].items()
        for o in orders
        if o.status == S.SHIPMENT_STATUS_DELIVERED
        and shipment(running_mesh, "globex-home", u, o.awb).shipment.has_delivery_photo
    )
    chat = _talk(running_mesh, user, tenant="globex-home")
    status = chat.say(f"where is my order {brief.awb}?")
    assert "was delivered" in status.answer
    assert "photo is available" in status.answer
    photo = chat.say("can I see the delivery photo?")
    assert f"pod/{brief.awb}.jpg" in photo.answer


def test_greeting_gets_a_clarifying_question_then_tracking_works(running_mesh: Mesh) -> None:
    chat = _talk(running_mesh, "acme-0001")
    hello = chat.say("hello")
    assert hello.final is not None
    assert hello.tools == []
    assert "What would you like to do?" in hello.answer
    assert chat.say("where is my order?").tools == ["get_order_status"]


def test_ordinal_third_of_the_offered_list(
    running_mesh: Mesh, people: dict[str, dict[str, list[customer_pb2.OrderBrief]]]
) -> None:
    user, orders = _pick(people, "acme-retail", 3)
    chat = _talk(running_mesh, user)
    chat.say("where is my parcel?")
    third = chat.say("the third one")
    assert third.focus_awb == orders[2].awb


def test_foreign_awb_then_own(running_mesh: Mesh) -> None:
    everyone = customers(running_mesh, "acme-retail")
    foreign = everyone["acme-0002"][0].awb
    chat = _talk(running_mesh, "acme-0001")
    nope = chat.say(f"where is {foreign}?")
    assert "couldn't find a shipment" in nope.answer
    assert nope.focus_awb == ""
    mine = chat.say("where is my order?")
    assert mine.focus_awb == everyone["acme-0001"][0].awb
