"""Return windows from the structured rules of the policies in force.

Several documents may define a window for one customer and product: the
general one, the category's, the region's, one that names the SKU. The most
specific wins: a document naming the SKU, then a category document over a
general one, then a region's own over its country's over everywhere, then the
most recently effective. Its tier extra days are added unless the SKU is not
returnable at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from retrieval.chunking import Chunk
from retrieval.documents import PolicyDocument
from retrieval.filters import region_scope


@dataclass(frozen=True, slots=True)
class ReturnWindow:
    """The answer for one product and customer."""

    returnable: bool
    days: int
    base_days: int
    tier_extra_days: int
    sku_rule: bool
    document: PolicyDocument
    chunks: tuple[Chunk, ...]
    """The sections to cite: the window's, then the tier's extra days' when another."""

    @property
    def chunk_id(self) -> str:
        """The first cited chunk's id (empty when the document has no chunk)."""
        return self.chunks[0].chunk_id if self.chunks else ""


def _names(document: PolicyDocument, sku: str) -> bool:
    """Whether the document's rules name the SKU (then it applies whatever the category)."""
    rules = document.return_rules
    return rules is not None and (sku in rules.sku_days or sku in rules.non_returnable_skus)


def _specificity(document: PolicyDocument, sku: str) -> tuple[int, int, int, datetime]:
    rules = document.return_rules
    assert rules is not None
    names_sku = int(_names(document, sku))
    depth = 0 if not document.region else (2 if "-" in document.region else 1)
    return (names_sku, int(bool(document.product_category)), depth, document.effective)


def _tier_chunk(chunks: Iterable[Chunk], *, tier: str, days: int) -> Chunk | None:
    """The chunk that names the tier and its extra days."""
    number = re.compile(rf"(?<![0-9]){days}(?![0-9])")
    for chunk in chunks:
        text = f"{chunk.section} {chunk.text}".lower()
        if tier in text and number.search(text):
            return chunk
    return None


def _cite(chunks: Iterable[Chunk], *, sku: str, days: int, sku_rule: bool) -> Chunk | None:
    """The chunk that states the figure: the one naming the SKU for a SKU rule, else the
    one naming the number of days, else the document's first."""
    ordered = list(chunks)
    if sku_rule:
        for chunk in ordered:
            if sku in chunk.text:
                return chunk
    number = re.compile(rf"(?<![0-9]){days}(?![0-9])")
    for chunk in ordered:
        if number.search(chunk.text):
            return chunk
    return ordered[0] if ordered else None


def return_window(
    documents: Iterable[PolicyDocument],
    chunks_of: dict[tuple[str, str], list[Chunk]],
    *,
    tenant_id: str,
    sku: str,
    tier: str,
    region: str,
    product_category: str,
    at: datetime,
) -> ReturnWindow | None:
    """The window for ``sku`` and a customer of ``tier`` in ``region``; None when no
    document of the tenant in force defines one."""
    regions = region_scope(region)
    candidates = [
        d
        for d in documents
        if d.tenant_id == tenant_id
        and d.return_rules is not None
        and d.in_force(at)
        and (regions is None or d.region in regions)
        and (d.product_category in ("", product_category) or _names(d, sku))
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda d: _specificity(d, sku))
    rules = best.return_rules
    assert rules is not None
    chunks = chunks_of.get(best.key, [])
    if sku in rules.non_returnable_skus:
        return ReturnWindow(
            returnable=False,
            days=0,
            base_days=0,
            tier_extra_days=0,
            sku_rule=True,
            document=best,
            chunks=tuple(c for c in [_cite(chunks, sku=sku, days=0, sku_rule=True)] if c),
        )
    sku_rule = sku in rules.sku_days
    base = rules.sku_days.get(sku, rules.window_days)
    extra = rules.tier_extra_days.get(tier, 0)
    cited = [_cite(chunks, sku=sku, days=base, sku_rule=sku_rule)]
    if extra:
        cited.append(_tier_chunk(chunks, tier=tier, days=extra))
    unique = tuple(dict.fromkeys(c for c in cited if c is not None))
    return ReturnWindow(
        returnable=True,
        days=base + extra,
        base_days=base,
        tier_extra_days=extra,
        sku_rule=sku_rule,
        document=best,
        chunks=unique,
    )
