import pytest

from guardrails.pii import detect, placeholder, redact


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("write to jane.doe@example.com", "EMAIL_ADDRESS"),
        ("call me on +1 (415) 555-0134", "PHONE_NUMBER"),
        ("card 4111 1111 1111 1111", "CREDIT_CARD"),
        ("ssn 123-45-6789", "US_SSN"),
        ("from 192.168.10.12", "IP_ADDRESS"),
        ("iban DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
    ],
)
def test_entities_are_replaced(text: str, entity: str) -> None:
    redacted, found = redact(text, "session-1")
    assert [f.entity_type for f in found] == [entity]
    assert found[0].placeholder in redacted
    assert text[found[0].start : found[0].end] not in redacted


def test_identifiers_are_not_pii() -> None:
    text = "where is wb 1234 567 890 from ORD-20260001?"
    assert detect(text, "s") == []


def test_invalid_card_numbers_are_left_alone() -> None:
    assert [f.entity_type for f in detect("card 4111 1111 1111 1112", "s")] != ["CREDIT_CARD"]


def test_pseudonyms_are_stable_per_salt() -> None:
    assert placeholder("EMAIL_ADDRESS", "a@b.co", "s1") == placeholder(
        "EMAIL_ADDRESS", "a@b.co", "s1"
    )
    assert placeholder("EMAIL_ADDRESS", "a@b.co", "s1") != placeholder(
        "EMAIL_ADDRESS", "a@b.co", "s2"
    )
