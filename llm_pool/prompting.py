"""Laying out a generation request for a model: raw text (Triton) or chat messages.

Retrieved chunks (policy answers) follow the context block in one fixed layout
(``render_sources``), then the facts of the plan as one compact JSON line; the
order of the parts never varies so prefix caches stay warm.
A tool-payload generation adds one instruction naming the tool; the schema
itself goes to guided decoding, not into the prompt.
"""

from __future__ import annotations

import json
from typing import Any

from llm_pool.generation import ChatCall, GenerationRequest, canary_line, render_sources

FACTS_PREFIX = "Facts: "


def facts_line(request: GenerationRequest) -> str:
    """The plan's facts as one JSON line (keys sorted: byte-identical for equal facts)."""
    return FACTS_PREFIX + json.dumps(
        dict(request.plan.facts), sort_keys=True, separators=(",", ":"), default=str
    )


def _system(request: GenerationRequest) -> str:
    parts = [
        request.prompt.instructions,
        request.prompt.context_block,
        canary_line(request.prompt.canary) if request.prompt.canary else "",
        render_sources(request.prompt.sources),
        facts_line(request),
    ]
    if request.tool is not None:
        parts.append(f"Reply with the JSON arguments of the tool {request.tool.name} only.")
    return "\n\n".join(p for p in parts if p)


def _role(role: str) -> str:
    return "user" if role == "customer" else "assistant"


def _content(message: Any) -> str:
    """A chat message's text (a list of text parts joined; other parts have no text)."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def render_chat(chat: ChatCall, prompt_format: str) -> str:
    """A passed-through conversation as one text for a raw-text endpoint."""
    if prompt_format == "llama3":
        out = ["<|begin_of_text|>"]
        out.extend(_llama3_turn(str(m.get("role", "user")), _content(m)) for m in chat.messages)
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
        return "".join(out)
    lines = [f"{m.get('role', 'user')}: {_content(m)}" for m in chat.messages]
    lines.append("assistant:")
    return "\n\n".join(lines)


def render_text(request: GenerationRequest, prompt_format: str) -> str:
    """The prompt as one text for a raw-text endpoint (the TensorRT-LLM ensemble)."""
    if request.chat is not None:
        return render_chat(request.chat, prompt_format)
    prompt = request.prompt
    if prompt_format == "llama3":
        out = ["<|begin_of_text|>", _llama3_turn("system", _system(request))]
        out.extend(_llama3_turn(_role(role), text) for role, text in prompt.history)
        out.append(_llama3_turn("user", prompt.message))
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
        return "".join(out)
    lines = [_system(request)]
    lines.extend(f"{role}: {text}" for role, text in prompt.history)
    lines.append(f"customer: {prompt.message}")
    lines.append("assistant:")
    return "\n\n".join(lines)


def _llama3_turn(role: str, text: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>"


def chat_messages(request: GenerationRequest) -> list[dict[str, Any]]:
    """The prompt as chat messages for an OpenAI-compatible endpoint."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": _system(request)}]
    messages.extend({"role": _role(role), "content": text} for role, text in request.prompt.history)
    messages.append({"role": "user", "content": request.prompt.message})
    return messages
