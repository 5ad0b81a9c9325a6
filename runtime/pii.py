"""The PII patterns of this domain, their allow-list, and pseudonyms: one registry.

The guardrails service builds Presidio recognizers from ``DOMAIN_PATTERNS`` (next to
Presidio's own e-mail, card, IBAN, IP and SSN recognizers); every service's log filter
scans with ``LightScanner``, which compiles the same registry plus simple forms of
Presidio's patterns, so logs never need the analyzer (and its start-up cost) in every
process. Identifiers customers type (AWBs, order ids, SKUs, rule codes) are not PII and
are never redacted by either.

Pseudonyms are keyed: ``[PHONE_NUMBER_3f9a1c2e]`` is an HMAC of the value under a
secret key and a scope (the session), so the same value reads the same within a
session, differs across sessions, and cannot be confirmed by guessing without the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import regex

from runtime.identifiers import AWB_PATTERN, ORDER_PATTERN

# SKU-2210, SKU-9942-B; rule codes such as RET-EL-14 or CXL-2; ids in the ORD- family.
SKU_PATTERN = regex.compile(
    r"(?<![A-Za-z0-9])SKU-\d{3,6}(?:-[A-Z0-9]{1,3})?(?![A-Za-z0-9])", regex.I
)
_CODE_PATTERN = regex.compile(
    r"(?<![A-Za-z0-9-])[A-Z]{2,6}(?:-[A-Z]{1,6})*-\d{1,10}(?:-[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)


def identifier_spans(text: str) -> list[tuple[int, int]]:
    """Spans of AWBs, order ids, SKUs and rule codes: the allow-list, never redacted."""
    spans = [m.span() for m in AWB_PATTERN.finditer(text)]
    spans += [m.span() for m in ORDER_PATTERN.finditer(text)]
    spans += [m.span() for m in SKU_PATTERN.finditer(text)]
    spans += [m.span() for m in _CODE_PATTERN.finditer(text)]
    return spans


def overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    """Whether [start, end) overlaps any of ``spans``."""
    return any(start < b and a < end for a, b in spans)


def digits(value: str) -> str:
    """The digits of ``value``."""
    return "".join(ch for ch in value if ch.isdigit())


def luhn(number: str) -> bool:
    """The Luhn checksum of a card number's digits."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


_EXTENSION = regex.compile(r"\s?(?:x|ext\.?)\s?\d{1,5}$", regex.I)
_NOT_PHONE = regex.compile(
    r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{3}-\d{2}-\d{4}"
)


def _phone_ok(value: str) -> bool:
    """6 to 15 digits before any extension; not a date nor an SSN's shape."""
    number = _EXTENSION.sub("", value)
    return 6 <= len(digits(number)) <= 15 and _NOT_PHONE.fullmatch(number) is None


def iban_ok(value: str) -> bool:
    """The ISO 13616 check digits (mod 97) of an IBAN, however spaced or cased."""
    compact = "".join(value.split()).upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _postcode_ok(value: str) -> bool:
    return not value.isdigit() or len(value) in (5, 9, 10)


@dataclass(frozen=True, slots=True)
class PiiPattern:
    """One pattern of the registry."""

    entity: str
    name: str
    pattern: str
    score: float
    """Presidio's confidence for a bare match (raised by ``context`` words nearby)."""
    context: tuple[str, ...] = ()
    validate: Callable[[str], bool] | None = None
    case_sensitive: bool = False


