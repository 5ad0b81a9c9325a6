"""The OpenAI request bodies the model API accepts, checked before anything runs.

Every refusal is INVALID_ARGUMENT naming the parameter (``param``, as OpenAI's error
bodies do) and the rule it breaks. Fields this API does not act on (``logprobs``,
``seed``, ``metadata`` ...) are ignored, as OpenAI-compatible servers commonly do;
fields it cannot honour (``n`` > 1, audio) are refused rather than silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_pool.generation import ChatCall
from runtime.errors import InvalidArgument

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
MAX_MESSAGES = 1_000
MAX_TOOLS = 128
MAX_STOP = 4
MAX_EMBEDDING_INPUTS = 256
MAX_EMBEDDING_CHARS = 8_000
MAX_NAME = 256
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})


def refuse(param: str, rule: str) -> InvalidArgument:
    """The refusal of one parameter: the rule it breaks, the parameter named."""
    return InvalidArgument(
        f"{param}: {rule}", reason="INVALID_REQUEST_BODY", metadata={"param": param}
    )


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A checked ``POST /v1/chat/completions`` body."""

    model: str
    call: ChatCall
    max_tokens: int
    """The completion's token limit (the caller's, or the configured default)."""
    temperature: float
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    """``stream_options.include_usage``: a last chunk with the usage."""
    user: str
    """The caller's end-user id, for per-user limits and the audit trail."""

    @property
    def last_user_text(self) -> str:
        """The text of the last user message (what input guardrails check)."""
        for message in reversed(self.call.messages):
            if message.get("role") == "user":
                return text_of(message)
        return ""


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """A checked ``POST /v1/embeddings`` body."""

    model: str
    inputs: tuple[str, ...]
    encoding_format: str
    """``float`` or ``base64`` (little-endian float32, what the ``openai`` SDK asks for)."""
    user: str


