"""The decision for one message: intent, calibrated confidence, low-confidence bucket.

Pure: class scores in, :class:`Decision` out. The previous turn's intent acts
as a prior for short messages, and referring follow-ups ("and the other
one?") take it over entirely; without a previous intent a follow-up needs a
clarifying question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from embeddings.pooling import FloatArray
from router.calibration import Calibration
from router.intents import FOLLOW_UP, SERVED, WORKER_OF, I

ALTERNATIVES = 3


@dataclass(frozen=True, slots=True)
class PriorOptions:
    """How much the previous turn's intent weighs for short messages."""

    bonus: float = 0.06
    """Added to the previous intent's score for a message of ``short_words`` or fewer."""
    short_words: int = 4
    """Up to this many words the full bonus applies."""
    long_words: int = 10
    """From this many words on there is no bonus (the message speaks for itself)."""

    def weight(self, words: int) -> float:
        """1 for short messages, falling linearly to 0 at ``long_words``."""
        if words <= self.short_words:
            return 1.0
        if words >= self.long_words:
            return 0.0
        return (self.long_words - words) / (self.long_words - self.short_words)


class Reason(StrEnum):
    """Why a turn is in the low-confidence bucket (metric label)."""

    NONE = "none"
    OUT_OF_SCOPE = "out_of_scope"
    """Nearest to chit-chat / out-of-scope exemplars."""
    BELOW_THRESHOLD = "below_threshold"
    """A served intent, but not confidently."""
    NEEDS_CONTEXT = "needs_context"
    """A referring follow-up with no previous intent to refer to."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The router's answer for one message."""

    intent: int
    """Best intent (its best guess even when low-confidence)."""
    confidence: float
    """Calibrated P(intent is right)."""
    worker: int
    """Worker to dispatch to; WORKER_UNSPECIFIED when low-confidence."""
    low_confidence: bool
    reason: Reason
    alternatives: tuple[tuple[int, float], ...]
    """Runners-up (intent, confidence), best first."""
    top: float
    """Score of the best class (mean similarity of its nearest exemplars)."""
    gap: float
    """Margin of the best class over the runner-up."""
    used_previous: bool
    """The previous turn's intent decided (a follow-up or a tipped close call)."""


def _too_close_for_negotiation(
    best: int, top: float, by_class: dict[int, float], margin: float
) -> bool:
    """Negotiation wins, but a policy question or out of scope is within ``margin``.

    Those are the costly confusions: a question about the refund policy that opens
    a refund, or a message that is not a request at all. A dispute that is close to
    a tracking question is not (the tracking worker moves no money).
    """
    if WORKER_OF.get(best) != I.WORKER_NEGOTIATION:
        return False
    rivals = [
        score
        for c, score in by_class.items()
        if WORKER_OF.get(c, I.WORKER_TRACKING) in (I.WORKER_POLICY, I.WORKER_UNSPECIFIED)
    ]
    return bool(rivals) and top - max(rivals) < margin


def decide(
    scores: FloatArray,
    classes: Sequence[int],
    *,
    previous: int,
    words: int,
    calibration: Calibration,
    prior: PriorOptions,
) -> Decision:
    """Decide one message from its per-class scores (``scores[i]`` is ``classes[i]``'s)."""
    by_class = {c: float(s) for c, s in zip(classes, scores, strict=True)}
    plain_best = max(by_class, key=by_class.__getitem__)
    if previous in SERVED and previous in by_class:
        # A referring follow-up speaks for the previous intent; either way a short
        # message leans towards what the conversation was about.
        follow = by_class.pop(FOLLOW_UP, float("-inf"))
        lean = prior.bonus * prior.weight(words)
        by_class[previous] = max(by_class[previous], follow) + lean
    ranked = sorted(by_class, key=by_class.__getitem__, reverse=True)
    best, second = ranked[0], ranked[1]
    top = by_class[best]
    gap = top - by_class[second]
    confidence = calibration.confidence(top, gap)
    alternatives = tuple(
        (c, calibration.confidence(by_class[c], by_class[c] - top))
        for c in ranked[1:]
        if c != FOLLOW_UP
    )[:ALTERNATIVES]
    if best == FOLLOW_UP:
        reason = Reason.NEEDS_CONTEXT
    elif best not in SERVED:
        reason = Reason.OUT_OF_SCOPE
    elif (
        confidence < calibration.threshold
        # A short follow-up in a conversation may be far from every exemplar ("what about
        # the kettle?"): the floor holds only when the previous intent does not carry it.
        or (top < calibration.min_top and best != previous)
        or _too_close_for_negotiation(best, top, by_class, calibration.negotiation_margin)
    ):
        reason = Reason.BELOW_THRESHOLD
    else:
        reason = Reason.NONE
    low = reason != Reason.NONE
    intent = I.INTENT_OTHER if best == FOLLOW_UP else best
    return Decision(
        intent=intent,
        confidence=confidence,
        worker=I.WORKER_UNSPECIFIED if low else WORKER_OF[intent],
        low_confidence=low,
        reason=reason,
        alternatives=alternatives,
        top=top,
        gap=gap,
        used_previous=best == previous and plain_best != previous,
    )