_PHONE_CONTEXT = (
    "phone",
    "call",
    "mobile",
    "cell",
    "tel",
    "telephone",
    "number",
    "text",
    "fax",
    "reach",
    "whatsapp",
    "contact",
    "ring",
    "sms",
    "dial",
    "office",
    "home",
    "work",
    "answering",
    "landline",
)
_SEP = r"[ .\-]?"
_NAME_CONTEXT = (
    r"my name is",
    r"my name's",
    r"name is",
    r"name:",
    r"this is",
    r"i am",
    r"i'm",
    r"call me",
    r"signed(?: by| for)?",
    r"regards,",
    r"thanks,",
    r"deliver(?:ed)? to",
    r"addressed to",
    r"recipient:?",
    r"attn:?",
    r"attention",
    r"c/o",
    r"mr\.?",
    r"mrs\.?",
    r"ms\.?",
    r"miss",
    r"dr\.?",
    r"under the name",
    r"in the name of",
    r"my (?:partner|wife|husband|neighbou?r)",
    # the EU tenant's languages
    r"je suis",
    r"je m'appelle",
    r"ma voisine,",
    r"mon voisin,",
    r"ich bin",
    r"mein name ist",
    r"me llamo",
    r"a nombre de",
    r"t\.a\.v\.",
    r"mijn naam is",
    r"ik ben",
)
DOMAIN_PATTERNS: tuple[PiiPattern, ...] = (
    # The demo regions: +1 (415) 555-0134, 415-555-0134; +49 30 1234 5678; +33 1 23 45 67 89,
    # 01 23 45 67 89; +31 20 123 4567, 020-1234567; +34 912 345 678.
    PiiPattern(
        "PHONE_NUMBER",
        "international phone",
        r"(?<![\w+./:-])(?:\+|00)[1-9]\d{0,2}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}"
        r"(?:[ .\-]?\d{2,4}){1,4}"
        r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w:])",
        0.7,
        _PHONE_CONTEXT,
        _phone_ok,
    ),
    PiiPattern(
        "PHONE_NUMBER",
        "north american phone",
        r"(?<![\w+./:-])(?:1[ .\-]?)?\(?\d{3}\)?" + _SEP + r"\d{3}" + _SEP + r"\d{4}"
        r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w:])",
        0.6,
        _PHONE_CONTEXT,
        _phone_ok,
    ),
    PiiPattern(
        "PHONE_NUMBER",
        "european national phone",
        r"(?<![\w+./:-])0\d{1,4}(?:[ .\-/]?\d{2,4}){2,4}(?![\w:])",
        0.5,
        _PHONE_CONTEXT,
        _phone_ok,
    ),
    PiiPattern(
        "PHONE_NUMBER",
        "grouped digits",
        r"(?<![\w+.,/:-])\(?\d{2,4}\)?(?:[ .\-]\d{2,4}){1,4}(?:\s?x\d{1,5})?(?![\w.,/:-]?\d)",
        0.3,
        _PHONE_CONTEXT,
        _phone_ok,
    ),
    PiiPattern(
        "STREET_ADDRESS",
        "number and street",
        r"(?<!\w)\d{1,5}[A-Za-z]?,?\s+(?:\p{Lu}[\p{L}'.]*\s+){0,3}\p{Lu}[\p{L}'.]*\s+"
        r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|Place|Pl|"
        r"Terrace|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Row|Close|Crescent)\b\.?"
        r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|Flat)\.?\s*#?\w{1,6})?",
        0.7,
        ("address", "live", "deliver", "ship", "send"),
        case_sensitive=True,
    ),
    PiiPattern(
        "STREET_ADDRESS",
        "street and number",
        r"(?<!\w)(?:\p{Lu}[\p{L}'-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|straat|laan|"
        r"gracht|plein|kade|dijk)|(?:rue|avenue|boulevard|chemin|place|calle|avenida|paseo|plaza)"
        r"(?:\s+(?:de|du|des|la|le|del|los|las|d')){0,2}\s+\p{Lu}[\p{L}'-]+(?:\s+\p{Lu}[\p{L}'-]+)?)"
        r",?\s+\d{1,5}[a-zA-Z]?(?!\w)",
        0.7,
        ("address", "live", "deliver", "ship", "send"),
    ),
    PiiPattern(
        "STREET_ADDRESS",
        "number and european street",
        r"(?<!\w)\d{1,5},?\s+(?:rue|avenue|boulevard|chemin|place|calle|avenida)"
        r"(?:\s+(?:de|du|des|la|le|del|los|las|d')){0,2}\s+\p{Lu}[\p{L}'-]+(?:\s+\p{Lu}[\p{L}'-]+)?",
        0.7,
        ("address", "live", "deliver", "ship", "send"),
    ),
    PiiPattern(
        "POSTCODE",
        "postcode after its name",
        r"(?<=\b(?:zip|zip code|zipcode|postcode|post code|postal code|plz|code postal|"
        r"código postal|postcode is|zip is)[:#]?\s{0,3})"
        r"(?:\d{5}(?:-\d{4})?|\d{4}\s?[A-Z]{2})(?!\w)",
        0.8,
        validate=_postcode_ok,
    ),
    PiiPattern(
        "POSTCODE",
        "postcode before a city",
        r"(?<!\w)(?:\d{5}|\d{4}\s?[A-Z]{2})(?=\s+(?:Paris|Berlin|Madrid|Amsterdam|Lyon|Marseille|"
        r"Hamburg|München|Munich|Köln|Cologne|Barcelona|Valencia|Sevilla|Rotterdam|Utrecht|"
        r"Den Haag|Leipzig|Frankfurt)\b)",
        0.7,
        case_sensitive=True,
    ),
    PiiPattern(
        "POSTCODE",
        "US state and ZIP",
        r"(?<=\b(?:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|"
        r"NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC),?\s)"
        r"\d{5}(?:-\d{4})?(?!\w)",
        0.7,
        case_sensitive=True,
    ),
    # Presidio's IBAN recognizer misses lower-case IBANs ("gb48awjv0722..."): checked here.
    PiiPattern(
        "IBAN_CODE",
        "IBAN any case",
        r"(?<!\w)[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?(?!\w)",
        0.8,
        validate=iban_ok,
    ),
    PiiPattern(
        "US_SSN",
        "social security number",
        r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])",
        0.55,
        ("ssn", "social", "security"),
    ),
    PiiPattern(
        "PERSON",
        "name after a context word",
        r"(?:(?<=\b(?i:" + "|".join(_NAME_CONTEXT) + r")\s{1,3})|(?<=[.!?]\s{0,2}[-–—]\s?))"
        r"(?!(?:Phone|Email|E-mail|Address|Apt|Suite|Street|The|This|That|It|Here|There|Order|"
        r"Your|My|Not|Just|Really|So|Very|Sorry|Happy|Glad|Looking|Calling|Writing|Still|Also|"
        r"Waybill|Customer|Support|Thanks|Thank|Please|Hello|Hi|Mr|Mrs|Ms|Miss|Mx|Dr)\b)"
        r"\p{Lu}[\p{Ll}'-]+(?:[ \t]+\p{Lu}[\p{Ll}'-]+){0,2}",
        0.6,
        case_sensitive=True,
    ),
)
"""This domain's patterns (the guardrails wrap each entity's in a Presidio recognizer)."""

