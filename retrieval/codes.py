"""Codes that must match whole: SKUs, AWBs, order ids and the clients' rule codes.

A bag-of-words tokenizer splits ``SKU-9942-B`` into ``sku``, ``9942`` and ``b``,
so a query for one variant also matches the other. The lexical index keeps a
second field tokenized by ``TANTIVY_PATTERN`` (codes only, whole, lower-cased),
and the reranker and the policy worker read codes with ``codes_in``.
"""

from __future__ import annotations

import re

# A hyphenated token with a digit in it (SKU-9942-B, RET-EL-14, CXL-2, ORD-20260001),
# an all-capitals hyphenated token (ACME-POL-RET-EL), or an AWB.
_PARTS = (
    r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-[A-Za-z]*[0-9][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*",
    r"[A-Za-z]+[0-9]+[A-Za-z0-9]*-[A-Za-z0-9-]+",
    r"[A-Z]{2,}(?:-[A-Z0-9]+)+",
    r"WB[0-9]{10}",
)
TANTIVY_PATTERN = "|".join(f"(?:{p})" for p in _PARTS)
"""The tokenizer pattern of the lexical index's code field (Rust regex syntax)."""
_CODE = re.compile(r"(?<![A-Za-z0-9-])(?:" + TANTIVY_PATTERN + r")(?![A-Za-z0-9])")


def codes_in(text: str) -> list[str]:
    """The codes in ``text``, upper-cased, in order of appearance, without repeats."""
    seen: dict[str, None] = {}
    for match in _CODE.finditer(text):
        seen.setdefault(match.group(0).upper(), None)
    return list(seen)
