"""The OpenAI-compatible HTTP API: ``POST /v1/chat/completions`` (JSON or server-sent
events), ``GET /v1/models``, ``GET /v1/models/{model}``, ``POST /v1/embeddings``.

Served by the gateway process itself, beside its gRPC API, so a model call meets the
very same key ring, rate limit buckets, ledger stream, cache and audit trail as a turn
without another hop. Errors are OpenAI's body (``{"error": {"message", "type",
"param", "code"}}``) with the HTTP status of the gRPC code (429 with ``Retry-After``);
nothing internal (hosts, backends' own messages, stack traces) reaches the caller.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.auth import API_KEY_HEADER, Authenticator
from gateway.edge.errors import HTTP_STATUS
from gateway.openai_api.calls import CallEvent, Completed, ModelCalls
from gateway.openai_api.requests import ChatRequest, chat_request, embedding_request, refuse
from llm_pool.generation import TextDelta, ToolCallDelta, whole_calls
from runtime import context as call_context
from runtime.errors import DomainError, Unauthenticated
from runtime.principal import Principal

log = logging.getLogger("waybill.gateway.models")

MAX_BODY_BYTES = 4 * 1024 * 1024
REQUESTS = Counter(
    "waybill_model_api_requests_total",
    "Requests to the OpenAI-compatible model API, by route and HTTP status.",
    ["route", "status"],
)
SECONDS = Histogram(
    "waybill_model_api_request_seconds",
    "Time to the response's first byte (a stream's headers), by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_CODES = {
    "MODEL_NOT_FOUND": "model_not_found",
    "BUDGET_EXHAUSTED": "insufficient_quota",
    "RATE_LIMITED": "rate_limit_exceeded",
    "INPUT_BLOCKED": "content_policy_violation",
    "INVALID_CREDENTIAL": "invalid_api_key",
    "MISSING_CREDENTIAL": "invalid_api_key",
    "EXPIRED_CREDENTIAL": "invalid_api_key",
    "REVOKED_CREDENTIAL": "invalid_api_key",
}


def error_body(error: DomainError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI error body of a refusal."""
    status = 413 if error.reason == "BODY_TOO_LARGE" else HTTP_STATUS.get(error.code, 500)
    kind = _TYPES.get(status, "api_error" if status < 503 else "service_unavailable_error")
    return status, {
        "error": {
            "message": error.message,
            "type": kind,
            "param": error.metadata.get("param"),
            "code": _CODES.get(error.reason, error.reason.lower() or None),
        }
    }


def _refusal(error: DomainError, request_id: str) -> JSONResponse:
    status, body = error_body(error)
    headers = {"x-request-id": request_id}
    if error.retry_after_s is not None and status == 429:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after_s)))
        headers["retry-after-ms"] = str(max(1, math.ceil(error.retry_after_s * 1000)))
    return JSONResponse(body, status_code=status, headers=headers)


def _internal(request_id: str) -> JSONResponse:
    body = {
        "error": {
            "message": f"internal error (request {request_id})",
            "type": "api_error",
            "param": None,
            "code": None,
        }
    }
    return JSONResponse(body, status_code=500, headers={"x-request-id": request_id})


async def _json_body(request: Request) -> Any:
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge()
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise refuse("body", "must be valid JSON") from None


class _TooLarge(DomainError):
    code = grpc.StatusCode.OUT_OF_RANGE

    def __init__(self) -> None:
        super().__init__(f"the body is larger than {MAX_BODY_BYTES} bytes", reason="BODY_TOO_LARGE")


def _chunk(request_id: str, model: str, created: int, choice: dict[str, Any]) -> bytes:
    body = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _usage(done: Completed) -> dict[str, int]:
    return {
        "prompt_tokens": done.input_tokens,
        "completion_tokens": done.output_tokens,
        "total_tokens": done.input_tokens + done.output_tokens,
    }


