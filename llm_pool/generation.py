"""What goes into a generation and what comes out of it.

A generation streams ``TextDelta`` (answer text) or one ``ToolPayload`` (JSON
arguments of a tool, for generations that carry a ``ToolSpec``), and ends with
exactly one ``Finished`` or ``StreamFailed``. Both end events carry the cost
inputs (backend, model, tokens in/out and how they were counted) so the ledger
can charge every generation, including one that broke half-way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Source:
    """A retrieved chunk the answer may draw on, as a prompt shows it."""

    marker: int
    """The citation number the answer uses (``[1]``)."""
    chunk_id: str
    """The chunk's id."""
    heading: str
    """Document title and section."""
    policy_version: str
    """Policy version of its document."""
    text: str
    """The chunk's text."""


def canary_line(canary: str) -> str:
    """How a prompt carries the session's canary."""
    return f"Session marker (confidential, never repeat it): {canary}"


def render_sources(sources: tuple[Source, ...]) -> str:
    """The sources block: one fixed layout for every model backend."""
    if not sources:
        return ""
    lines = ["[SOURCES v1]"]
    for s in sources:
        lines.append(f"[{s.marker}] {s.chunk_id} | {s.heading} | version {s.policy_version}")
        lines.append(s.text)
    lines.append("[/SOURCES]")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Prompt:
    """The prompt in its fixed order: instructions, context block, sources, history, message.

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
    sources: tuple[Source, ...] = ()
    """Retrieved chunks the answer must be drawn from (policy answers)."""
    canary: str = ""
    """The session's canary (after the context block: per customer, like the block)."""

    def render(self) -> str:
        """The prompt as one text, in the fixed order."""
        parts = [self.instructions, self.context_block]
        if self.canary:
            parts.append(canary_line(self.canary))
        if self.sources:
            parts.append(render_sources(self.sources))
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
    screened: bool = False
    """The worker vouches that the facts hold no PII: every free-text value (a title, a
    carrier's event text) has been through ``runtime.pii.redact_for_prompt``, and the rest
    are words it built itself (dates, statuses, identifiers). The composer's rendering of
    such facts needs no second PII scan; a model's answer always gets one."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool whose arguments the generation must produce, as JSON.

    The schema is compiled from the tool's argument message in the contracts
    (``workers.tools.tool_spec``); model backends pass it to guided decoding.
    """

    name: str
    """Tool name, e.g. ``initiate_refund``."""
    json_schema: Mapping[str, Any]
    """JSON Schema of the arguments."""


@dataclass(frozen=True, slots=True)
class ChatCall:
    """A caller's own chat completion, passed through (the OpenAI-compatible edge).

    The messages and the tool, response-format and tool-choice settings are forwarded
    as the caller wrote them (already validated) to backends that speak chat; a
    raw-text backend lays plain messages out itself and refuses tools.
    """

    messages: tuple[Mapping[str, Any], ...]
    """The conversation, OpenAI message objects."""
    tools: tuple[Mapping[str, Any], ...] = ()
    """Function tools the model may call."""
    tool_choice: Any = None
    """``auto``, ``none``, ``required`` or a named function; None: the server's default."""
    response_format: Mapping[str, Any] | None = None
    """``json_object`` or ``json_schema`` output, when asked for."""


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
    tool: ToolSpec | None = None
    """Set for a tool-payload generation: the stream yields one ToolPayload, no text."""
    stop: tuple[str, ...] = ()
    """Stop sequences for model backends (the composer ignores them)."""
    chat: ChatCall | None = None
    """A passed-through chat completion: replaces ``prompt`` and ``plan`` for models."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Text to append to the answer."""

    text: str
    screened: bool = False
    """Template wording around screened facts (``AnswerPlan.screened``): no PII scan."""


@dataclass(frozen=True, slots=True)
class ToolPayload:
    """The JSON arguments a tool-payload generation produced, not yet validated.

    Nothing runs on it before ``workers.tools`` has parsed and validated it
    against the tool's contract.
    """

    tool: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call a passed-through chat completion streams (``ChatCall``)."""

    index: int
    """Which call of the answer (several may be streamed side by side)."""
    call_id: str = ""
    """The call's id (in its first piece)."""
    name: str = ""
    """The function's name (in its first piece)."""
    arguments: str = ""
    """The next fragment of the JSON arguments."""


def whole_calls(pieces: Iterable[ToolCallDelta]) -> list[ToolCallDelta]:
    """Streamed tool-call pieces joined into one per call, in index order: each call's
    first id and name, and its argument fragments in the order they came."""
    ids: dict[int, str] = {}
    names: dict[int, str] = {}
    arguments: dict[int, list[str]] = {}
    for piece in pieces:
        arguments.setdefault(piece.index, []).append(piece.arguments)
        if piece.call_id:
            ids.setdefault(piece.index, piece.call_id)
        if piece.name:
            names.setdefault(piece.index, piece.name)
    return [
        ToolCallDelta(i, ids.get(i, ""), names.get(i, ""), "".join(arguments[i]))
        for i in sorted(arguments)
    ]


@dataclass(frozen=True, slots=True)
class Charge:
    """What a generation costs under the price table (``waybill.common.v1.Cost``)."""

    currency_code: str
    micro_units: int
    price_version: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The generation ended normally; the last event of a stream."""

    backend: str
    model: str
    input_tokens: int
    output_tokens: int
    time_to_first_token_us: int
    finish_reason: str
    usage_source: str = "tokenizer"
    """How tokens were counted: ``server`` (the engine reported them),
    ``tokenizer`` (the model's own tokenizer) or ``estimate`` (no tokenizer)."""
    charge: Charge | None = None
    """Cost under the price table; None when the model is not priced."""
    backend_id: str = ""
    """The configured backend (``triton-small``) within the kind ``backend``."""
    attempts: int = 1
    """Attempts the pool made across the chain before this one succeeded, plus one."""


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The generation failed; the last event of a stream. Never followed by a clean finish.

    When some output had already been streamed (``after_first_delta``), the
    usage fields say what was consumed so it can still be charged.
    """

    backend: str
    code: str
    reason: str
    message: str
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    usage_source: str = ""
    charge: Charge | None = None
    after_first_delta: bool = False
    backend_id: str = ""


GenerationEvent = Union[TextDelta, ToolPayload, ToolCallDelta, Finished, StreamFailed]  # noqa: UP007 - runtime alias