_COMMON_PATTERNS: tuple[PiiPattern, ...] = (
    PiiPattern(
        "EMAIL_ADDRESS",
        "e-mail",
        r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+",
        0.9,
    ),
    PiiPattern(
        "CREDIT_CARD",
        "card number",
        r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)",
        0.9,
        validate=lambda v: 13 <= len(digits(v)) <= 19 and luhn(digits(v)),
    ),
    PiiPattern(
        "IBAN_CODE",
        "IBAN",
        r"(?<!\w)[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?(?!\w)",
        0.8,
    ),
    PiiPattern(
        "IP_ADDRESS",
        "IPv4 address",
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])",
        0.8,
    ),
)
"""Simple forms of Presidio's own recognizers, for the log filter only."""


@dataclass(frozen=True, slots=True)
class Span:
    """One PII match."""

    entity: str
    start: int
    end: int
    score: float


def merged(spans: Sequence[Span]) -> list[Span]:
    """Overlapping spans of one entity merged into their union (at the best score)."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.entity, s.start)):
        last = out[-1] if out else None
        if last is not None and last.entity == span.entity and span.start < last.end:
            out[-1] = Span(
                span.entity, last.start, max(last.end, span.end), max(last.score, span.score)
            )
        else:
            out.append(span)
    return out


def resolve(spans: Sequence[Span]) -> list[Span]:
    """Non-overlapping spans, earliest first: overlapping spans of one entity merge; of
    two overlapping spans of different entities the higher score wins, then the longer."""
    chosen: list[Span] = []
    for span in sorted(merged(spans), key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if not overlaps(span.start, span.end, ((c.start, c.end) for c in chosen)):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


_MAYBE = regex.compile(r"[\d@]|\b(?:" + "|".join(_NAME_CONTEXT) + r")\s", regex.I)


def might_hold_pii(text: str, identifiers: Sequence[tuple[int, int]] | None = None) -> bool:
    """False when no recognizer here or in Presidio's set could match: every one needs a
    digit, an ``@`` or a name context word outside the allow-listed identifiers (a span
    overlapping an AWB, order id, SKU or rule code is never PII). ``identifiers``: the
    text's :func:`identifier_spans`, when the caller has them already."""
    if _MAYBE.search(text) is None:
        return False
    spans = identifier_spans(text) if identifiers is None else identifiers
    if not spans:
        return True
    # Identifiers become word characters without digits: word boundaries stay where they
    # were, so a context word next to one is still found.
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "X" * (end - start)
    return _MAYBE.search("".join(chars)) is not None


