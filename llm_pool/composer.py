"""The embedded ``composer`` backend: no model, deterministic answers from facts.

It renders the plan's template with the facts tool calls returned, streams the
text in small deltas and counts tokens with a simple word/punctuation
tokenizer. It is the last link of every fallback chain, so the platform
degrades to correct-but-plain instead of failing. For a tool-payload
generation the template renders the JSON arguments, yielded as one
ToolPayload.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

from llm_pool.generation import (
    Finished,
    GenerationEvent,
    GenerationRequest,
    StreamFailed,
    TextDelta,
    ToolPayload,
)

_TOKEN = re.compile(r"\w+|[^\w\s]")
_CHUNK = re.compile(r"\S+\s*")

Template = Callable[[Mapping[str, Any]], str]


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a stable stand-in for a model tokenizer."""
    return len(_TOKEN.findall(text))


class Composer:
    """Renders registered templates; an unknown template is a failed stream, not a guess."""

    name = "composer"
    kind = "composer"
    model = "composer-v1"

    def __init__(self, templates: Mapping[str, Template], *, words_per_delta: int = 4) -> None:
        self._templates = dict(templates)
        self._words_per_delta = words_per_delta

    def register(self, template_id: str, template: Template) -> None:
        """Add or replace a template."""
        self._templates[template_id] = template

    async def stream(
        self, request: GenerationRequest, *, timeout_s: float | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Render and stream the plan (``timeout_s`` is moot: rendering takes microseconds)."""
        started = time.perf_counter()
        template = self._templates.get(request.plan.template)
        if template is None:
            yield StreamFailed(
                backend=self.name,
                code="FAILED_PRECONDITION",
                reason="UNKNOWN_TEMPLATE",
                message=f"composer has no template {request.plan.template!r}",
                backend_id=self.name,
            )
            return
        text = template(request.plan.facts)
        if request.tool is not None:
            yield ToolPayload(request.tool.name, text)
            yield Finished(
                backend=self.name,
                model=self.model,
                input_tokens=count_tokens(request.prompt.render()),
                output_tokens=count_tokens(text),
                time_to_first_token_us=max(1, int((time.perf_counter() - started) * 1e6)),
                finish_reason="stop",
                backend_id=self.name,
            )
            return
        words = _CHUNK.findall(text)
        first_us = 0
        out_tokens = 0
        for i in range(0, len(words), self._words_per_delta):
            piece = "".join(words[i : i + self._words_per_delta])
            if not first_us:
                first_us = max(1, int((time.perf_counter() - started) * 1e6))
            out_tokens += count_tokens(piece)
            if out_tokens > request.max_tokens:
                yield Finished(
                    self.name,
                    self.model,
                    count_tokens(request.prompt.render()),
                    out_tokens,
                    first_us,
                    "length",
                    backend_id=self.name,
                )
                return
            yield TextDelta(piece, screened=request.plan.screened)
        yield Finished(
            backend=self.name,
            model=self.model,
            input_tokens=count_tokens(request.prompt.render()),
            output_tokens=out_tokens,
            time_to_first_token_us=first_us,
            finish_reason="stop",
            backend_id=self.name,
        )
