"""The policy worker's pure steps: which order and product a question is about, the
rewritten query, the relevance gate, the quotes and the composer's text."""

from __future__ import annotations

from waybill.common.v1 import conversation_pb2, customer_pb2, money_pb2
from waybill.orders.v1 import orders_pb2

from guardrails.grounding import check
from workers.policy.answer import (
    Gate,
    Passage,
    Window,
    _join,
    answer_plan,
    not_found_plan,
    relevant,
    select,
)
from workers.policy.query import Product, order_to_read, product_in, rewrite
from workers.policy.templates import NOT_FOUND, TEMPLATES

GOLD = customer_pb2.HydratedContext(tier=customer_pb2.CUSTOMER_TIER_GOLD, region="US-CA")


def _brief(order_id: str, title: str) -> customer_pb2.OrderBrief:
    return customer_pb2.OrderBrief(order_id=order_id, awb="WB1234567890", title=title)


def _order(order_id: str, *lines: tuple[str, str, str]) -> orders_pb2.Order:
    return orders_pb2.Order(
        order_id=order_id,
        lines=[
            orders_pb2.OrderLine(
                sku=sku,
                title=title,
                category=category,
                quantity=1,
                unit_price=money_pb2.Money(currency_code="USD", minor_units=100),
            )
            for sku, title, category in lines
        ],
    )


def _passage(chunk_id: str, text: str, *, dense: float = 0.6) -> Passage:
    return Passage(
        chunk_id=chunk_id,
        doc_id=chunk_id.split("#", maxsplit=1)[0],
        title="Returns of electronics",
        section=chunk_id.split("#")[1],
        text=text,
        policy_version="2026.3",
        source_doc="REF-1",
        dense_score=dense,
    )


def test_the_order_is_found_by_product_by_id_or_by_reference() -> None:
    active = [
        _brief("ORD-20260001", "Laptop stand"),
        _brief("ORD-20260002", "Rain jacket and 1 more"),
    ]
    empty = conversation_pb2.ConversationState()
    assert order_to_read("can I return my laptop stand?", empty, active) == "ORD-20260001"
    assert order_to_read("what about ORD-20260002?", empty, active) == "ORD-20260002"
    assert order_to_read("how do refunds work?", empty, active) == ""
    focused = conversation_pb2.ConversationState(focus_order_id="ORD-20260002")
    assert order_to_read("can I still return it?", focused, active) == "ORD-20260002"
    assert order_to_read("how do refunds work?", focused, active) == ""


def test_the_line_is_picked_by_name_or_code_and_ambiguity_picks_none() -> None:
    order = _order(
        "ORD-20260002",
        ("SKU-4102-A", "Rain jacket", "apparel"),
        ("SKU-2210-B", "Noise-cancelling headphones", "electronics"),
    )
    headphones = product_in("can I return the headphones?", order)
    assert headphones == Product(
        "SKU-2210-B", "Noise-cancelling headphones", "electronics", "ORD-20260002"
    )
    by_code = product_in("what about sku-4102-a", order)
    assert by_code is not None
    assert by_code.sku == "SKU-4102-A"
    assert product_in("can I return it?", order) is None  # two lines, no name
    single = _order("ORD-20260001", ("SKU-2040-A", "Laptop stand", "electronics"))
    only = product_in("can I return it?", single)
    assert only is not None
    assert only.sku == "SKU-2040-A"


def test_the_rewrite_names_the_sku_and_tier_and_filters_by_region_and_category() -> None:
    product = Product("SKU-2040-A", "Laptop stand", "electronics", "ORD-20260001")
    query = rewrite("how long do I have to return my laptop stand?", GOLD, product)
    assert "SKU-2040-A" in query.text
    assert "Laptop stand" in query.text
    assert (query.region, query.product_category, query.tier) == ("US-CA", "electronics", "gold")
    assert query.wants_window
    plain = rewrite("what does express delivery cost?", GOLD, None)
    assert plain.text == "what does express delivery cost?"
    assert (plain.product_category, plain.wants_window) == ("", False)
    typed = rewrite("can I return SKU-9942-B?", GOLD, None)
    assert typed.product is not None
    assert typed.product.sku == "SKU-9942-B"
    assert typed.wants_window


