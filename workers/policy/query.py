"""From a customer's question to a knowledge-base query: which product, which filters,
which words. Pure functions: no I/O.

"Can I return my laptop stand?" is asked by a customer with a tier, in a region,
about an order line with a SKU and a category. The rewritten query names the SKU
and the product (so a SKU-specific rule matches whole), the filters keep the
customer's region and the product's category, and the tier goes to the return
window tool. (Adding the tier's name to the query was tried: no better on the DEV
questions, and it pushed tier-extension sections above the general window.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from waybill.common.v1 import conversation_pb2, customer_pb2
from waybill.orders.v1 import orders_pb2

from retrieval.codes import codes_in

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"and", "more", "the", "set", "with", "for", "my", "your"}
_SKU = re.compile(r"^SKU-[0-9]{4}-[A-Z]$")
_WINDOW = re.compile(
    r"\b(return|returns|returning|send\s+(?:it|them|this)\s+back|how\s+long|how\s+many\s+days"
    r"|window|deadline|until\s+when)\b",
    re.IGNORECASE,
)
_REFERS = re.compile(r"\b(it|this|that|them|these|those)\b", re.IGNORECASE)
TIER_NAMES = {
    customer_pb2.CUSTOMER_TIER_STANDARD: "standard",
    customer_pb2.CUSTOMER_TIER_SILVER: "silver",
    customer_pb2.CUSTOMER_TIER_GOLD: "gold",
    customer_pb2.CUSTOMER_TIER_PLATINUM: "platinum",
}


@dataclass(frozen=True, slots=True)
class Product:
    """The product a question is about, from the customer's order."""

    sku: str
    title: str
    category: str
    order_id: str = ""


@dataclass(frozen=True, slots=True)
class PolicyQuery:
    """What the knowledge base is asked."""

    text: str
    """The rewritten query."""
    region: str
    """The customer's region (filter)."""
    product_category: str
    """The product's category (filter); empty when no product is known."""
    tier: str
    """The customer's tier name."""
    product: Product | None
    """The product, when the question names one of the customer's."""
    wants_window: bool
    """Whether the question asks how long a return may take (get_return_window)."""


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


def order_to_read(
    message: str,
    state: conversation_pb2.ConversationState,
    active: Sequence[customer_pb2.OrderBrief],
) -> str:
    """The order whose lines the question needs: named by product or id, or the one the
    conversation is about when the question refers to "it"; empty when none."""
    upper = message.upper()
    for brief in active:
        if brief.order_id in upper:
            return brief.order_id
    words = _words(message)
    scored = sorted(((len(_words(o.title) & words), o.order_id) for o in active), reverse=True)
    if scored and scored[0][0] > 0 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][1]
    if state.focus_order_id and _REFERS.search(message):
        return state.focus_order_id
    return ""


def product_in(message: str, order: orders_pb2.Order) -> Product | None:
    """The order line the message names (the only line when there is one)."""
    lines = list(order.lines)
    if not lines:
        return None
    words = _words(message)
    for line in lines:
        if line.sku and line.sku in message.upper():
            return Product(line.sku, line.title, line.category, order.order_id)
    scored = sorted(
        ((len(_words(line.title) & words), i) for i, line in enumerate(lines)), reverse=True
    )
    best_score, best = scored[0]
    if best_score == 0 and len(lines) > 1:
        return None
    if len(scored) > 1 and scored[1][0] == best_score and best_score > 0:
        return None
    line = lines[best]
    return Product(line.sku, line.title, line.category, order.order_id)


def rewrite(
    message: str, context: customer_pb2.HydratedContext, product: Product | None
) -> PolicyQuery:
    """The query, its filters and whether a return window is asked for."""
    tier = TIER_NAMES.get(context.tier, "standard")
    typed = next((c for c in codes_in(message) if _SKU.match(c)), "")
    if product is None and typed:
        product = Product(sku=typed, title="", category="")
    parts = [message.strip()]
    if product is not None:
        named = product.sku if product.sku not in message.upper() else ""
        parts.append(" ".join(p for p in (named, product.title) if p))
    wants_window = bool(_WINDOW.search(message))
    return PolicyQuery(
        text=" ".join(p for p in parts if p),
        region=context.region,
        product_category=product.category if product else "",
        tier=tier,
        product=product,
        wants_window=wants_window and product is not None and bool(product.sku),
    )
