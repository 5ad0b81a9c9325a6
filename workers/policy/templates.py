"""Composer templates of the policy worker: the policy's own words in quotes, a
citation marker per chunk, and fixed wording around them.

Everything inside “ ” is copied from a cited chunk; everything outside states
no fact that a tool did not return (``guardrails.grounding`` checks both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_pool.composer import Template

OFFER_HUMAN = "Would you like me to connect you with a member of our support team?"
NOT_FOUND = (
    "I couldn't find anything in our policies that answers this, and I'd rather not guess. "
    + OFFER_HUMAN
)


def _window(w: Mapping[str, Any], tier: str) -> str:
    marker = "".join(f" [{m}]" for m in w.get("markers", []))
    product = w["sku"] if w["product"] in ("", w["sku"]) else f"{w['product']} ({w['sku']})"
    if not w["returnable"]:
        return f"The {product} cannot be returned unless it is defective.{marker}"
    extra = (
        f": {w['base_days']} days plus {w['tier_extra_days']} extra days as a {tier} member"
        if w["tier_extra_days"]
        else ""
    )
    return f"You can return the {product} within {w['days']} days of delivery{extra}.{marker}"


def _answer(f: Mapping[str, Any]) -> str:
    parts = []
    if f.get("window"):
        parts.append(_window(f["window"], f["tier"]))
    for quote in f["quotes"]:
        source = f"{quote['title']} ({quote['section']})"
        parts.append(f"{source}: “{quote['text']}” [{quote['marker']}]")
    return "\n\n".join(parts) if parts else NOT_FOUND


def _not_found(f: Mapping[str, Any]) -> str:
    return NOT_FOUND


TEMPLATES: Mapping[str, Template] = {
    "policy.answer": _answer,
    "policy.not_found": _not_found,
}
"""Template id -> renderer."""
