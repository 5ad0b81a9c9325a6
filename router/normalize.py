"""What the embedder sees: identifiers replaced by the words they stand for.

A tracking number or an order id carries no meaning for a sentence embedding
(its digits only add noise): it is read as the thing it names, "parcel" or
"order". A plain noun, rather than "tracking number", keeps messages that
merely mention an AWB ("I never received WB...") from all looking alike. The
gateway's PII placeholders (``[EMAIL_ADDRESS_1a2b3c4d]``) are likewise read as
"email address".
"""

from __future__ import annotations

import re

from runtime.identifiers import AWB_PATTERN, ORDER_PATTERN

_PII_PLACEHOLDER = re.compile(r"\[([A-Z_]+?)_[0-9a-f]{8}\]")
_SPACES = re.compile(r"\s+")


def for_embedding(text: str) -> str:
    """``text`` with identifiers and placeholders turned into plain words."""
    out = AWB_PATTERN.sub(" parcel ", text)
    out = ORDER_PATTERN.sub(" order ", out)
    out = _PII_PLACEHOLDER.sub(lambda m: " " + m.group(1).lower().replace("_", " ") + " ", out)
    out = _SPACES.sub(" ", out).strip()
    return out or text.strip() or text


def word_count(text: str) -> int:
    """Words in ``text`` (what counts as a *short* follow-up)."""
    return len(text.split())


def dedup_key(text: str) -> str:
    """Two exemplars with this key equal are the same exemplar."""
    return _SPACES.sub(" ", text).strip().lower()
