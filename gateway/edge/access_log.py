"""One span and one JSON log line per HTTP request (pure ASGI, so streams are not buffered).

The span continues the caller's W3C ``traceparent`` when it sent one, so the
edge, the gateway and everything below share a trace id. The log line holds
the route *template*, never the path itself (ids) or any content.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge.streaming import STARTED_AT_KEY

log = logging.getLogger("waybill.edge.http")


def _headers(scope: Scope) -> Mapping[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


class AccessLog:
    """ASGI middleware: trace context in, one span and one ``http`` log line out."""

    def __init__(self, app: ASGIApp, *, tracer: trace.Tracer, enabled: bool = True) -> None:
        self._app = app
        self._tracer = tracer
        self._enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        scope[STARTED_AT_KEY] = started
        parent = propagate.extract(_headers(scope))
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        span = self._tracer.start_span(
            scope["method"],
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"]},
        )
        with trace.use_span(span, end_on_exit=True):
            try:
                await self._app(scope, receive, sending)
            finally:
                # No response at all means the client left first (nginx's 499).
                status = status or 499
                route = scope.get("route")
                template = getattr(route, "path", None) or "(no route)"
                if route is not None:
                    span.update_name(f"{scope['method']} {template}")  # semantic conventions
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR, str(status))
                if self._enabled:
                    log.info(
                        "http",
                        extra={
                            "method": scope["method"],
                            "route": template,
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        },
                    )
