"""Is an answer supported by the chunks it cites?

Quoted text (between “ and ”) is the policy's own words: each quoted sentence
must be found in one cited chunk (most of its content words in one cited
sentence) and every number and code in it must appear in the cited chunks.
Text outside quotes is the answer's own frame ("Your return window is 29 days");
its numbers and codes must appear in the cited chunks too (a sum of two cited
numbers counts: a base window plus a tier's extra days). With ``strict``, every
sentence is held to the quote rule (an answer written by a model, which quotes
nothing). An answer with a claim that fails is ungrounded; the check names it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.chunking import sentences
from retrieval.codes import codes_in
from runtime.words import content_words

_NUMBER = re.compile(r"(?<![A-Za-z0-9-])\d+(?:[.,]\d+)?(?![A-Za-z0-9-])")
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKER = re.compile(r"\[\d+\]")
_QUOTED = re.compile(r"“(.*?)”", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a grounding check."""

    grounded: bool
    unsupported: tuple[str, ...] = ()
    """Claims that no cited chunk supports."""


def _numbers(text: str) -> set[str]:
    return {n.replace(",", ".") for n in _NUMBER.findall(text)}


def _claims(answer: str, *, strict: bool) -> list[tuple[str, bool]]:
    """(sentence, held to the quote rule) pairs of the answer."""
    out: list[tuple[str, bool]] = []
    text = _MARKER.sub("", answer)
    for i, part in enumerate(_QUOTED.split(text)):
        quoted = i % 2 == 1
        # Quotes are split as the chunker splits chunks, so each quoted piece is one
        # source sentence (or list item) and must match one whole.
        pieces = (
            [p for gap in part.split("…") for p in sentences(gap)]
            if quoted
            else [p for p in _SPLIT.split(part) if p.strip()]
        )
        out.extend((piece.strip(), quoted or strict) for piece in pieces if piece.strip())
    return out


def claims(answer: str) -> list[str]:
    """The claims (sentences, quoted pieces) an answer is checked by."""
    return [claim for claim, _ in _claims(answer, strict=False) if content_words(claim)]


def check(
    answer: str,
    cited: Sequence[str],
    *,
    strict: bool = False,
    overlap: float = 0.8,
) -> Verdict:
    """Whether every claim of ``answer`` is supported by the ``cited`` chunk texts."""
    sources = [s for text in cited for s in sentences(text)]
    # A quoted claim must match one sentence as a whole: its words, numbers and codes.
    source_facts = [(content_words(s), _numbers(s), set(codes_in(s))) for s in sources]
    numbers = set().union(*(_numbers(t) for t in cited)) if cited else set()
    sums = {str(int(a) + int(b)) for a in numbers for b in numbers if a.isdigit() and b.isdigit()}
    codes = {c for t in cited for c in codes_in(t)}
    unsupported = []
    for claim, held in _claims(answer, strict=strict):
        words = content_words(claim)
        if not words:
            continue
        bad_numbers = _numbers(claim) - numbers - sums
        bad_codes = set(codes_in(claim)) - codes
        found = any(
            len(words & w) >= overlap * len(words)
            and _numbers(claim) <= n
            and set(codes_in(claim)) <= c
            for w, n, c in source_facts
        )
        if bad_numbers or bad_codes or (held and not found):
            unsupported.append(claim)
    return Verdict(grounded=not unsupported, unsupported=tuple(unsupported))
