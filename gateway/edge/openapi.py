"""The OpenAPI document of the edge, with schemas derived from the proto descriptors."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2
from waybill.common.v1 import events_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.edge import sse
from gateway.edge.deadline import TIMEOUT_HEADER
from gateway.edge.demo import DEMO_TENANT_HEADER
from gateway.edge.errors import HTTP_STATUS
from gateway.edge.schemas import REF_PREFIX, SchemaSet

ERROR_SCHEMA = "ErrorResponse"
HEALTH_SCHEMA = "Health"

# What each HTTP error status means here (which gRPC codes lead to it).
_ERROR_TEXT = {
    400: "Invalid request: malformed JSON, an unknown field, a field that breaks a contract"
    " rule (details carry a BadRequest naming the rule id), or an invalid header.",
    401: "No valid credential (UNAUTHENTICATED).",
    403: "The credential may not do this (PERMISSION_DENIED).",
    404: "No such customer, session or path (NOT_FOUND).",
    409: "The state forbids it now (FAILED_PRECONDITION), a conflict (ABORTED, ALREADY_EXISTS).",
    413: "The body is larger than the edge accepts.",
    415: "The body is not application/json (UTF-8).",
    429: "A rate limit or budget is exhausted (RESOURCE_EXHAUSTED); see Retry-After.",
    499: "The call was cancelled (CANCELLED).",
    500: "A bug (INTERNAL, UNKNOWN, DATA_LOSS).",
    501: "Not built yet (UNIMPLEMENTED).",
    503: "The gateway or a service behind it is unavailable (UNAVAILABLE); retryable.",
    504: "The X-Request-Timeout passed before the answer (DEADLINE_EXCEEDED).",
}
_BODY_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429, 499, 500, 501, 503, 504)
_READ_ERRORS = (400, 401, 403, 404, 429, 499, 500, 501, 503, 504)


def _error_schema(schemas: SchemaSet) -> dict[str, Any]:
    detail_refs = [
        schemas.ref(d.DESCRIPTOR)
        for d in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
            error_details_pb2.QuotaFailure,
        )
    ]
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status", "details"],
                "properties": {
                    "code": {"type": "integer", "description": "The HTTP status."},
                    "message": {"type": "string"},
                    "status": {
                        "type": "string",
                        "enum": [c.name for c in grpc.StatusCode],
                        "description": "The gRPC status code name.",
                    },
                    "details": {
                        "type": "array",
                        "description": "google.rpc details in proto3 JSON, each with its"
                        " @type: always one ErrorInfo; BadRequest for invalid fields;"
                        " RetryInfo when a retry may succeed later.",
                        "items": {
                            "type": "object",
                            "required": ["@type"],
                            "properties": {"@type": {"type": "string"}},
                            "additionalProperties": True,
                            "x-detail-types": detail_refs,
                        },
                    },
                },
            }
        },
    }


def _health_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status", "gateway", "demo_credentials"],
        "properties": {
            "status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]},
            "gateway": {
                "type": "string",
                "description": "The gateway's gRPC health: SERVING, NOT_SERVING,"
                " or UNREACHABLE: <code>.",
            },
            "demo_credentials": {
                "type": "object",
                "required": ["enabled", "tenants"],
                "description": "Whether requests without a credential act for a demo tenant"
                " (embedded default on loopback only). Keys are never shown.",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "tenants": {"type": "array", "items": {"type": "string"}},
                    "default_tenant": {"type": "string"},
                },
            },
        },
    }


def _errors(statuses: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": {"$ref": REF_PREFIX + ERROR_SCHEMA}}},
        }
        if status in (429, 503):
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait, from the RetryInfo detail (when sent).",
                    "schema": {"type": "integer", "minimum": 0},
                }
            }
        out[str(status)] = response
    return out


def _json(ref: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _sse_events(schemas: SchemaSet) -> dict[str, Any]:
    inner: dict[str, Any] = {}
    turn_event = pb.TurnEvent.DESCRIPTOR
    for field in turn_event.fields:
        inner[sse.EVENT_NAMES[field.name]] = schemas.ref(field.message_type)
    inner[sse.STATUS_ERROR_EVENT] = {"$ref": REF_PREFIX + ERROR_SCHEMA}
    return inner


def _stream(schemas: SchemaSet, summary: str) -> dict[str, Any]:
    events = _sse_events(schemas)
    names = ", ".join(events)
    return {
        "description": f"{summary} Server-Sent Events, one per gateway event: `event: <name>`"
        " and `data: <one line of proto3 JSON>`. Names and data schemas are in"
        f" x-sse-events ({names}). The last event is `final` or `refusal` when the turn"
        " completed; a failure after the stream started sends `turn_error` (the gateway's"
        " customer-facing error event) and then `error` with the error body, so a broken"
        " turn never ends looking complete. A call that fails before its first event is"
        " answered with its HTTP error status and the error body instead.",
        "headers": {
            "X-Request-Id": {"schema": {"type": "string"}},
            "Server-Timing": {
                "description": "edge-in: request to gateway call; edge-out: first gateway"
                " event to response start (milliseconds).",
                "schema": {"type": "string"},
            },
        },
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "x-sse-events": events,
            }
        },
    }


def _parameters() -> dict[str, Any]:
    return {
        "RequestTimeout": {
            "name": "X-Request-Timeout",
            "in": "header",
            "required": False,
            "description": "Seconds the caller will wait; becomes the gRPC deadline (minus a"
            " 5 ms margin). Default 30, larger values are lowered to 120.",
            "schema": {"type": "number", "exclusiveMinimum": 0},
            "x-header": TIMEOUT_HEADER,
        },
        "RequestId": {
            "name": "X-Request-Id",
            "in": "header",
            "required": False,
            "description": "Correlation id ([A-Za-z0-9._-]{1,64}); generated when absent and"
            " returned in the response header of the same name.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
        },
        "DemoTenant": {
            "name": "X-Waybill-Demo-Tenant",
            "in": "header",
            "required": False,
            "description": "With demo credentials on and no credential sent: the demo tenant"
            " to act for (see /healthz). Ignored otherwise.",
            "schema": {"type": "string"},
            "x-header": DEMO_TENANT_HEADER,
        },
        "SessionId": {
            "name": "session_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
        },
        "UserIdPath": {
            "name": "user_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{2,63}$"},
        },
    }


def _common() -> list[dict[str, str]]:
    return [
        {"$ref": "#/components/parameters/RequestTimeout"},
        {"$ref": "#/components/parameters/RequestId"},
        {"$ref": "#/components/parameters/DemoTenant"},
    ]


def _paths(schemas: SchemaSet) -> dict[str, Any]:
    converse_body = schemas.message(pb.ConverseRequest.DESCRIPTOR, omit=("session_id",))
    converse_body["required"] = ["userId", "message"]
    confirm_body = schemas.message(pb.ConfirmActionRequest.DESCRIPTOR, omit=("session_id",))
    confirm_body["required"] = ["userId", "actionId", "decision"]
    session = {"$ref": "#/components/parameters/SessionId"}
    return {
        "/": {
            "get": {
                "operationId": "chatPage",
                "summary": "The demo chat page (HTML; its script and style under /static/).",
                "responses": {"200": {"description": "The page.", "content": {"text/html": {}}}},
            }
        },
        "/static/{file}": {
            "get": {
                "operationId": "staticFile",
                "summary": "The page's script and style sheet.",
                "parameters": [
                    {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "The file."}, **_errors((404,))},
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "200 when the gateway is SERVING, else 503.",
                "responses": {
                    "200": _json({"$ref": REF_PREFIX + HEALTH_SCHEMA}, "Serving."),
                    "503": _json({"$ref": REF_PREFIX + HEALTH_SCHEMA}, "Not serving."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1."}},
            }
        },
        "/v1/sessions/{session_id}/turns": {
            "post": {
                "operationId": "converse",
                "summary": "Run one conversation turn (GatewayService.Converse), streamed.",
                "parameters": [session, *_common()],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": converse_body}},
                },
                "responses": {
                    "200": _stream(schemas, "The turn's events."),
                    **_errors(_BODY_ERRORS),
                },
            }
        },
        "/v1/sessions/{session_id}/confirmations": {
            "post": {
                "operationId": "confirmAction",
                "summary": "Confirm or decline the session's pending action"
                " (GatewayService.ConfirmAction), streamed.",
                "parameters": [session, *_common()],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": confirm_body}},
                },
                "responses": {
                    "200": _stream(schemas, "What follows the decision."),
                    **_errors(_BODY_ERRORS),
                },
            }
        },
        "/v1/sessions/{session_id}": {
            "get": {
                "operationId": "getSession",
                "summary": "Read a session (GatewayService.GetSession).",
                "parameters": [
                    session,
                    {
                        "name": "userId",
                        "in": "query",
                        "required": True,
                        "description": "The customer who owns it (user_id also accepted).",
                        "schema": {"type": "string"},
                    },
                    *_common(),
                ],
                "responses": {
                    "200": _json(schemas.ref(pb.GetSessionResponse.DESCRIPTOR), "The session."),
                    **_errors(_READ_ERRORS),
                },
            }
        },
        "/v1/customers": {
            "get": {
                "operationId": "listCustomers",
                "summary": "List the tenant's customers (GatewayService.ListCustomers).",
                "parameters": [
                    {
                        "name": "pageSize",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 100},
                    },
                    {
                        "name": "pageToken",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 64},
                    },
                    *_common(),
                ],
                "responses": {
                    "200": _json(schemas.ref(pb.ListCustomersResponse.DESCRIPTOR), "One page."),
                    **_errors(_READ_ERRORS),
                },
            }
        },
        "/v1/customers/{user_id}/context": {
            "get": {
                "operationId": "getCustomerContext",
                "summary": "A customer's tier, region and active orders"
                " (GatewayService.GetCustomerContext).",
                "parameters": [{"$ref": "#/components/parameters/UserIdPath"}, *_common()],
                "responses": {
                    "200": _json(
                        schemas.ref(pb.GetCustomerContextResponse.DESCRIPTOR), "The context."
                    ),
                    **_errors(_READ_ERRORS),
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    schemas = SchemaSet()
    paths = _paths(schemas)
    # Every TurnEvent payload, also the ones no path names directly.
    for message in (pb.TurnEvent, events_pb2.TurnError):
        schemas.ref(message.DESCRIPTOR)
    error = _error_schema(schemas)
    components_schemas = dict(sorted(schemas.components.items()))
    components_schemas[ERROR_SCHEMA] = error
    components_schemas[HEALTH_SCHEMA] = _health_schema()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Waybill REST edge",
            "version": "1.0.0",
            "description": "HTTP/JSON and Server-Sent Events in front of"
            " waybill.gateway.v1.GatewayService. Bodies use the proto3 JSON mapping of the"
            " gateway's messages. gRPC status maps to HTTP status as listed per response;"
            " every error has the body {error: {code, message, status, details}}.",
            "x-status-mapping": {code.name: status for code, status in HTTP_STATUS.items()},
        },
        "paths": paths,
        "components": {
            "schemas": components_schemas,
            "parameters": _parameters(),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
        # The empty requirement: with demo credentials on, no credential is needed.
        "security": [{"apiKey": []}, {"bearer": []}, {}],
    }
