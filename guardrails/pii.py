"""PII detection with Presidio and keyed pseudonyms within a session.

Presidio's analyzer runs with the no-op NLP engine (no spaCy model, nothing downloaded):
its own recognizers for e-mail addresses, cards (Luhn), IBANs (checksum), IP addresses
and SSNs, plus pattern recognizers for this domain from ``runtime.pii``: the demo
regions' phone and postcode formats, street addresses, and names a context word gives
away ("my name is ...", "deliver to Ms. ..."). The no-op engine has no tokens, so
Presidio's context enhancer cannot run: ``_boost`` raises a match's score when one of
its recognizer's context words stands just before it. AWBs, order ids, SKUs and rule
codes are the allow-list: a result overlapping one is dropped. Presidio's anonymizer
writes the pseudonyms.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # never fetched at run time

import regex
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    UsSsnRecognizer,
)
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

from runtime.pii import (
    DOMAIN_PATTERNS,
    PiiPattern,
    Pseudonymizer,
    Span,
    identifier_spans,
    merged,
    might_hold_pii,
    overlaps,
    resolve,
)

SUPPORTED = (
    "EMAIL_ADDRESS",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "PHONE_NUMBER",
    "POSTCODE",
    "STREET_ADDRESS",
    "PERSON",
)
"""The entity types redacted (PERSON only where a context word gives a name away)."""
THRESHOLD = 0.4
"""Results scored below this are not redacted (bare digit groups without a phone word)."""
_CONTEXT_WINDOW = 40
_CONTEXT_AFTER = 12
_CONTEXT_BOOST = 0.35


@dataclass(frozen=True, slots=True)
class Finding:
    """One PII entity, replaced."""

    entity_type: str
    start: int
    end: int
    placeholder: str


class _DomainRecognizer(PatternRecognizer):
    """One entity's patterns from the registry, with their validators."""

    def __init__(self, entity: str, specs: Sequence[PiiPattern]) -> None:
        self._validators = {s.name: s.validate for s in specs}
        flags = regex.DOTALL | regex.MULTILINE
        if not any(s.case_sensitive for s in specs):
            flags |= regex.IGNORECASE
        super().__init__(
            supported_entity=entity,
            name=f"Waybill{entity.title().replace('_', '')}Recognizer",
            patterns=[Pattern(s.name, _scoped(s), s.score) for s in specs],
            context=sorted({w for s in specs for w in s.context}),
            global_regex_flags=flags,
        )

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        kept = []
        for result in results:
            name = result.recognition_metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY)
            pattern = (
                result.analysis_explanation.pattern_name if result.analysis_explanation else name
            )
            check = self._validators.get(str(pattern))
            if check is None or check(text[result.start : result.end]):
                kept.append(result)
        return kept


def _scoped(spec: PiiPattern) -> str:
    """The pattern with its own case rule, whatever the recognizer's flags."""
    return spec.pattern if spec.case_sensitive else f"(?i:{spec.pattern})"


def build_analyzer() -> AnalyzerEngine:
    """Presidio's analyzer with the no-op NLP engine and this platform's recognizers."""
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    recognizers: list[EntityRecognizer] = [
        EmailRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
    ]
    by_entity: dict[str, list[PiiPattern]] = {}
    for spec in DOMAIN_PATTERNS:
        by_entity.setdefault(spec.entity, []).append(spec)
    recognizers += [_DomainRecognizer(e, specs) for e, specs in by_entity.items()]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])


_WORD = re.compile(r"[a-z]+")


class PiiRedactor:
    """Finds PII and replaces it with session-scoped pseudonyms."""

    def __init__(self, pseudonyms: Pseudonymizer, threshold: float = THRESHOLD) -> None:
        self._pseudonyms = pseudonyms
        self._threshold = threshold
        self._analyzer = build_analyzer()
        self._anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]
        self._context = {
            r.supported_entities[0]: frozenset(r.context or ())
            for r in self._analyzer.registry.recognizers
        }

    def _boost(self, text: str, result: RecognizerResult) -> float:
        words = self._context.get(result.entity_type)
        if not words:
            return result.score
        before = text[max(0, result.start - _CONTEXT_WINDOW) : result.start].lower()
        after = text[result.end : result.end + _CONTEXT_AFTER].lower()
        if words.intersection(_WORD.findall(before)) or words.intersection(_WORD.findall(after)):
            return min(1.0, result.score + _CONTEXT_BOOST)
        return result.score

    def analyze(self, text: str) -> list[Span]:
        """Non-overlapping PII spans of ``text``, identifiers excluded, earliest first."""
        if not might_hold_pii(text):
            return []  # spares the analyzer (~0.4 ms) for most messages
        results = self._analyzer.analyze(text, language="en", entities=list(SUPPORTED))
        allowed = identifier_spans(text)
        spans = [
            Span(r.entity_type, r.start, r.end, self._boost(text, r))
            for r in results
            if not overlaps(r.start, r.end, allowed)
        ]
        # A weak match that extends a strong one of its entity joins it before the cut.
        return resolve([s for s in merged(spans) if s.score >= self._threshold])

    def redact(self, text: str, scope: str) -> tuple[str, list[Finding]]:
        """``text`` with PII replaced by pseudonyms stable within ``scope`` (the session)."""
        spans = self.analyze(text)
        if not spans:
            return text, []
        findings = [
            Finding(
                s.entity,
                s.start,
                s.end,
                self._pseudonyms.token(s.entity, text[s.start : s.end], scope),
            )
            for s in spans
        ]
        tokens = {(f.start, f.end): f.placeholder for f in findings}
        operators = {
            f.entity_type: OperatorConfig("custom", {"lambda": _lookup(tokens, text)})
            for f in findings
        }
        results = [AnonymizerResult(s.entity, s.start, s.end, s.score) for s in spans]
        redacted = self._anonymizer.anonymize(text, results, operators).text
        return redacted, findings


def _lookup(tokens: dict[tuple[int, int], str], text: str):  # type: ignore[no-untyped-def]
    """The anonymizer's custom operator: it is called with the value only, so the
    token is found by value among this text's findings."""
    by_value = {text[a:b]: token for (a, b), token in tokens.items()}
    return lambda value: by_value[value]