class LightScanner:
    """PII spans by the registry's patterns alone: the log filter's scanner (~20 us for
    a short line, no analyzer, no context scoring)."""

    def __init__(self, patterns: Sequence[PiiPattern] = DOMAIN_PATTERNS + _COMMON_PATTERNS):
        flags = regex.V0
        self._compiled = [
            (p, regex.compile(p.pattern, flags if p.case_sensitive else flags | regex.I))
            for p in patterns
            # Bare digit groups are too vague without Presidio's context scoring.
            if p.score >= 0.5
        ]

    def scan(self, text: str) -> list[Span]:
        """Resolved PII spans of ``text``, identifiers excluded."""
        if _MAYBE.search(text) is None:
            return []
        allowed = identifier_spans(text)
        if not might_hold_pii(text, allowed):
            return []
        found: list[Span] = []
        for spec, compiled in self._compiled:
            for match in compiled.finditer(text):
                start, end = match.span()
                value = match.group(0)
                if overlaps(start, end, allowed):
                    continue
                if spec.validate is not None and not spec.validate(value):
                    continue
                found.append(Span(spec.entity, start, end, spec.score))
        return resolve(found)


class Pseudonymizer:
    """Keyed, scoped pseudonyms: ``[ENTITY_xxxxxxxx]``."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key

    def token(self, entity: str, value: str, scope: str) -> str:
        """The pseudonym of ``value`` in ``scope`` (a session id; ``log`` for log lines)."""
        normal = " ".join(value.split()).casefold()
        if entity in ("PHONE_NUMBER", "CREDIT_CARD"):
            normal = digits(normal)
        message = f"{scope}\x00{entity}\x00{normal}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()[:8]
        return f"[{entity}_{digest}]"


def apply(text: str, spans: Sequence[Span], replace: Callable[[Span, str], str]) -> str:
    """``text`` with each (non-overlapping, sorted) span replaced by ``replace(span, value)``."""
    out: list[str] = []
    last = 0
    for span in spans:
        out.append(text[last : span.start])
        out.append(replace(span, text[span.start : span.end]))
        last = span.end
    out.append(text[last:])
    return "".join(out)


_PROMPT_SCANNER: LightScanner | None = None


def redact_for_prompt(text: str) -> str:
    """``text`` with PII replaced by ``[ENTITY]`` (stored text placed into a prompt, such as
    a delivery note: the model needs to know a phone number is there, not which)."""
    global _PROMPT_SCANNER  # noqa: PLW0603 - one compiled scanner per process, built lazily
    if _PROMPT_SCANNER is None:
        _PROMPT_SCANNER = LightScanner()
    spans = _PROMPT_SCANNER.scan(text)
    return apply(text, spans, lambda s, _: f"[{s.entity}]") if spans else text
