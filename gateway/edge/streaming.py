"""A streaming gateway call answered as Server-Sent Events.

The response waits for the call's first event before it commits to a status:
a call that fails before any event (bad credential, invalid request, gateway
down) is answered with its mapped HTTP status and the error body, not with a
200 stream. Once the stream has started, a failure is sent as the gateway's
``turn_error`` event (when it sent one) and then an SSE ``error`` event with
the error body: a broken turn never ends looking complete.

While it runs, a task listens for the client going away; a disconnect cancels
the gRPC call, which cancels the turn in every service below the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import grpc
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.edge import sse
from gateway.edge.errors import EdgeError, HttpError, from_rpc_error, internal
from runtime.context import REQUEST_ID_HEADER

log = logging.getLogger("waybill.edge")

SSE_TYPE = "text/event-stream; charset=utf-8"
STARTED_AT_KEY = "waybill.edge.started"
"""Scope key: perf_counter() when the request reached the edge (set by the access log)."""


def _incomplete() -> HttpError:
    return EdgeError(
        500,
        grpc.StatusCode.INTERNAL,
        "the turn ended without a final event",
        reason="STREAM_INCOMPLETE",
    ).to_http()


_HELD_KINDS = frozenset({"tool_call", "citation", "error"})
"""Gateway events held back until the turn says something (see EventStream._head)."""


class EventStream(Response):
    """ASGI response relaying one server-streaming gateway call as SSE."""

    def __init__(self, call: grpc.aio.UnaryStreamCall, *, rid: str, called_at: float) -> None:
        super().__init__(status_code=200, media_type=SSE_TYPE)
        self._call = call
        self._rid = rid
        self._called_at = called_at
        self.disconnected = False
        self._started = False
        self.outcome = "unstarted"
        """How it ended: ``complete``, ``failed``, ``disconnected``, ``error_response``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._watch(receive))
        try:
            await self._relay(scope, send)
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
        except Exception as exc:  # a bug here must still end the response explicitly
            if self.disconnected:
                return
            self.outcome = "failed"
            error = unexpected(exc)
            if self._started:
                await self._finish(send, sse.error_frame(error))
            else:
                await self._send_error_response(send, error)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            # A no-op once the call is done; otherwise the turn stops downstream.
            self._call.cancel()

    async def _watch(self, receive: Receive) -> None:
        """Cancel the call as soon as the client disconnects."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                self.outcome = "disconnected"
                self._call.cancel()
                return

    async def _next(self) -> Any:
        """The next response, ``None`` at a clean end, AioRpcError on failure."""
        response = await self._call.read()
        return None if response is grpc.aio.EOF else response

    async def _head(self) -> tuple[list[Any], bool]:
        """The events up to the first one that says something, and whether the stream
        already ended. Tool calls and an error event are held back meanwhile, so a turn
        that fails before saying anything ends as an HTTP error (429 + Retry-After, ...),
        not as a 200 stream: raises the AioRpcError that ended it."""
        held: list[Any] = []
        while True:
            response = await self._next()
            if response is None:
                return held, True
            held.append(response)
            if response.event.WhichOneof("kind") not in _HELD_KINDS:
                return held, False

    async def _relay(self, scope: Scope, send: Send) -> None:
        try:
            held, ended = await self._head()
        except grpc.aio.AioRpcError as exc:
            if self.disconnected:
                return
            self.outcome = "error_response"
            await self._send_error_response(send, from_rpc_error(exc))
            return
        first_at = time.perf_counter()
        started = scope.get(STARTED_AT_KEY, self._called_at)
        edge_in_ms = (self._called_at - started) * 1000
        edge_out_ms = (time.perf_counter() - first_at) * 1000
        headers = [
            (b"content-type", SSE_TYPE.encode()),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            (REQUEST_ID_HEADER.encode(), self._rid.encode()),
            (
                b"server-timing",
                f"edge-in;dur={edge_in_ms:.3f}, edge-out;dur={edge_out_ms:.3f}".encode(),
            ),
        ]
        self._started = True
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        last_kind: str | None = None
        try:
            for response in held:
                last_kind = await self._relay_one(send, response, last_kind)
            while not ended:
                response = await self._next()
                if response is None:
                    break
                last_kind = await self._relay_one(send, response, last_kind)
        except grpc.aio.AioRpcError as exc:
            if self.disconnected:
                return
            self.outcome = "failed"
            await self._finish(send, sse.error_frame(from_rpc_error(exc)))
            return
        if last_kind in sse.COMPLETE_KINDS:
            self.outcome = "complete"
            await self._finish(send, b"")
        else:
            self.outcome = "failed"
            await self._finish(send, sse.error_frame(_incomplete()))

    async def _relay_one(self, send: Send, response: Any, last_kind: str | None) -> str | None:
        """Send one gateway event as an SSE frame; the kind of the last event sent."""
        framed = sse.turn_event(response.event)
        if framed is None:
            return last_kind
        kind, data = framed
        await send({"type": "http.response.body", "body": data, "more_body": True})
        return kind

    async def _finish(self, send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": False})

    async def _send_error_response(self, send: Send, error: HttpError) -> None:
        headers = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        body = error.json_bytes()
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID_HEADER.encode(), self._rid.encode()),
        ]
        self._started = True
        await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def unexpected(exc: BaseException) -> HttpError:
    """A bug: logged with its traceback, answered without it."""
    log.error("unexpected error in a stream", exc_info=exc)
    return internal()
