"""The edge's Starlette application: routes, error handling, the access log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.demo_tokens import DemoTokenSigner
from gateway.edge import openapi
from gateway.edge.access_log import AccessLog
from gateway.edge.body import Disconnected
from gateway.edge.demo import DemoCredentials
from gateway.edge.errors import EdgeError, internal, not_found_route
from gateway.edge.gateway_client import GatewayClient
from gateway.edge.handlers import STATIC_DIR, Handlers, refuse
from gateway.edge.ops import OpsBoard
from gateway.edge.responses import error_response
from gateway.edge.settings import EdgeSettings
from runtime import context

log = logging.getLogger("waybill.edge")


def routes(handlers: Handlers) -> list[Route | Mount]:
    """Every path the edge serves (the OpenAPI document lists the same)."""
    return [
        Route("/", handlers.page, methods=["GET"]),
        Route("/ops", handlers.ops_page, methods=["GET"]),
        Route("/v1/ops/summary", handlers.ops_summary, methods=["GET"]),
        Route("/healthz", handlers.healthz, methods=["GET"]),
        Route("/openapi.json", handlers.openapi, methods=["GET"]),
        Route("/v1/demo-token", handlers.demo_token, methods=["POST"]),
        Route("/v1/sessions/{session_id}/turns", handlers.converse, methods=["POST"]),
        Route("/v1/sessions/{session_id}/confirmations", handlers.confirm, methods=["POST"]),
        Route("/v1/sessions/{session_id}", handlers.get_session, methods=["GET"]),
        Route("/v1/customers", handlers.list_customers, methods=["GET"]),
        Route("/v1/customers/{user_id}/context", handlers.customer_context, methods=["GET"]),
        Route("/v1/tickets", handlers.list_tickets, methods=["GET"]),
        Route("/v1/tickets/{ticket_id}/claim", handlers.claim_ticket, methods=["POST"]),
        Route("/v1/tickets/{ticket_id}/resolve", handlers.resolve_ticket, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


async def _edge_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EdgeError)
    return refuse(exc)


async def _disconnected(_request: Request, _exc: Exception) -> Response:
    # Nobody is listening any more; the server drops whatever is sent.
    return Response(status_code=499)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    rid = context.request_id.get() or None
    if exc.status_code == 404:
        return error_response(not_found_route(request.url.path), rid=rid)
    if exc.status_code == 405:
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        allowed = headers.get("allow", "")
        error = EdgeError(
            405,
            grpc.StatusCode.UNIMPLEMENTED,
            f"{request.method} is not served on this path (allowed: {allowed})",
            reason="METHOD_NOT_ALLOWED",
            metadata={"allow": allowed},
        ).to_http()
        response = error_response(error, rid=rid)
        response.headers["allow"] = allowed
        return response
    code = grpc.StatusCode.INVALID_ARGUMENT if exc.status_code < 500 else grpc.StatusCode.INTERNAL
    error = EdgeError(exc.status_code, code, str(exc.detail), reason="HTTP_ERROR").to_http()
    return error_response(error, rid=rid)


async def _bug(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return error_response(internal(), rid=context.request_id.get() or None)


def create_app(
    settings: EdgeSettings,
    *,
    client: GatewayClient | None = None,
    demo: DemoCredentials | None = None,
    signer: DemoTokenSigner | None = None,
    tracer: trace.Tracer | None = None,
    board: OpsBoard | None = None,
) -> Starlette:
    """The application; ``client`` defaults to a channel to ``settings.gateway``, ``board``
    (the ops page's data) to one reading the settings' sources when the ops page is on."""
    gateway = client or GatewayClient(settings.gateway)
    if board is None and settings.ops_enabled:
        board = OpsBoard(settings)
    handlers = Handlers(
        settings=settings,
        client=gateway,
        demo=demo,
        openapi=openapi.document(),
        signer=signer,
        board=board,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {}
        await gateway.close()
        if board is not None:
            await board.close()

    return Starlette(
        routes=routes(handlers),
        middleware=[
            Middleware(
                AccessLog,
                tracer=tracer or trace.get_tracer("waybill.edge"),
                enabled=settings.access_log,
            )
        ],
        exception_handlers={
            EdgeError: _edge_error,
            Disconnected: _disconnected,
            HTTPException: _http_error,
            Exception: _bug,
        },
        lifespan=lifespan,
    )
