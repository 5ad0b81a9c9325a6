"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted).

``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options.include_usage``, read as server-sent events: content deltas
become TextDelta; the final chunk's ``usage`` gives exact token counts
(usage_source ``server``). A tool-payload generation sends the tool's schema
as a forced function call (``tools`` + ``tool_choice``, the default) or as
``response_format: json_schema``, and yields the arguments as one ToolPayload.

The attempt's timeout bounds the whole exchange (each read waits at most for
what is left); closing the stream before its end closes the connection, which
the server sees as a disconnect. The client is aiohttp's: a quarter of httpx's
CPU per streamed request here (0.3 against 1.2 ms), which is what a model call
through the gateway costs most of. HTTP 429 is a rate limit (not retried, not counted),
400/413/422 a request the server refuses, everything else a provider failure.
The API key comes from the environment and is only ever sent as a header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import aiohttp

from llm_pool import sse
from llm_pool.errors import BackendError, ErrorKind
from llm_pool.generation import (
    Finished,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
    ToolCallDelta,
    ToolPayload,
)
from llm_pool.prompting import chat_messages
from llm_pool.tokens import TokenCounter, WordCounter
from runtime import context

_REQUEST_ERRORS = {400, 413, 422}
_ERROR_BODY_BYTES = 2048
_DRAIN_S = 0.05
"""How long the end of a body may take to arrive after its ``[DONE]``."""