def test_the_gate_needs_closeness_or_a_named_code() -> None:
    query = rewrite("can I return SKU-9942-B?", GOLD, None)
    far = [_passage("acme-x#chargers", "The SKU-9942-B charger: 14 days.", dense=0.2)]
    assert relevant(far, query, Gate(min_dense=0.35))  # the code is in it
    assert not relevant(far, query, Gate(min_dense=0.35, code_match=False))
    other = rewrite("do you offer gift wrapping?", GOLD, None)
    assert not relevant(far, other, Gate(min_dense=0.35))
    assert relevant([_passage("acme-x#a", "text", dense=0.5)], other, Gate(min_dense=0.35))
    assert not relevant([], other, Gate())


def test_quotes_come_from_the_chunks_and_the_answer_is_grounded() -> None:
    passages = [
        _passage(
            "acme-x#chargers",
            "SKU-9942-B is the compact travel charger. Under rule RET-EL-14 its return window"
            " is 14 days from delivery instead of 30. After its window it is a warranty claim.",
        ),
        _passage("acme-x#tiers", "Gold members get 15 extra days. Platinum members get 30."),
    ]
    query = rewrite("how long can I return SKU-9942-B?", GOLD, None)
    evidence = select(passages, query)
    assert next(p.chunk_id for p in evidence.cited) == "acme-x#chargers"
    assert "14 days from delivery" in evidence.quotes[0].text
    text = TEMPLATES["policy.answer"](answer_plan(evidence, query).facts)
    assert "“" in text
    assert "[1]" in text
    assert check(text, [f"{p.title}. {p.section}: {p.text}" for p in evidence.cited]).grounded


def test_a_window_from_the_tool_is_stated_and_cites_its_chunks() -> None:
    rule = _passage(
        "acme-x#chargers", "Under rule RET-EL-14 SKU-9942-B may be returned in 14 days."
    )
    tier = _passage("acme-x#tiers", "Gold members get 15 extra days.")
    window = Window(
        returnable=True,
        days=29,
        base_days=14,
        tier_extra_days=15,
        sku_rule=True,
        passages=(rule, tier),
    )
    query = rewrite("how long can I return SKU-9942-B?", GOLD, None)
    evidence = select([rule, tier], query, window=window)
    assert [p.chunk_id for p in evidence.cited] == ["acme-x#chargers", "acme-x#tiers"]
    text = TEMPLATES["policy.answer"](answer_plan(evidence, query).facts)
    assert text.startswith(
        "You can return the SKU-9942-B within 29 days of delivery: 14 days plus 15 extra days"
        " as a gold member. [1] [2]"
    )
    assert check(text, [p.text for p in evidence.cited]).grounded
    blocked = Window(
        returnable=False, days=0, base_days=0, tier_extra_days=0, sku_rule=True, passages=(rule,)
    )
    evidence = select([rule], query, window=blocked)
    text = TEMPLATES["policy.answer"](answer_plan(evidence, query).facts)
    assert text.startswith("The SKU-9942-B cannot be returned unless it is defective. [1]")


def test_nothing_found_says_so_and_offers_a_person() -> None:
    plan = not_found_plan(rewrite("do you price match?", GOLD, None))
    text = TEMPLATES[plan.template](plan.facts)
    assert text == NOT_FOUND
    assert "support team" in text


def test_sentences_that_are_not_neighbours_are_quoted_apart() -> None:
    # "It follows the 30 day window" is about SKU-9942-A: never glued to a B sentence.
    assert _join([(0, "SKU-9942-B is small."), (1, "It has 14 days.")]) == (
        "SKU-9942-B is small. It has 14 days."
    )
    assert _join([(0, "SKU-9942-B is small."), (3, "It follows the 30 day window.")]) == (
        "SKU-9942-B is small. … It follows the 30 day window."
    )
