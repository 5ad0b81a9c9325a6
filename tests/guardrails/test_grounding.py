"""The grounding check: quoted sentences must be found whole in a cited chunk, figures
and codes anywhere in the answer must be in the cited chunks."""

from __future__ import annotations

import pytest

from guardrails.grounding import check

CITED = [
    "Chargers: The USB-C charger SKU-9942-B may be returned within 14 days only (rule "
    "RET-EL-14). The SKU-9942-A variant follows the 30 day window.",
    "Tiers: Gold members get 15 extra days; platinum members get 30.",
]


@pytest.mark.parametrize(
    "answer",
    [
        "“The USB-C charger SKU-9942-B may be returned within 14 days only (rule RET-EL-14).” [1]",
        "You can return the SKU-9942-B within 29 days: 14 days plus 15 extra days. [1] [2]",
        "Chargers: “The SKU-9942-A variant follows the 30 day window.” [1]",
    ],
)
def test_supported_answers_pass(answer: str) -> None:
    assert check(answer, CITED).grounded


@pytest.mark.parametrize(
    ("answer", "claim"),
    [
        # A sibling code swapped into an otherwise faithful quote.
        (
            "“The USB-C charger SKU-9942-A may be returned within 14 days only.” [1]",
            "The USB-C charger SKU-9942-A may be returned within 14 days only.",
        ),
        # A figure no cited chunk states (nor a sum of two).
        ("You can return it within 31 days. [1]", "You can return it within 31 days."),
        # A quote that is not in the chunks at all.
        (
            "“Returns are free for everyone, forever.” [1]",
            "Returns are free for everyone, forever.",
        ),
        # A code nobody cited.
        ("See rule RET-GEN-9. [1]", "See rule RET-GEN-9."),
    ],
)
def test_each_unsupported_claim_is_named(answer: str, claim: str) -> None:
    verdict = check(answer, CITED)
    assert not verdict.grounded
    assert verdict.unsupported == (claim,)


def test_strict_mode_holds_unquoted_sentences_to_the_quote_rule() -> None:
    answer = "Refunds take a day or so, I think."
    assert check(answer, CITED).grounded  # no figure, no code, no quote: the frame's words
    assert not check(answer, CITED, strict=True).grounded
    assert check("The SKU-9942-A variant follows the 30 day window.", CITED, strict=True).grounded


def test_nothing_cited_grounds_nothing() -> None:
    assert not check("“Items may be returned within 30 days.”", []).grounded
