import pytest
from waybill.common.v1 import conversation_pb2, customer_pb2

from runtime.identifiers import find_awbs, find_order_ids
from workers.tracking.resolve import resolve

SHOES = customer_pb2.OrderBrief(order_id="ORD-20260001", awb="WB1111111111", title="Running shoes")
STAND = customer_pb2.OrderBrief(order_id="ORD-20260002", awb="WB2222222222", title="Laptop stand")
MUGS = customer_pb2.OrderBrief(
    order_id="ORD-20260003", awb="WB3333333333", title="Ceramic mug set and 1 more"
)


@pytest.mark.parametrize(
    "text",
    [
        "WB1234567890",
        "wb1234567890",
        "where is wb 1234 567 890?",
        "tracking WB-1234-567-890 please",
        "w.b. 1234567890",
        "WB 12345 67890",
    ],
)
def test_awb_variants_normalise(text: str) -> None:
    assert find_awbs(text) == ["WB1234567890"]


@pytest.mark.parametrize(
    "text", ["WB123456789", "WB12345678901", "AWB1234567890x", "call 1234567890"]
)
def test_non_awbs_are_ignored(text: str) -> None:
    assert find_awbs(text) == []


def test_order_ids() -> None:
    assert find_order_ids("about ord-20260001 and ORD 20260002") == ["ORD-20260001", "ORD-20260002"]


def _state(**kw: object) -> conversation_pb2.ConversationState:
    return conversation_pb2.ConversationState(**kw)  # type: ignore[arg-type]


def test_one_active_order_is_the_answer() -> None:
    target = resolve("where is my package?", _state(), [SHOES])
    assert (target.awb, target.how) == ("WB1111111111", "only")


def test_several_orders_ask_which() -> None:
    target = resolve("where is my package?", _state(), [SHOES, STAND, MUGS])
    assert target.awb == ""
    assert [o.order_id for o in target.choices] == ["ORD-20260001", "ORD-20260002", "ORD-20260003"]


def test_product_named_in_message() -> None:
    target = resolve("what about the laptop stand?", _state(focus_awb=SHOES.awb), [SHOES, STAND])
    assert (target.awb, target.how) == (STAND.awb, "title")


def test_follow_up_uses_focus() -> None:
    target = resolve("when will it arrive?", _state(focus_awb=STAND.awb), [SHOES, STAND])
    assert (target.awb, target.how) == (STAND.awb, "focus")


def test_the_other_one() -> None:
    target = resolve("and the other one?", _state(focus_awb=SHOES.awb), [SHOES, STAND])
    assert (target.awb, target.how) == (STAND.awb, "other")


def test_ordinal_refers_to_offered_list() -> None:
    state = _state(offered_order_ids=[MUGS.order_id, SHOES.order_id])
    assert resolve("the second one", state, [SHOES, STAND, MUGS]).awb == SHOES.awb
    assert resolve("the first", state, [SHOES, STAND, MUGS]).awb == MUGS.awb


def test_typed_awb_wins_even_if_not_active() -> None:
    target = resolve("what about WB 9999999999", _state(focus_awb=SHOES.awb), [SHOES])
    assert (target.awb, target.order_id, target.how) == ("WB9999999999", "", "typed")


def test_nothing_to_go_on() -> None:
    assert resolve("where is my stuff", _state(), []).how == "none"
