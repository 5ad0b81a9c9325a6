"""Composer templates of the negotiation worker: its answers and its write-tool payloads.

The state machine words every answer (``machine.py``: ids, amounts and dates filled into
fixed sentences); the composer says that sentence, a model writes its own from the same
facts. A write's payload is the decided arguments as JSON (``workers.tool_payloads``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_pool.composer import Template
from workers import tool_payloads

ANSWER_TEMPLATE = "negotiation.answer"


def _answer(facts: Mapping[str, Any]) -> str:
    return str(facts["answer"])


TEMPLATES: Mapping[str, Template] = {ANSWER_TEMPLATE: _answer, **tool_payloads.TEMPLATES}
"""Every template the negotiation worker's pool needs."""
