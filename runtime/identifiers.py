"""Identifiers customers type: air waybill numbers and order ids, in their common variants."""

from __future__ import annotations

import re

# "WB1234567890", "wb 1234 567 890", "WB-1234-567-890", "w.b. 1234567890"
AWB_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])w\s*\.?\s*b\.?[\s.\-]*((?:\d[\s\-]*){9}\d)(?!\d)", re.IGNORECASE
)
ORDER_PATTERN = re.compile(r"(?<![A-Za-z0-9])ord[\s\-]*(\d{8})(?!\d)", re.IGNORECASE)


def find_awbs(text: str) -> list[str]:
    """Canonical AWBs (``WB`` + 10 digits) typed in ``text``, in order, without duplicates."""
    found: list[str] = []
    for match in AWB_PATTERN.finditer(text):
        awb = "WB" + re.sub(r"\D", "", match.group(1))
        if awb not in found:
            found.append(awb)
    return found


def awb_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of AWBs in ``text`` (so PII detectors can leave them alone)."""
    return [m.span() for m in AWB_PATTERN.finditer(text)]


def find_order_ids(text: str) -> list[str]:
    """Canonical order ids (``ORD-`` + 8 digits) typed in ``text``."""
    return [f"ORD-{m.group(1)}" for m in ORDER_PATTERN.finditer(text)]
