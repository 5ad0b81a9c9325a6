"""Identifiers and placeholders become words before embedding."""

from __future__ import annotations

from router.normalize import dedup_key, for_embedding, word_count


def test_identifiers_become_words() -> None:
    assert for_embedding("where is WB 4536 762 395?") == "where is parcel ?"
    assert for_embedding("status of ORD-10293847") == "status of order"
    assert for_embedding("WB1234567890") == "parcel"
    assert for_embedding("mail [EMAIL_ADDRESS_1a2b3c4d] now") == "mail email address now"


def test_plain_text_is_unchanged_and_counted() -> None:
    assert for_embedding("  and the other one? ") == "and the other one?"
    assert word_count("and the other one?") == 4
    assert dedup_key("  Where IS  it ") == "where is it"
