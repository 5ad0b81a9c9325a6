"""The OpenAPI document of the edge, with schemas derived from the proto descriptors."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2
from waybill.common.v1 import events_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.edge import deadline, ops, sse
from gateway.edge.deadline import TIMEOUT_HEADER
from gateway.edge.demo import DEMO_TENANT_HEADER
from gateway.edge.errors import HTTP_STATUS
from gateway.edge.schemas import REF_PREFIX, SchemaSet, required_fields

ERROR_SCHEMA = "ErrorResponse"
HEALTH_SCHEMA = "Health"
# Schema names, not secrets.
DEMO_TOKEN_SCHEMA = "DemoToken"  # noqa: S105
DEMO_TOKEN_REQUEST_SCHEMA = "DemoTokenRequest"  # noqa: S105
OPS_SUMMARY_SCHEMA = "OpsSummary"

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
_READ_ERRORS = (400, 401, 403, 404, 409, 429, 499, 500, 501, 503, 504)


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
                    "tokens": {
                        "type": "boolean",
                        "description": "Whether POST /v1/demo-token issues end-user tokens.",
                    },
                },
            },
        },
    }


def _demo_token_schemas() -> dict[str, Any]:
    return {
        DEMO_TOKEN_REQUEST_SCHEMA: {
            "type": "object",
            "required": ["userId"],
            "additionalProperties": False,
            "properties": {
                "userId": {
                    "type": "string",
                    "pattern": "^[a-z0-9][a-z0-9_-]{2,63}$",
                    "description": "The customer the token acts as.",
                }
            },
        },
        DEMO_TOKEN_SCHEMA: {
            "type": "object",
            "required": ["token", "tokenType", "expiresIn", "expireTime", "tenant", "userId"],
            "properties": {
                "token": {"type": "string", "description": "A JWT: send `Authorization: Bearer`."},
                "tokenType": {"type": "string", "const": "Bearer"},
                "expiresIn": {"type": "integer", "description": "Seconds it is valid."},
                "expireTime": {"type": "string", "format": "date-time"},
                "tenant": {"type": "string"},
                "userId": {"type": "string"},
            },
        },
    }


def _ops_summary_schema() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    named_counts = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["reason", "count"],
            "properties": {"reason": {"type": "string"}, "count": count},
        },
    }
    millis = {"type": ["number", "null"], "minimum": 0}
    return {
        "type": "object",
        "description": "The ops page's figures. Costs from the ledger's cost report by team and"
        " UTC day; the rest from the services' Prometheus metrics, counted since each"
        " service started. A source that failed is listed with its problem and its figures"
        " are empty, never estimated.",
        "required": [
            "generatedAt",
            "window",
            "sources",
            "cost",
            "escalation",
            "latency",
            "routerConfidence",
            "caches",
        ],
        "properties": {
            "generatedAt": {"type": "string", "format": "date-time"},
            "window": {
                "type": "object",
                "required": ["days", "firstDay", "lastDay"],
                "properties": {
                    "days": {"type": "integer", "minimum": 1, "maximum": ops.MAX_DAYS},
                    "firstDay": {"type": "string", "format": "date"},
                    "lastDay": {"type": "string", "format": "date"},
                },
            },
            "sources": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "ok"],
                    "properties": {
                        "name": {"type": "string"},
                        "ok": {"type": "boolean"},
                        "problem": {"type": "string"},
                        "startTime": {"type": "string", "format": "date-time"},
                    },
                },
            },
            "cost": {
                "type": "object",
                "required": ["ok", "tenants", "days", "series"],
                "properties": {
                    "ok": {"type": "boolean"},
                    "tenants": {"type": "array", "items": {"type": "string"}},
                    "days": {"type": "array", "items": {"type": "string", "format": "date"}},
                    "series": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["tenant", "team", "currency", "costMicros", "requests"],
                            "properties": {
                                "tenant": {"type": "string"},
                                "team": {"type": "string"},
                                "currency": {"type": "string"},
                                "costMicros": {"type": "array", "items": count},
                                "requests": {"type": "array", "items": count},
                            },
                        },
                    },
                },
            },
            "escalation": {
                "type": "object",
                "required": ["turns", "escalated", "rate", "byReason"],
                "properties": {
                    "turns": count,
                    "escalated": count,
                    "rate": {"type": ["number", "null"], "minimum": 0},
                    "byReason": named_counts,
                },
            },
            "latency": {
                "type": "object",
                "required": ["quantiles", "rows"],
                "properties": {
                    "quantiles": {"type": "array", "items": {"type": "number"}},
                    "rows": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["service", "method", "count", "p50Ms", "p95Ms", "p99Ms"],
                            "properties": {
                                "service": {"type": "string"},
                                "method": {"type": "string"},
                                "count": count,
                                "p50Ms": millis,
                                "p95Ms": millis,
                                "p99Ms": millis,
                            },
                        },
                    },
                },
            },
            "routerConfidence": {
                "type": "object",
                "required": ["count", "median", "buckets", "lowConfidence"],
                "properties": {
                    "count": count,
                    "median": {"type": ["number", "null"]},
                    "buckets": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["upTo", "count"],
                            "properties": {"upTo": {"type": ["number", "null"]}, "count": count},
                        },
                    },
                    "lowConfidence": named_counts,
                },
            },
            "caches": {
                "type": "object",
                "required": ["state", "message", "caches"],
                "properties": {
                    "state": {"type": "string", "enum": ["ok", "empty"]},
                    "message": {"type": "string"},
                    "caches": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "hits", "misses", "hitRatio"],
                            "properties": {
                                "name": {"type": "string"},
                                "hits": count,
                                "misses": count,
                                "hitRatio": {"type": "number", "minimum": 0, "maximum": 1},
                            },
                        },
                    },
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


def _sse_item(events: dict[str, Any]) -> dict[str, Any]:
    """One event of the stream as OpenAPI 3.2 reads it: its name and its JSON data."""
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": name},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": schema,
                    },
                },
            }
            for name, schema in events.items()
        ]
    }


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
                "itemSchema": _sse_item(events),
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
            "description": "Seconds the caller will wait, in decimal (at most three"
            f" decimals, from {deadline.MIN_TIMEOUT_S:g} to {deadline.MAX_ACCEPTED_TIMEOUT_S:g});"
            " becomes the gRPC deadline (minus a 5 ms margin). Default 30; values above 120"
            " are lowered to 120; anything else is a 400 naming the header.",
            # A string with a pattern rather than a number: the pattern is the
            # whole rule (no exponent, range included), checked by the edge as is.
            "schema": {"type": "string", "pattern": deadline.TIMEOUT_PATTERN},
            "x-header": TIMEOUT_HEADER,
        },
        "RequestId": {
            "name": "X-Request-Id",
            "in": "header",
            "required": False,
            "description": "Correlation id, passed on and returned in the response header of"
            " the same name when it matches [A-Za-z0-9._-]{1,64}; absent or any other value:"
            " a fresh one is generated (never a refusal).",
            "schema": {"type": "string"},
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
    }


def _from_field(schemas: SchemaSet, message: Any, field: str, *, where: str) -> dict[str, Any]:
    """A path or query parameter whose schema and presence are the request field's rules.

    Path parameters keep the proto name of the route template; query parameters
    use the JSON name (the proto name is accepted too).
    """
    descriptor = message.DESCRIPTOR
    parameter: dict[str, Any] = {
        "name": field if where == "path" else descriptor.fields_by_name[field].json_name,
        "in": where,
        "required": where == "path" or field in required_fields(descriptor),
        "schema": schemas.field(descriptor, field),
        "x-proto-field": f"{descriptor.full_name}.{field}",
    }
    return parameter


def _common() -> list[dict[str, str]]:
    return [
        {"$ref": "#/components/parameters/RequestTimeout"},
        {"$ref": "#/components/parameters/RequestId"},
        {"$ref": "#/components/parameters/DemoTenant"},
    ]


def _paths(schemas: SchemaSet) -> dict[str, Any]:
    # Which fields a body must carry comes from the contract's rules (SchemaSet).
    converse_body = schemas.message(pb.ConverseRequest.DESCRIPTOR, omit=("session_id",))
    confirm_body = schemas.message(pb.ConfirmActionRequest.DESCRIPTOR, omit=("session_id",))
    claim_body = schemas.message(pb.ClaimTicketRequest.DESCRIPTOR, omit=("ticket_id",))
    resolve_body = schemas.message(pb.ResolveTicketRequest.DESCRIPTOR, omit=("ticket_id",))
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
        "/ops": {
            "get": {
                "operationId": "opsPage",
                "summary": "The ops page (HTML; its script and style under /static/): embedded"
                " default only, shown only to clients on this machine (403 otherwise, 404 when"
                " the ops page is off).",
                "parameters": [{"$ref": "#/components/parameters/RequestId"}],
                "responses": {
                    "200": {"description": "The page.", "content": {"text/html": {}}},
                    **_errors((403, 404)),
                },
                "security": [{}],
            }
        },
        "/v1/ops/summary": {
            "get": {
                "operationId": "opsSummary",
                "summary": "The ops page's figures: cost per team and day (ledger), escalation"
                " rate, latency percentiles, router confidence and cache hits (the services'"
                " Prometheus metrics). Embedded default only, for clients on this machine.",
                "parameters": [
                    {"$ref": "#/components/parameters/RequestId"},
                    {
                        "name": "days",
                        "in": "query",
                        "required": False,
                        "description": f"UTC days of costs, ending today (default"
                        f" {ops.DEFAULT_DAYS}).",
                        "schema": {
                            "type": "string",
                            "pattern": "^0*([1-9]|[12][0-9]|3[01])$",
                        },
                    },
                    {
                        "name": "tenant",
                        "in": "query",
                        "required": False,
                        "description": "One tenant's costs only (one of the tenants the edge"
                        " reports; 400 otherwise). Default: all of them.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json({"$ref": REF_PREFIX + OPS_SUMMARY_SCHEMA}, "The figures."),
                    **_errors((400, 403, 404, 500)),
                },
                "security": [{}],
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.2."}},
            }
        },
        "/v1/demo-token": {
            "post": {
                "operationId": "demoToken",
                "summary": "A 15-minute end-user token (JWT) for one demo customer of the demo"
                " tenant (X-Waybill-Demo-Tenant): embedded default only, answered only to"
                " clients on this machine (403 otherwise, 404 when demo tokens are off). With"
                " it the gateway lets the caller act as that customer only.",
                "parameters": [
                    {"$ref": "#/components/parameters/RequestId"},
                    {"$ref": "#/components/parameters/DemoTenant"},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": REF_PREFIX + DEMO_TOKEN_REQUEST_SCHEMA}
                        }
                    },
                },
                "responses": {
                    "200": _json({"$ref": REF_PREFIX + DEMO_TOKEN_SCHEMA}, "The token."),
                    **_errors((400, 403, 404, 413, 415, 500)),
                },
                "security": [{}],
            }
        },
        "/v1/sessions/{session_id}/turns": {
            "post": {
                "operationId": "converse",
                "summary": "Run one conversation turn (GatewayService.Converse), streamed.",
                "parameters": [
                    _from_field(schemas, pb.ConverseRequest, "session_id", where="path"),
                    *_common(),
                ],
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
                "parameters": [
                    _from_field(schemas, pb.ConfirmActionRequest, "session_id", where="path"),
                    *_common(),
                ],
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
                    _from_field(schemas, pb.GetSessionRequest, "session_id", where="path"),
                    {
                        **_from_field(schemas, pb.GetSessionRequest, "user_id", where="query"),
                        "description": "The customer who owns it (user_id also accepted).",
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
                    _from_field(schemas, pb.ListCustomersRequest, "page_size", where="query"),
                    _from_field(schemas, pb.ListCustomersRequest, "page_token", where="query"),
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
                "parameters": [
                    _from_field(schemas, pb.GetCustomerContextRequest, "user_id", where="path"),
                    *_common(),
                ],
                "responses": {
                    "200": _json(
                        schemas.ref(pb.GetCustomerContextResponse.DESCRIPTOR), "The context."
                    ),
                    **_errors(_READ_ERRORS),
                },
            }
        },
        "/v1/tickets": {
            "get": {
                "operationId": "listTickets",
                "summary": "The agents' queue of hand-over tickets, most urgent first"
                " (GatewayService.ListTickets).",
                "parameters": [
                    _from_field(schemas, pb.ListTicketsRequest, name, where="query")
                    for name in ("state", "page_size", "page_token")
                ]
                + _common(),
                "responses": {
                    "200": _json(schemas.ref(pb.ListTicketsResponse.DESCRIPTOR), "One page."),
                    **_errors(_READ_ERRORS),
                },
            }
        },
        "/v1/tickets/{ticket_id}/claim": {
            "post": {
                "operationId": "claimTicket",
                "summary": "An agent takes a ticket; the conversation is handed over"
                " (GatewayService.ClaimTicket). 409 when another agent has it.",
                "parameters": [
                    _from_field(schemas, pb.ClaimTicketRequest, "ticket_id", where="path"),
                    *_common(),
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": claim_body}},
                },
                "responses": {
                    "200": _json(schemas.ref(pb.ClaimTicketResponse.DESCRIPTOR), "Claimed."),
                    **_errors(_BODY_ERRORS),
                },
            }
        },
        "/v1/tickets/{ticket_id}/resolve": {
            "post": {
                "operationId": "resolveTicket",
                "summary": "The agent who claimed a ticket resolves it"
                " (GatewayService.ResolveTicket).",
                "parameters": [
                    _from_field(schemas, pb.ResolveTicketRequest, "ticket_id", where="path"),
                    *_common(),
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": resolve_body}},
                },
                "responses": {
                    "200": _json(schemas.ref(pb.ResolveTicketResponse.DESCRIPTOR), "Resolved."),
                    **_errors(_BODY_ERRORS),
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.2 document (3.2: event streams are described per event)."""
    schemas = SchemaSet()
    paths = _paths(schemas)
    # Every TurnEvent payload, also the ones no path names directly.
    for message in (pb.TurnEvent, events_pb2.TurnError):
        schemas.ref(message.DESCRIPTOR)
    error = _error_schema(schemas)
    components_schemas = dict(sorted(schemas.components.items()))
    components_schemas[ERROR_SCHEMA] = error
    components_schemas[HEALTH_SCHEMA] = _health_schema()
    components_schemas.update(_demo_token_schemas())
    components_schemas[OPS_SUMMARY_SCHEMA] = _ops_summary_schema()
    return {
        "openapi": "3.2.0",
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
