"""Write-tool payloads written through the LLM pool and checked before anything runs.

The worker's state machine decides every write (which tool, which order, how much); the
pool writes the payload: a model with guided decoding on the JSON Schema compiled from the
tool's argument message, or the composer, which renders the decided arguments as JSON.
What the pool wrote is parsed and validated against the contract (``workers.tools``) and
compared with the decision. A payload that is malformed, breaks a rule or differs from the
decision is never executed: it is counted in ``waybill_tool_payload_invalid_total`` (rule
``payload.differs_from_decision`` for the last) and the decided arguments run instead, so
a model that writes a wrong amount costs a log line, never a wrong refund.

Each payload generation is added to the turn's usage (and so to its cost), and a shadow
candidate, when one is configured, is asked the same (``workers.shadow``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format, message
from waybill.common.v1 import usage_pb2

from llm_pool.composer import Template
from llm_pool.finish import count_generation
from llm_pool.generation import (
    AnswerPlan,
    Finished,
    GenerationRequest,
    Prompt,
    StreamFailed,
)
from llm_pool.pool import LLMPool
from workers.compose import generate_payload
from workers.shadow import Shadow
from workers.tools import INVALID_PAYLOADS, WRITE_TOOLS, Refused, parse_payload, tool_spec

log = logging.getLogger("waybill.tool_payloads")

M = TypeVar("M", bound=message.Message)

DIFFERS = "payload.differs_from_decision"
"""Rule id counted for a valid payload whose arguments are not the ones decided."""
NOT_WRITTEN = "payload.not_generated"
"""Rule id counted when the pool's generation failed or produced no payload."""
PAYLOAD_MAX_TOKENS = 256


def template_id(tool: str) -> str:
    """The composer template that writes ``tool``'s payload."""
    return f"tool.{tool}"


def _as_json(facts: Mapping[str, Any]) -> str:
    return json.dumps(dict(facts), separators=(",", ":"), sort_keys=True)


TEMPLATES: Mapping[str, Template] = {template_id(name): _as_json for name in WRITE_TOOLS}
"""The composer's payload templates: the decided arguments (the plan's facts) as JSON."""


def facts_of(args: message.Message) -> dict[str, Any]:
    """Arguments as the plan's facts: their proto3 JSON mapping."""
    return json_format.MessageToDict(args)


def request_for(
    tool: str, decided: message.Message, *, use_case: str, prompt: Prompt
) -> GenerationRequest:
    """The generation that writes ``tool``'s payload for the ``decided`` arguments."""
    return GenerationRequest(
        use_case=use_case,
        prompt=prompt,
        plan=AnswerPlan(template_id(tool), facts_of(decided), screened=True),
        max_tokens=PAYLOAD_MAX_TOKENS,
        tool=tool_spec(tool),
    )


class Payloads:
    """Writes each payload through the pool; runs only what was decided."""

    def __init__(self, pool: LLMPool, *, use_case: str, shadow: Shadow | None = None) -> None:
        self._pool = pool
        self._use_case = use_case
        self._shadow = shadow

    async def write(self, tool: str, decided: M, *, prompt: Prompt, usage: usage_pb2.Usage) -> M:
        """The arguments ``tool`` runs with: the pool's payload when it is valid and says
        what was decided, else (counted) the decided arguments themselves."""
        request = request_for(tool, decided, use_case=self._use_case, prompt=prompt)
        if self._shadow is not None:
            self._shadow.observe(tool, request, decided)
        text, end = await generate_payload(self._pool, request)
        if isinstance(end, Finished):
            count_generation(usage, end)
        if isinstance(end, StreamFailed):
            log.warning("tool payload not generated", extra={"tool": tool, "reason": end.reason})
        if text is None:
            INVALID_PAYLOADS.labels(tool, NOT_WRITTEN).inc()
            return decided
        parsed = parse_payload(tool, text)
        if isinstance(parsed, Refused):
            for rule in parsed.rule_ids:
                INVALID_PAYLOADS.labels(tool, rule).inc()
            log.warning("tool payload refused", extra={"tool": tool, "rule_id": parsed.rule_ids[0]})
            return decided
        if parsed != decided:
            INVALID_PAYLOADS.labels(tool, DIFFERS).inc()
            log.warning("tool payload refused", extra={"tool": tool, "rule_id": DIFFERS})
            return decided
        return decided  # the same arguments: what was decided runs
