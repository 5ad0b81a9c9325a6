"""Pattern-based PII detection and pseudonymising redaction.

Placeholders are stable within a salt (the session): the same e-mail address
becomes the same ``[EMAIL_ADDRESS_1a2b3c4d]`` every time, so a conversation
stays coherent without the value ever being stored. Tracking numbers and order
ids are not PII and are left alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from runtime.identifiers import ORDER_PATTERN, awb_spans

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL_ADDRESS", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ("US_SSN", re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")),
    ("CREDIT_CARD", re.compile(r"(?<![\dA-Za-z])(?:\d[ -]?){12,18}\d(?!\d)")),
    ("IBAN_CODE", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")),
    ("IP_ADDRESS", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")),
    ("PHONE_NUMBER", re.compile(r"(?<![\dA-Za-z])\+?\(?\d[\d\s().-]{7,16}\d(?!\d)")),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One PII entity."""

    entity_type: str
    start: int
    end: int
    placeholder: str


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _valid(entity: str, value: str) -> bool:
    if entity == "CREDIT_CARD":
        digits = re.sub(r"\D", "", value)
        return 13 <= len(digits) <= 19 and _luhn(digits)
    if entity == "PHONE_NUMBER":
        return 9 <= len(re.sub(r"\D", "", value)) <= 15
    if entity == "IP_ADDRESS":
        return all(int(part) <= 255 for part in value.split("."))
    return True


def placeholder(entity: str, value: str, salt: str) -> str:
    """The stable pseudonym of ``value`` within ``salt``."""
    digest = hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()[:8]
    return f"[{entity}_{digest}]"


def detect(text: str, salt: str) -> list[Finding]:
    """Non-overlapping PII findings, earliest first; identifiers are exempt."""
    taken = list(awb_spans(text)) + [m.span() for m in ORDER_PATTERN.finditer(text)]
    findings: list[Finding] = []
    for entity, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            value = match.group(0).rstrip()
            end = start + len(value)
            if any(start < b and a < end for a, b in taken) or not _valid(entity, value):
                continue
            taken.append((start, end))
            findings.append(Finding(entity, start, end, placeholder(entity, value, salt)))
    return sorted(findings, key=lambda f: f.start)


def redact(text: str, salt: str) -> tuple[str, list[Finding]]:
    """``text`` with every finding replaced by its placeholder."""
    findings = detect(text, salt)
    out: list[str] = []
    last = 0
    for f in findings:
        out.append(text[last : f.start])
        out.append(f.placeholder)
        last = f.end
    out.append(text[last:])
    return "".join(out), findings
