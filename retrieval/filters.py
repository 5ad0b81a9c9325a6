"""Metadata filters, one meaning for both indexes.

A customer in ``US-CA`` is covered by documents for ``US-CA``, for ``US`` and for
every region (``""``); a question about electronics by documents for
electronics and for every category. The lexical index applies a filter as
query clauses, the dense index as an id selector: both before ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def region_scope(region: str) -> tuple[str, ...] | None:
    """Region values a customer in ``region`` is covered by; None: no filter."""
    if not region:
        return None
    country = region.split("-", 1)[0]
    return ("", country) if country == region else ("", country, region)


def category_scope(category: str) -> tuple[str, ...] | None:
    """Category values a question about ``category`` is covered by; None: no filter."""
    return None if not category else ("", category)


@dataclass(frozen=True, slots=True)
class Filter:
    """What a chunk must be to take part in a search (the tenant is separate and mandatory)."""

    regions: tuple[str, ...] | None = None
    """Allowed chunk regions; None allows all."""
    categories: tuple[str, ...] | None = None
    """Allowed chunk categories; None allows all."""
    policy_version: str = ""
    """Only this policy version; empty allows all."""
    at: datetime = END_OF_TIME
    """Only chunks in force at this time."""

    @classmethod
    def of(
        cls,
        *,
        region: str = "",
        product_category: str = "",
        policy_version: str = "",
        at: datetime | None = None,
    ) -> Filter:
        """The filter of a search request's fields (``at`` defaults to now)."""
        return cls(
            regions=region_scope(region),
            categories=category_scope(product_category),
            policy_version=policy_version,
            at=at or datetime.now(UTC),
        )

    def admits(
        self,
        *,
        region: str,
        product_category: str,
        policy_version: str,
        effective: datetime,
        expires: datetime | None,
    ) -> bool:
        """Whether a chunk with these fields passes (the reference the indexes are tested
        against)."""
        return (
            (self.regions is None or region in self.regions)
            and (self.categories is None or product_category in self.categories)
            and (not self.policy_version or policy_version == self.policy_version)
            and effective <= self.at
            and (expires is None or self.at < expires)
        )