def _tool_call_delta(event: ToolCallDelta) -> dict[str, Any]:
    call: dict[str, Any] = {"index": event.index, "function": {"arguments": event.arguments}}
    if event.call_id:
        call["id"] = event.call_id
        call["type"] = "function"
    if event.name:
        call["function"]["name"] = event.name
    return call


class ModelApi:
    """Handlers of the model API."""

    def __init__(self, calls: ModelCalls, auth: Authenticator) -> None:
        self._calls = calls
        self._auth = auth

    def _enter(self, request: Request) -> tuple[Principal, str]:
        request_id = uuid.uuid4().hex
        call_context.request_id.set(request_id)
        authorization = request.headers.get("authorization")
        api_key = request.headers.get(API_KEY_HEADER)
        if authorization is None and not api_key:
            raise Unauthenticated(
                "missing credential: send 'Authorization: Bearer <API key>'",
                reason="MISSING_CREDENTIAL",
            )
        principal = self._auth.principal_of(
            authorization=authorization, api_key=api_key, bearer_keys=True
        )
        call_context.tenant_id.set(principal.tenant_id)
        call_context.principal.set(principal)
        return principal, request_id

    async def _answer(self, route: str, request: Request, handler: Any) -> Response:
        started = time.perf_counter()
        request_id = ""
        try:
            principal, request_id = self._enter(request)
            response: Response = await handler(principal, request_id)
        except DomainError as exc:
            response = _refusal(exc, request_id or uuid.uuid4().hex)
        except Exception:
            request_id = request_id or uuid.uuid4().hex
            log.exception("model api request failed", extra={"request_id": request_id})
            response = _internal(request_id)
        REQUESTS.labels(route, str(response.status_code)).inc()
        SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

    # -- routes ------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""

        async def handle(principal: Principal, request_id: str) -> Response:
            checked = chat_request(
                await _json_body(request),
                default_max_tokens=self._calls.default_max_tokens,
                max_tokens_cap=self._calls.max_tokens_cap,
            )
            events = self._calls.complete(principal, checked, request_id)
            first = await anext(events)  # refusals (limits, budget, guardrails) come here
            created = int(time.time())
            if checked.stream:
                body = self._stream(
                    events,
                    first=first,
                    model=checked.model,
                    request_id=request_id,
                    created=created,
                    checked=checked,
                )
                return StreamingResponse(
                    body,
                    media_type="text/event-stream",
                    headers={"x-request-id": request_id, "cache-control": "no-cache"},
                )
            return await self._whole(events, first, request_id, created)

        return await self._answer("chat_completions", request, handle)

    async def _whole(
        self, events: AsyncIterator[CallEvent], first: CallEvent, request_id: str, created: int
    ) -> Response:
        text: list[str] = []
        pieces: list[ToolCallDelta] = []
        event: CallEvent | None = first
        while event is not None:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCallDelta):
                pieces.append(event)
            else:
                message: dict[str, Any] = {
                    "role": "assistant",
                    "content": "".join(text) if text or not pieces else None,
                    "refusal": None,
                }
                if pieces:
                    message["tool_calls"] = [
                        {
                            "id": call.call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in whole_calls(pieces)
                    ]
                body = {
                    "id": f"chatcmpl-{request_id}",
                    "object": "chat.completion",
                    "created": created,
                    "model": event.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": event.finish_reason,
                            "logprobs": None,
                        }
                    ],
                    "usage": _usage(event),
                    "system_fingerprint": None,
                }
                headers = {"x-request-id": request_id}
                if event.cached:
                    headers["x-waybill-cache"] = "hit"
                return JSONResponse(body, headers=headers)
            event = await anext(events, None)
        raise refuse("body", "the call ended without an answer")  # pragma: no cover

    async def _stream(
        self,
        events: AsyncIterator[CallEvent],
        *,
        first: CallEvent,
        model: str,
        request_id: str,
        created: int,
        checked: ChatRequest,
    ) -> AsyncIterator[bytes]:
        yield _chunk(
            request_id,
            model,
            created,
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None},
        )
        event: CallEvent | None = first
        try:
            while event is not None:
                if isinstance(event, TextDelta):
                    choice = {"index": 0, "delta": {"content": event.text}, "finish_reason": None}
                    yield _chunk(request_id, model, created, choice)
                elif isinstance(event, ToolCallDelta):
                    delta = {"tool_calls": [_tool_call_delta(event)]}
                    yield _chunk(
                        request_id,
                        model,
                        created,
                        {"index": 0, "delta": delta, "finish_reason": None},
                    )
                else:
                    done = {"index": 0, "delta": {}, "finish_reason": event.finish_reason}
                    yield _chunk(request_id, model, created, done)
                    if checked.include_usage:
                        body = {
                            "id": f"chatcmpl-{request_id}",
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "choices": [],
                            "usage": _usage(event),
                        }
                        yield b"data: " + json.dumps(body).encode() + b"\n\n"
                    yield b"data: [DONE]\n\n"
                    return
                event = await anext(events, None)
        except DomainError as exc:
            # Headers are gone: the error travels as an event; no [DONE] follows.
            _, body = error_body(exc)
            yield b"data: " + json.dumps(body).encode() + b"\n\n"
        except Exception:
            log.exception("model api stream failed", extra={"request_id": request_id})
            failure = DomainError(f"internal error (request {request_id})", reason="INTERNAL")
            _, body = error_body(failure)
            yield b"data: " + json.dumps(body).encode() + b"\n\n"
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``."""

        async def handle(_principal: Principal, request_id: str) -> Response:
            data = [_model(m) for m in self._ids()]
            return JSONResponse(
                {"object": "list", "data": data}, headers={"x-request-id": request_id}
            )

        return await self._answer("models", request, handle)

    async def model(self, request: Request) -> Response:
        """``GET /v1/models/{model}``."""

        async def handle(_principal: Principal, request_id: str) -> Response:
            name = request.path_params["model"]
            if name not in self._ids():
                self._calls.catalogue.model(name)  # raises MODEL_NOT_FOUND
            return JSONResponse(_model(name), headers={"x-request-id": request_id})

        return await self._answer("models", request, handle)

    def _ids(self) -> list[str]:
        return [*self._calls.catalogue.models, self._calls.embeddings.id]

    async def embeddings(self, request: Request) -> Response:
        """``POST /v1/embeddings``."""

        async def handle(principal: Principal, request_id: str) -> Response:
            checked = embedding_request(await _json_body(request))
            done = await self._calls.embed(principal, checked, request_id)
            data = []
            for i, row in enumerate(done.vectors):
                vector: Any
                if checked.encoding_format == "base64":
                    vector = base64.b64encode(row.astype("<f4").tobytes()).decode()
                else:
                    vector = [float(x) for x in row]
                data.append({"object": "embedding", "index": i, "embedding": vector})
            body = {
                "object": "list",
                "data": data,
                "model": done.model,
                "usage": {"prompt_tokens": done.input_tokens, "total_tokens": done.input_tokens},
            }
            return JSONResponse(body, headers={"x-request-id": request_id})

        return await self._answer("embeddings", request, handle)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "waybill"}


async def _no_route(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    body = {
        "error": {
            "message": f"no route {request.method} {request.url.path[:100]}",
            "type": "invalid_request_error",
            "param": None,
            "code": "unknown_url" if status == 404 else "method_not_allowed",
        }
    }
    return JSONResponse(body, status_code=status)


def model_api_app(calls: ModelCalls, auth: Authenticator) -> Starlette:
    """The ASGI application."""
    api = ModelApi(calls, auth)
    return Starlette(
        routes=[
            Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
            Route("/v1/models", api.models, methods=["GET"]),
            Route("/v1/models/{model:path}", api.model, methods=["GET"]),
            Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        ],
        exception_handlers={404: _no_route, 405: _no_route},
    )
