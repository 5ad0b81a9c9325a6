"""What goes into a generation and what comes out of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Prompt:
    """The prompt in its fixed order: instructions, context block, history, message.

    The order never varies so that a serving engine's prefix cache stays warm.
    """

    instructions: str
    """Behaviour instructions of the use case (stable per worker and version)."""
    context_block: str
    """The hydrated context block (byte-identical for identical state)."""
    history: tuple[tuple[str, str], ...] = ()
    """Earlier turns as (role, text), oldest first."""
    message: str = ""
    """The customer's message (PII-redacted)."""

    def render(self) -> str:
        """The prompt as one text, in the fixed order."""
        parts = [self.instructions, self.context_block]
        parts.extend(f"{role}: {text}" for role, text in self.history)
        parts.append(f"customer: {self.message}")
        return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class AnswerPlan:
    """What the answer must say: a template id and the facts from tool results.

    A model backend receives the facts in its prompt; the composer renders the
    template, so an answer never contains a fact no tool returned.
    """

    template: str
    """Template id, e.g. ``tracking.status``."""
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Facts the answer is built from."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation."""

    use_case: str
    """Selects the fallback chain (``tracking``, ``policy``, ``negotiation``, ``router``)."""
    prompt: Prompt
    """The prompt for model backends."""
    plan: AnswerPlan
    """The facts (and the composer's template)."""
    max_tokens: int = 256
    """Upper bound on completion tokens."""
    temperature: float = 0.0
    """Sampling temperature for model backends."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Text to append to the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The generation ended normally; the last event of a stream."""

    backend: str
    model: str
    input_tokens: int
    output_tokens: int
    time_to_first_token_us: int
    finish_reason: str


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The generation failed; the last event of a stream. Never followed by a clean finish."""

    backend: str
    code: str
    reason: str
    message: str


GenerationEvent = Union[TextDelta, Finished, StreamFailed]  # noqa: UP007 - runtime alias
