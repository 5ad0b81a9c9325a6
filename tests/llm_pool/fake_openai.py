"""A local server speaking the OpenAI chat completions streaming protocol.

The one fake the project allows: no model server can run here. It answers
like the CPU test model (the facts of the system message, one word per
chunk), streams server-sent events with a final usage chunk, and records what
it received and which streams the client abandoned. Knobs in the user's
message: ``[[fake:status=429]]``, ``[[fake:break-after=N]]`` (the connection
drops after N chunks), ``[[fake:error-after=N]]`` (an error event after N
chunks), ``[[fake:slow=MS]]``, ``[[fake:no-usage]]``, ``[[fake:bad-args]]``; and in the
system message (a candidate's instructions, a context block) ``[[fake:set=PATH=JSON]]``,
which sets one field of the tool arguments it writes (``amount.minorUnits=1``).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cli.triton import free_port

KNOB = re.compile(r"\[\[fake:([a-z-]+)(?:=([^\]]*))?\]\]")
FACTS = re.compile(r"^Facts: (\{.*\})\s*$", re.MULTILINE)
WORD = re.compile(r"\s*\S+")
API_KEY = "sk-test-not-a-secret"


@dataclass
class Recorder:
    """What the server saw."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return JSONResponse(body, status_code=status)


def _answer(system: str) -> str:
    found = FACTS.findall(system)
    facts = json.loads(found[-1]) if found else {}
    parts = [f"{k.replace('_', ' ').capitalize()}: {v}." for k, v in facts.items()]
    return "Here is what I found. " + " ".join(parts) if parts else "No facts."


def _set(facts: dict[str, Any], setting: str) -> None:
    """Apply ``path=json`` (``amount.minorUnits=1``) to the arguments in place."""
    path, _, raw = setting.partition("=")
    *parents, leaf = path.split(".")
    for key in parents:
        facts = facts.setdefault(key, {})
    try:
        facts[leaf] = json.loads(raw)
    except ValueError:
        facts[leaf] = raw


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n"


def app(recorder: Recorder) -> Starlette:
    """The ASGI app."""

    async def completions(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "invalid api key")
        try:
            body = await request.json()
            messages = body["messages"]
            model = body["model"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with model and messages")
        if body.get("stream") is not True:
            return _error(400, "this server only streams")
        recorder.bodies.append(body)
        recorder.headers.append(dict(request.headers))
        rid = request.headers.get("x-request-id", "")
        knobs = dict(KNOB.findall(messages[-1].get("content", "")))
        if "status" in knobs:
            return _error(int(knobs["status"]), "knob")
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        tool = (body.get("tool_choice") or {}).get("function", {}).get("name")
        if tool or body.get("response_format"):
            found = FACTS.findall(system)
            facts = json.loads(found[-1]) if found else {}
            if "bad-args" in knobs:
                facts = {**facts, "awb": "not-an-awb"}
            for setting in [v for k, v in KNOB.findall(system) if k == "set"]:
                _set(facts, setting)
            text = json.dumps(facts)
        else:
            text = _answer(system)
        words = WORD.findall(text)[: int(body.get("max_tokens") or 1000)]
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        prompt_tokens = sum(len(WORD.findall(m.get("content", ""))) for m in messages)

        async def events() -> AsyncIterator[str]:
            sent = 0
            try:
                if tool:
                    start = {"index": 0, "id": "call_1", "type": "function"}
                    start["function"] = {"name": tool, "arguments": ""}
                    yield _chunk(model, {"role": "assistant", "tool_calls": [start]})
                for i, word in enumerate(words):
                    if "slow" in knobs:
                        await asyncio.sleep(int(knobs["slow"]) / 1000)
                    if i == int(knobs.get("break-after", -1)):
                        recorder.outcomes[rid] = "dropped"
                        raise ConnectionResetError("knob: drop the connection")
                    if i == int(knobs.get("error-after", -1)):
                        recorder.outcomes[rid] = "error"
                        yield f"data: {json.dumps({'error': {'message': 'overloaded'}})}\n\n"
                        return
                    if tool:
                        call = {"index": 0, "function": {"arguments": word}}
                        yield _chunk(model, {"tool_calls": [call]})
                    else:
                        yield _chunk(model, {"content": word})
                    sent += 1
                finish = (
                    "tool_calls"
                    if tool
                    else ("length" if len(words) == body.get("max_tokens") else "stop")
                )
                yield _chunk(model, {}, finish)
                if include_usage and "no-usage" not in knobs:
                    usage = {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": sent,
                        "total_tokens": prompt_tokens + sent,
                    }
                    yield f"data: {json.dumps({'id': 'u', 'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"
                recorder.outcomes[rid] = "completed"
            except asyncio.CancelledError:
                recorder.outcomes[rid] = "disconnected"
                raise

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@contextmanager
def serving() -> Iterator[tuple[str, Recorder]]:
    """Run the server on a free loopback port in a thread; yield its base URL and recorder."""
    recorder = Recorder()
    port = free_port()
    config = uvicorn.Config(
        app(recorder), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1", recorder
    finally:
        server.should_exit = True
        thread.join(10)
