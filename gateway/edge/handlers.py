"""The edge's endpoints: each turns one HTTP request into one gateway call.

Translate only: path, query and body -> request message; headers -> metadata
and deadline; response message -> proto3 JSON, or the stream -> SSE. What the
request means is for the gateway to decide.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.demo_tokens import DemoTokenSigner
from gateway.edge import body, deadline, demo_token, forwarding, json_mapping, ops
from gateway.edge.demo import DemoCredentials
from gateway.edge.errors import EdgeError, from_rpc_error
from gateway.edge.gateway_client import GatewayClient, Metadata
from gateway.edge.responses import error_response, json_response, message_response
from gateway.edge.settings import EdgeSettings
from gateway.edge.streaming import EventStream
from runtime import context

STATIC_DIR = Path(__file__).resolve().parent / "static"
HEALTH_TIMEOUT_S = 1.0

# The page is same-origin only and loads nothing from elsewhere; say so to the browser.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class CallSetup:
    """What every gateway call made for a request needs."""

    rid: str
    metadata: Metadata
    timeout_s: float


class Handlers:
    """Endpoint functions bound to one gateway client and the settings."""

    def __init__(
        self,
        *,
        settings: EdgeSettings,
        client: GatewayClient,
        demo: DemoCredentials | None,
        openapi: dict[str, Any],
        signer: DemoTokenSigner | None = None,
        board: ops.OpsBoard | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._demo = demo
        self._openapi = openapi
        self._signer = signer
        self._board = board

    # -- shared steps -------------------------------------------------------------------

    def _setup(self, request: Request) -> CallSetup:
        headers = request.headers
        rid = forwarding.request_id(headers)
        context.request_id.set(rid)
        requested = deadline.requested_timeout(
            headers,
            default_s=self._settings.default_timeout_s,
            max_s=self._settings.max_timeout_s,
        )
        return CallSetup(
            rid=rid,
            metadata=forwarding.metadata(headers, rid=rid, demo=self._demo),
            timeout_s=deadline.grpc_timeout(requested, margin_s=self._settings.deadline_margin_s),
        )

    async def _json_body(self, request: Request) -> dict[str, Any]:
        raw = await body.read_json_body(request, max_bytes=self._settings.max_body_bytes)
        return json_mapping.parse_object(raw)

    async def _unary(self, setup: CallSetup, call: Callable[[], Awaitable[Any]]) -> Response:
        try:
            response = await call()
        except grpc.aio.AioRpcError as exc:
            return error_response(from_rpc_error(exc), rid=setup.rid)
        return message_response(response, rid=setup.rid)

    # -- turns (SSE) --------------------------------------------------------------------

    async def converse(self, request: Request) -> Response:
        """POST /v1/sessions/{session_id}/turns: one turn, streamed as SSE."""
        setup = self._setup(request)
        values = await self._json_body(request)
        message = json_mapping.to_message(
            values, pb.ConverseRequest, from_path={"session_id": request.path_params["session_id"]}
        )
        call = self._client.converse(message, metadata=setup.metadata, timeout_s=setup.timeout_s)
        return EventStream(call, rid=setup.rid, called_at=time.perf_counter())

    async def confirm(self, request: Request) -> Response:
        """POST /v1/sessions/{session_id}/confirmations: confirm or decline, streamed as SSE."""
        setup = self._setup(request)
        values = await self._json_body(request)
        message = json_mapping.to_message(
            values,
            pb.ConfirmActionRequest,
            from_path={"session_id": request.path_params["session_id"]},
        )
        call = self._client.confirm_action(
            message, metadata=setup.metadata, timeout_s=setup.timeout_s
        )
        return EventStream(call, rid=setup.rid, called_at=time.perf_counter())

    # -- reads (JSON) -------------------------------------------------------------------

    async def get_session(self, request: Request) -> Response:
        """GET /v1/sessions/{session_id}?userId=..."""
        setup = self._setup(request)
        values = json_mapping.from_query(
            request.query_params, pb.GetSessionRequest, allowed=("user_id",)
        )
        message = json_mapping.to_message(
            values,
            pb.GetSessionRequest,
            from_path={"session_id": request.path_params["session_id"]},
        )
        return await self._unary(
            setup,
            lambda: self._client.get_session(
                message, metadata=setup.metadata, timeout_s=setup.timeout_s
            ),
        )

    async def customer_context(self, request: Request) -> Response:
        """GET /v1/customers/{user_id}/context."""
        setup = self._setup(request)
        json_mapping.from_query(request.query_params, pb.GetCustomerContextRequest, allowed=())
        message = json_mapping.to_message(
            {}, pb.GetCustomerContextRequest, from_path={"user_id": request.path_params["user_id"]}
        )
        return await self._unary(
            setup,
            lambda: self._client.get_customer_context(
                message, metadata=setup.metadata, timeout_s=setup.timeout_s
            ),
        )

    async def list_customers(self, request: Request) -> Response:
        """GET /v1/customers?pageSize=&pageToken=."""
        setup = self._setup(request)
        values = json_mapping.from_query(
            request.query_params, pb.ListCustomersRequest, allowed=("page_size", "page_token")
        )
        message = json_mapping.to_message(values, pb.ListCustomersRequest)
        return await self._unary(
            setup,
            lambda: self._client.list_customers(
                message, metadata=setup.metadata, timeout_s=setup.timeout_s
            ),
        )

    # -- the agents' queue ---------------------------------------------------------------

    async def list_tickets(self, request: Request) -> Response:
        """GET /v1/tickets?state=&pageSize=&pageToken=."""
        setup = self._setup(request)
        values = json_mapping.from_query(
            request.query_params,
            pb.ListTicketsRequest,
            allowed=("state", "page_size", "page_token"),
        )
        message = json_mapping.to_message(values, pb.ListTicketsRequest)
        return await self._unary(
            setup,
            lambda: self._client.list_tickets(
                message, metadata=setup.metadata, timeout_s=setup.timeout_s
            ),
        )

    async def claim_ticket(self, request: Request) -> Response:
        """POST /v1/tickets/{ticket_id}/claim {agentId}."""
        return await self._ticket_change(request, pb.ClaimTicketRequest, self._client.claim_ticket)

    async def resolve_ticket(self, request: Request) -> Response:
        """POST /v1/tickets/{ticket_id}/resolve {agentId, resolution}."""
        return await self._ticket_change(
            request, pb.ResolveTicketRequest, self._client.resolve_ticket
        )

    async def _ticket_change(
        self,
        request: Request,
        message_type: type[Message],
        call: Callable[..., Awaitable[Message]],
    ) -> Response:
        """The JSON body and the path's ticket id as ``message_type``, sent with ``call``."""
        setup = self._setup(request)
        message = json_mapping.to_message(
            await self._json_body(request),
            message_type,
            from_path={"ticket_id": request.path_params["ticket_id"]},
        )
        return await self._unary(
            setup, lambda: call(message, metadata=setup.metadata, timeout_s=setup.timeout_s)
        )

    # -- the edge itself ----------------------------------------------------------------

    async def demo_token(self, request: Request) -> Response:
        """POST /v1/demo-token {userId}: a 15-minute end-user token (loopback clients only)."""
        rid = forwarding.request_id(request.headers)
        context.request_id.set(rid)
        signer, demo = demo_token.check_caller(request, signer=self._signer, demo=self._demo)
        payload = demo_token.issue(
            await self._json_body(request), request, signer=signer, demo=demo
        )
        return json_response(
            payload, headers={"cache-control": "no-store", context.REQUEST_ID_HEADER: rid}
        )

    async def healthz(self, _request: Request) -> Response:
        """GET /healthz: 200 when the gateway is SERVING, else 503; says if demo keys are on."""
        gateway = await self._client.health(timeout_s=HEALTH_TIMEOUT_S)
        serving = gateway == "SERVING"
        demo: dict[str, Any] = {
            "enabled": self._demo is not None,
            "tenants": [],
            "tokens": self._demo is not None and self._signer is not None,
        }
        if self._demo is not None:
            demo["tenants"] = self._demo.tenants
            demo["default_tenant"] = self._demo.tenants[0]
        payload = {
            "status": "SERVING" if serving else "NOT_SERVING",
            "gateway": gateway,
            "demo_credentials": demo,
        }
        return json_response(
            payload, status=200 if serving else 503, headers={"cache-control": "no-store"}
        )

    async def openapi(self, _request: Request) -> Response:
        """GET /openapi.json."""
        return json_response(self._openapi)

    async def page(self, _request: Request) -> Response:
        """GET /: the chat page."""
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    # -- the ops page (embedded default, this machine only) ------------------------------

    async def ops_page(self, request: Request) -> Response:
        """GET /ops: the ops page (its figures come from GET /v1/ops/summary)."""
        context.request_id.set(forwarding.request_id(request.headers))
        ops.check_caller(request, self._settings)
        return FileResponse(STATIC_DIR / "ops.html", headers=PAGE_HEADERS)

    async def ops_summary(self, request: Request) -> Response:
        """GET /v1/ops/summary?days=&tenant=: costs, escalations, latency, confidence, caches."""
        rid = forwarding.request_id(request.headers)
        context.request_id.set(rid)
        ops.check_caller(request, self._settings)
        query = ops.parse_query(
            request.query_params.multi_items(), tenants=self._settings.ops_tenants
        )
        assert self._board is not None  # ops on: create_app made one
        return json_response(
            await self._board.summary(query),
            headers={"cache-control": "no-store", context.REQUEST_ID_HEADER: rid},
        )


def refuse(error: EdgeError) -> Response:
    """The response for a request the edge refuses itself."""
    return error_response(error.to_http(), rid=context.request_id.get() or None)
