"""The hook for low-confidence messages: an LLM router through the LLM pool.

The classifier hands every low-confidence message (except a follow-up with
nothing to refer to) to a :class:`RouterFallback` when one is configured. A
fallback answers with a served intent or None; None, an error or a timeout
keep the clarifying question, so a slow or failing model never fails a turn.

Its time comes from the runtime's deadline helper (:func:`fallback_timeout`):
the caller's remaining time minus the service's margin, capped by the
fallback's own budget, so the router always has time left to answer; when
less than the policy's minimum would remain the fallback is not started at all.
:class:`LlmPoolFallback` asks the pool's ``router`` use case; it is wired once
a generative backend is configured for that use case.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Protocol

from llm_pool.generation import (
    AnswerPlan,
    Finished,
    GenerationRequest,
    Prompt,
    StreamFailed,
    TextDelta,
)
from llm_pool.pool import LLMPool
from router.intents import SERVED, intent_name, parse_intent
from runtime.deadlines import DeadlinePolicy, outgoing_timeout
from runtime.errors import DeadlineExceeded

INSTRUCTIONS = (
    "You route customer messages of a parcel-delivery support chat. Answer with exactly one"
    " intent name from the list, or NONE if no intent fits. No other words."
)
_NAME = re.compile(r"\b(INTENT_[A-Z_]+|NONE)\b")


@dataclass(frozen=True, slots=True)
class FallbackRequest:
    """What the fallback sees of a low-confidence message."""

    text: str
    """The message (PII-redacted by the gateway)."""
    previous_intent: int
    candidates: tuple[tuple[int, float], ...]
    """The classifier's best intents with their confidence, best first."""
    timeout_s: float
    """Time the fallback may take."""


@dataclass(frozen=True, slots=True)
class FallbackChoice:
    """An intent the fallback chose."""

    intent: int
    confidence: float


class RouterFallback(Protocol):
    """Decides a low-confidence message, or declines (None)."""

    async def choose(self, request: FallbackRequest) -> FallbackChoice | None:
        """A served intent, or None to keep the clarifying question."""
        ...


def fallback_timeout(policy: DeadlinePolicy, *, budget_s: float) -> float | None:
    """Seconds the fallback may take for the call in progress, or None: no time for it.

    ``min(budget_s, remaining - margin)``; None when that is below the policy's
    minimum, so a model call that could not finish is never started.
    """
    try:
        return outgoing_timeout(policy, budget_s=budget_s, target="the router fallback")
    except DeadlineExceeded:
        return None


class LlmPoolFallback:
    """Asks a generative backend of the LLM pool (use case ``router``) for one intent name."""

    def __init__(self, pool: LLMPool, *, confidence: float = 0.5, max_tokens: int = 12) -> None:
        self._pool = pool
        self._confidence = confidence
        self._max_tokens = max_tokens

    def request_for(self, request: FallbackRequest) -> GenerationRequest:
        """The generation: instructions, the intent list as context, the message."""
        names = "\n".join(intent_name(i) for i in sorted(SERVED))
        hints = ", ".join(f"{intent_name(i)} ({c:.2f})" for i, c in request.candidates)
        context = f"Intents:\n{names}\nClassifier's guesses: {hints or 'none'}"
        previous = intent_name(request.previous_intent) if request.previous_intent else "none"
        return GenerationRequest(
            use_case="router",
            prompt=Prompt(
                instructions=INSTRUCTIONS,
                context_block=context,
                history=(("previous intent", previous),),
                message=request.text,
            ),
            plan=AnswerPlan(template="router.choose", facts={"candidates": hints}),
            max_tokens=self._max_tokens,
            temperature=0.0,
        )

    async def choose(self, request: FallbackRequest) -> FallbackChoice | None:
        """The intent the model names, if it names exactly a served one in time."""
        try:
            async with asyncio.timeout(request.timeout_s):
                text = await self._generate(self.request_for(request))
        except TimeoutError:
            return None
        if text is None:
            return None
        match = _NAME.search(text)
        if match is None or match.group(1) == "NONE":
            return None
        try:
            intent = parse_intent(match.group(1))
        except ValueError:
            return None
        if intent not in SERVED:
            return None
        return FallbackChoice(intent=intent, confidence=self._confidence)

    async def _generate(self, generation: GenerationRequest) -> str | None:
        parts: list[str] = []
        async for event in self._pool.stream(generation):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, Finished):
                return "".join(parts)
            elif isinstance(event, StreamFailed):
                return None
        return None  # a stream that ended without Finished is no answer