def text_of(message: Mapping[str, Any]) -> str:
    """A message's text: its content string, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and "text" in p)
    return ""


def _object(body: Any, param: str) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise refuse(param, "must be a JSON object")
    return body


def _string(body: Mapping[str, Any], key: str, *, required: bool = False, limit: int) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise refuse(key, "is required")
        return ""
    if not isinstance(value, str) or (required and not value):
        raise refuse(key, "must be a non-empty string" if required else "must be a string")
    if len(value) > limit:
        raise refuse(key, f"must be at most {limit} characters")
    return value


def _integer(body: Mapping[str, Any], key: str, *, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise refuse(key, f"must be an integer from {low} to {high}")
    return value


def _number(body: Mapping[str, Any], key: str, *, low: float, high: float, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise refuse(key, f"must be a number from {low:g} to {high:g}")
    return float(value)


def _message(raw: Any, i: int) -> Mapping[str, Any]:
    where = f"messages[{i}]"
    message = _object(raw, where)
    role = message.get("role")
    if role not in ROLES:
        raise refuse(f"{where}.role", f"must be one of {', '.join(sorted(ROLES))}")
    content = message.get("content")
    if content is None:
        if role != "assistant" or not message.get("tool_calls"):
            raise refuse(f"{where}.content", "is required (null only beside tool_calls)")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise refuse(f"{where}.content[{j}]", "must be a text part (images are not served)")
            if not isinstance(part.get("text"), str):
                raise refuse(f"{where}.content[{j}].text", "must be a string")
    elif not isinstance(content, str):
        raise refuse(f"{where}.content", "must be a string or a list of text parts")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise refuse(f"{where}.tool_call_id", "is required in a tool message")
    calls = message.get("tool_calls")
    if calls is not None and (role != "assistant" or not isinstance(calls, list)):
        raise refuse(f"{where}.tool_calls", "must be a list, in an assistant message")
    return message


def _tools(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    tools = body.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise refuse("tools", f"must be a list of at most {MAX_TOOLS} tools")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise refuse(f"tools[{i}].type", "must be 'function'")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise refuse(f"tools[{i}].function.name", "is required")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise refuse(f"tools[{i}].function.parameters", "must be a JSON Schema object")
    return tuple(tools)


def _tool_choice(body: Mapping[str, Any], tools: tuple[Mapping[str, Any], ...]) -> Any:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise refuse("tool_choice", f"must be one of {', '.join(sorted(TOOL_CHOICES))}")
        return choice
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str):
        raise refuse("tool_choice", "must be a string or {type: function, function: {name}}")
    if name not in {t["function"]["name"] for t in tools}:
        raise refuse("tool_choice", f"names a function not in tools: {name[:64]!r}")
    return choice


def _response_format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in RESPONSE_FORMATS:
        raise refuse(
            "response_format.type", f"must be one of {', '.join(sorted(RESPONSE_FORMATS))}"
        )
    if value["type"] == "json_schema" and not isinstance(value.get("json_schema"), dict):
        raise refuse("response_format.json_schema", "is required for type json_schema")
    return None if value["type"] == "text" else value


def _stop(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if (
        isinstance(stop, list)
        and len(stop) <= MAX_STOP
        and all(isinstance(s, str) and s for s in stop)
    ):
        return tuple(stop)
    raise refuse("stop", f"must be a string or a list of at most {MAX_STOP} non-empty strings")


def chat_request(body: Any, *, default_max_tokens: int, max_tokens_cap: int) -> ChatRequest:
    """The checked chat completion request, or INVALID_ARGUMENT naming the parameter."""
    body = _object(body, "body")
    model = _string(body, "model", required=True, limit=MAX_NAME)
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise refuse("messages", f"must be a list of 1 to {MAX_MESSAGES} messages")
    checked = tuple(_message(m, i) for i, m in enumerate(messages))
    n = _integer(body, "n", low=1, high=1)
    del n  # one choice per request: anything else is refused above
    if body.get("modalities") not in (None, ["text"]) or body.get("audio") is not None:
        raise refuse("modalities", "only text is served")
    limit = _integer(body, "max_completion_tokens", low=1, high=max_tokens_cap)
    if limit is None:
        limit = _integer(body, "max_tokens", low=1, high=max_tokens_cap)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise refuse("stream", "must be a boolean")
    options = body.get("stream_options")
    if options is not None and (not stream or not isinstance(options, dict)):
        raise refuse("stream_options", "is an object, allowed only when stream is true")
    include_usage = bool((options or {}).get("include_usage", False))
    tools = _tools(body)
    return ChatRequest(
        model=model,
        call=ChatCall(
            messages=checked,
            tools=tools,
            tool_choice=_tool_choice(body, tools),
            response_format=_response_format(body),
        ),
        max_tokens=limit or default_max_tokens,
        temperature=_number(body, "temperature", low=0.0, high=2.0, default=1.0),
        stop=_stop(body),
        stream=stream,
        include_usage=include_usage,
        user=_string(body, "user", limit=MAX_NAME),
    )


def embedding_request(body: Any) -> EmbeddingRequest:
    """The checked embeddings request, or INVALID_ARGUMENT naming the parameter."""
    body = _object(body, "body")
    model = _string(body, "model", required=True, limit=MAX_NAME)
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(inputs, list)
        or not 1 <= len(inputs) <= MAX_EMBEDDING_INPUTS
        or not all(isinstance(t, str) and 0 < len(t) <= MAX_EMBEDDING_CHARS for t in inputs)
    ):
        raise refuse(
            "input",
            f"must be a string or a list of 1 to {MAX_EMBEDDING_INPUTS} strings of 1 to "
            f"{MAX_EMBEDDING_CHARS} characters (token arrays are not accepted)",
        )
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise refuse("encoding_format", "must be float or base64")
    if body.get("dimensions") is not None:
        raise refuse("dimensions", "this model's vectors have one size; leave it out")
    return EmbeddingRequest(
        model=model,
        inputs=tuple(inputs),
        encoding_format=encoding,
        user=_string(body, "user", limit=MAX_NAME),
    )