class OpenAIBackend:
    """Generations from an OpenAI-compatible chat completions endpoint."""

    kind = "openai"

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        served_model: str,
        api_key: str = "",
        tool_mode: str = "tools",
        tokenizer: TokenCounter | None = None,
    ) -> None:
        self.name = name
        self.model = served_model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._tool_mode = tool_mode
        self._tokenizer = tokenizer or WordCounter()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30),
                # Our own deadline bounds every step (below); no second clock.
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def close(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body of the chat completion request."""
        chat = request.chat
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(chat.messages) if chat is not None else chat_messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if chat is not None:
            # The caller's own tools and output format, as the caller wrote them.
            if chat.tools:
                body["tools"] = list(chat.tools)
            if chat.tool_choice is not None:
                body["tool_choice"] = chat.tool_choice
            if chat.response_format is not None:
                body["response_format"] = dict(chat.response_format)
            return body
        tool = request.tool
        if tool is not None and self._tool_mode == "tools":
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": tool.name, "parameters": dict(tool.json_schema)},
                }
            ]
            body["tool_choice"] = {"type": "function", "function": {"name": tool.name}}
        elif tool is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": tool.name, "schema": dict(tool.json_schema)},
            }
        return body

    async def stream(
        self, request: GenerationRequest, *, timeout_s: float | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Stream one chat completion."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        headers = dict(self._headers)
        if rid := context.request_id.get():
            headers["x-request-id"] = rid
        state = _State()
        body = self.body(request)
        headers["content-type"] = "application/json"
        response: aiohttp.ClientResponse | None = None
        try:
            # Bound each step by what is left, without a timeout armed across our
            # yields (it would fire in the caller's code).
            async with asyncio.timeout_at(deadline):
                response = await self._http().post(
                    self._url, data=json.dumps(body).encode(), headers=headers
                )
                if response.status != 200:
                    detail = await response.content.read(_ERROR_BODY_BYTES)
                    raise self._http_error(response.status, detail)
            async with contextlib.aclosing(sse.events(_lines(response))) as lines:
                while True:
                    async with asyncio.timeout_at(deadline):
                        data = await anext(lines, None)
                    if data is None:
                        break
                    if data == "[DONE]":
                        state.done = True
                        break
                    pieces = state.add(json.loads(data))
                    if pieces and not state.first_us:
                        state.first_us = max(1, int((time.perf_counter() - started) * 1e6))
                    for event in _relayed(request, pieces):
                        yield event
        except TimeoutError:
            raise self._error(
                "DEADLINE_EXCEEDED", "OPENAI_TIMEOUT", "timed out", ErrorKind.PROVIDER, state
            ) from None
        except (aiohttp.ClientError, json.JSONDecodeError, ValueError) as exc:
            raise self._error(
                "UNAVAILABLE", "OPENAI_UNAVAILABLE", type(exc).__name__, ErrorKind.PROVIDER, state
            ) from None
        except _ChunkError as exc:
            raise self._error(
                "UNAVAILABLE", "OPENAI_STREAM_ERROR", str(exc), ErrorKind.PROVIDER, state
            ) from None
        finally:
            if response is not None:
                await _let_go(response, complete=state.done)
        if not state.done:
            raise self._error(
                "UNAVAILABLE",
                "OPENAI_STREAM_INCOMPLETE",
                "the stream ended before [DONE]",
                ErrorKind.PROVIDER,
                state,
            )
        prompt = json.dumps(body["messages"])
        input_tokens, output_tokens, source = state.totals(prompt, self._tokenizer)
        if request.tool is not None:
            yield ToolPayload(request.tool.name, state.payload())
        yield Finished(
            backend=self.kind,
            model=self.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            time_to_first_token_us=state.first_us,
            finish_reason=state.finish_reason or "stop",
            usage_source=source,
            backend_id=self.name,
        )

    def _http_error(self, status: int, detail: bytes) -> BackendError:
        message = detail.decode("utf-8", "replace")
        with contextlib.suppress(ValueError, KeyError, TypeError):
            message = str(json.loads(message)["error"]["message"])
        if status == 429:
            code, kind = "RESOURCE_EXHAUSTED", ErrorKind.RATE_LIMIT
        elif status in _REQUEST_ERRORS:
            code, kind = "INVALID_ARGUMENT", ErrorKind.REQUEST
        elif status == 401:
            code, kind = "UNAUTHENTICATED", ErrorKind.PROVIDER
        elif status == 403:
            code, kind = "PERMISSION_DENIED", ErrorKind.PROVIDER
        else:
            code, kind = "UNAVAILABLE", ErrorKind.PROVIDER
        return BackendError(
            f"{self.name}: HTTP {status}: {message[:200]}",
            code=code,
            reason=f"OPENAI_HTTP_{status}",
            kind=kind,
        )

    def _error(
        self, code: str, reason: str, detail: str, kind: ErrorKind, state: _State
    ) -> BackendError:
        # Tokens were spent even if the stream broke: count what was streamed.
        streamed = self._tokenizer.count("".join(state.parts)) if state.parts else 0
        return BackendError(
            f"{self.name}: {detail}",
            code=code,
            reason=reason,
            kind=kind,
            output_tokens=streamed,
            usage_source=self._tokenizer.source if streamed else "",
        )


def _relayed(
    request: GenerationRequest, pieces: list[str | ToolCallDelta]
) -> Iterator[TextDelta | ToolCallDelta]:
    """What the caller sees of a chunk: text; a passed-through call's tool-call pieces too
    (a tool-payload generation's arguments come whole, as one ToolPayload, at the end)."""
    for piece in pieces:
        if isinstance(piece, ToolCallDelta):
            if request.chat is not None:
                yield piece
        elif piece and (request.chat is not None or request.tool is None):
            yield TextDelta(piece)


async def _let_go(response: aiohttp.ClientResponse, *, complete: bool) -> None:
    """Return the connection to the pool when the body ended right after ``[DONE]`` (its
    last chunk read); close it otherwise (an abandoned or broken stream: the server sees
    it go; a server that keeps talking after ``[DONE]``)."""
    if complete:
        try:
            async with asyncio.timeout(_DRAIN_S):
                await response.content.read()
        except (TimeoutError, aiohttp.ClientError):
            pass
        else:
            response.release()
            return
    response.close()


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The response body's lines, decoded."""
    async for raw in response.content:
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


class _ChunkError(Exception):
    """The server sent an error inside the stream."""


class _State:
    """What the stream has said so far."""

    __slots__ = ("done", "finish_reason", "first_us", "parts", "tool_args", "usage")

    def __init__(self) -> None:
        self.done = False
        self.finish_reason = ""
        self.first_us = 0
        self.parts: list[str] = []
        self.tool_args: list[str] = []
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> list[str | ToolCallDelta]:
        """Take one chunk; the content pieces and tool-call pieces it adds."""
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", "error") if isinstance(error, dict) else str(error)
            raise _ChunkError(str(message)[:200])
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        pieces: list[str | ToolCallDelta] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.parts.append(content)
                pieces.append(content)
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                fragment = function.get("arguments") or ""
                if fragment:
                    self.tool_args.append(fragment)
                if fragment or call.get("id") or function.get("name"):
                    pieces.append(
                        ToolCallDelta(
                            index=int(call.get("index") or 0),
                            call_id=str(call.get("id") or ""),
                            name=str(function.get("name") or ""),
                            arguments=fragment,
                        )
                    )
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return pieces

    def payload(self) -> str:
        return "".join(self.tool_args) if self.tool_args else "".join(self.parts)

    def totals(self, prompt: str, counter: TokenCounter) -> tuple[int, int, str]:
        usage = self.usage or {}
        if "prompt_tokens" in usage and "completion_tokens" in usage:
            return int(usage["prompt_tokens"]), int(usage["completion_tokens"]), "server"
        streamed = "".join(self.parts) + "".join(self.tool_args)
        return counter.count(prompt), counter.count(streamed), counter.source
