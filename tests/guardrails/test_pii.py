"""PII with Presidio: each supported type, the demo regions' formats, the allow-list of
identifiers, keyed pseudonyms, and the log filter every service installs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from guardrails.pii import PiiRedactor
from runtime.logs import JsonFormatter, RedactingFilter
from runtime.pii import LightScanner, Pseudonymizer, might_hold_pii

KEY = b"test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    return PiiRedactor(Pseudonymizer(KEY))


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("write to jane.doe@example.com", "jane.doe@example.com", "EMAIL_ADDRESS"),
        ("card 4111 1111 1111 1111 please", "4111 1111 1111 1111", "CREDIT_CARD"),
        ("my ssn is 987-65-4321", "987-65-4321", "US_SSN"),
        ("from 203.0.113.7 today", "203.0.113.7", "IP_ADDRESS"),
        ("iban DE89 3704 0044 0532 0130 00 thanks", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
        ("typed small: gb82west12345698765432 ok", "gb82west12345698765432", "IBAN_CODE"),
        # the demo regions' phone formats
        ("call me on (415) 555-0134", "(415) 555-0134", "PHONE_NUMBER"),
        ("call me on +1 415 555 0134", "+1 415 555 0134", "PHONE_NUMBER"),
        ("meine Nummer: +49 30 1234 5678", "+49 30 1234 5678", "PHONE_NUMBER"),
        ("mon numéro 01 23 45 67 89", "01 23 45 67 89", "PHONE_NUMBER"),
        ("bel 020-1234567 svp", "020-1234567", "PHONE_NUMBER"),
        ("llámame al +34 912 345 678", "+34 912 345 678", "PHONE_NUMBER"),
        # addresses, postcodes, names a context word gives away
        ("I live at 12 Harbour Lane now", "12 Harbour Lane", "STREET_ADDRESS"),
        ("neue Adresse: Brunnenstraße 41", "Brunnenstraße 41", "STREET_ADDRESS"),
        ("my zip is 94107", "94107", "POSTCODE"),
        ("postcode 1012 AB", "1012 AB", "POSTCODE"),
        ("hi, my name is Avery Quill", "Avery Quill", "PERSON"),
        ("please deliver to Ms. Harper Fenwick", "Harper Fenwick", "PERSON"),
    ],
)
def test_each_entity_is_found_and_replaced(
    redactor: PiiRedactor, text: str, value: str, entity: str
) -> None:
    redacted, found = redactor.redact(text, "session-0001")
    assert [(f.entity_type, text[f.start : f.end]) for f in found] == [(entity, value)]
    assert value not in redacted
    assert found[0].placeholder in redacted
    assert found[0].placeholder.startswith(f"[{entity}_")


@pytest.mark.parametrize(
    "text",
    [
        "where is wb 1234 567 890 from ORD-20260001?",
        "WB-1234-567-890 and WB1234567890 both",
        "the SKU-9942-B and SKU-2210 headphones, rule RET-EL-14",
        "I paid 129.99 on 2026-11-02 for 2 items at 14:30",
        "The Memphis hub scanned it at 07:45",
    ],
)
def test_identifiers_amounts_and_dates_are_not_pii(redactor: PiiRedactor, text: str) -> None:
    redacted, found = redactor.redact(text, "session-0001")
    assert found == []
    assert redacted == text


def test_an_identifier_next_to_pii_survives(redactor: PiiRedactor) -> None:
    text = "ORD-20481734 for avery@example.com, parcel WB4410298873, call 415-555-0147"
    redacted, found = redactor.redact(text, "session-0001")
    assert {f.entity_type for f in found} == {"EMAIL_ADDRESS", "PHONE_NUMBER"}
    assert "ORD-20481734" in redacted
    assert "WB4410298873" in redacted


@pytest.mark.parametrize(
    ("text", "maybe"),
    [
        ("where is WB4536762395? and ORD-20260001", False),  # digits only in identifiers
        ("SKU-2210 headphones, rule RET-EL-14", False),
        ("WB4536762395, call me on 415 555 0134", True),
        ("ORD-20260001 my name is Quinn", True),  # a context word next to an identifier
        ("WB4536762395 avery@example.com", True),
        ("where is my parcel?", False),
    ],
)
def test_the_prefilter_skips_identifier_digits_only(text: str, maybe: bool) -> None:
    assert might_hold_pii(text) is maybe


def test_an_invalid_card_number_is_not_a_card(redactor: PiiRedactor) -> None:
    _, found = redactor.redact("card 4111 1111 1111 1112", "session-0001")
    assert "CREDIT_CARD" not in {f.entity_type for f in found}


def test_pseudonyms_are_stable_in_a_session_and_unlinkable_across(
    redactor: PiiRedactor,
) -> None:
    a1, _ = redactor.redact("mail avery@example.com", "session-a")
    a2, _ = redactor.redact("again: Avery@Example.com", "session-a")
    b, _ = redactor.redact("mail avery@example.com", "session-b")
    token = a1.split()[-1]
    assert a2.endswith(token)  # same value (case aside) -> same token in the session
    assert token not in b  # another session -> another token
    other_key = PiiRedactor(Pseudonymizer(b"another-key-0123456789ab"))
    assert token not in other_key.redact("mail avery@example.com", "session-a")[0]


def test_an_iban_with_wrong_check_digits_is_not_an_iban(redactor: PiiRedactor) -> None:
    _, found = redactor.redact("ref gb83west12345698765432 thanks", "session-0001")
    assert "IBAN_CODE" not in {f.entity_type for f in found}


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymizer(b"short")


def test_the_log_filter_redacts_messages_extras_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("tests.pii.filter")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    log.info("from %s about WB1234567890", "avery@example.com", extra={"phone": "415-555-0134"})
    try:
        raise ValueError("card 4111 1111 1111 1111 declined")
    except ValueError:
        log.exception("payment failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "from [REDACTED:EMAIL_ADDRESS] about WB1234567890"
    assert first["phone"] == "[REDACTED:PHONE_NUMBER]"
    assert "4111" not in second["exc"]
    assert "[REDACTED:CREDIT_CARD]" in second["exc"]


def test_the_light_scanner_agrees_with_presidio_on_the_domain_formats(
    redactor: PiiRedactor,
) -> None:
    text = (
        "This is Avery Quill, avery@example.com, +31 20 123 4567, card 4111 1111 1111 1111, "
        "12 Harbour Lane, zip 94107, about ORD-20481734 / WB4410298873"
    )
    light = [(s.entity, s.start, s.end) for s in LightScanner().scan(text)]
    full = [(s.entity, s.start, s.end) for s in redactor.analyze(text)]
    assert light == full
