"""The OpenAPI document: every path, resolvable schemas that match what the edge sends."""

from __future__ import annotations

import re
from typing import Any

import grpc
import httpx
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from starlette.routing import Mount, Route
from waybill.common.v1 import conversation_pb2, customer_pb2, events_pb2, money_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.edge import json_mapping, openapi, sse
from gateway.edge.app import routes
from gateway.edge.errors import HTTP_STATUS, EdgeError
from tests.gateway.edge.conftest import StartEdge

DOC = openapi.document()
SCHEMAS = DOC["components"]["schemas"]


def _resolve(ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/"), ref
    node: Any = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    result: dict[str, Any] = node
    return result


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """A small JSON Schema check (the keywords the edge's schemas use)."""
    if "$ref" in schema:
        validate(value, _resolve(schema["$ref"]), where)
        return
    for sub in schema.get("allOf", []):
        validate(value, sub, where)
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in enum"
    kind = schema.get("type")
    checks: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": (int, float),
    }
    if kind is not None:
        assert isinstance(value, checks[kind]), f"{where}: {value!r} is not {kind}"
        if kind in {"integer", "number"}:
            assert not isinstance(value, bool), where
    if isinstance(value, str) and "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        for key, item in value.items():
            if key in properties:
                validate(item, properties[key], f"{where}.{key}")
            else:
                extra = schema.get("additionalProperties", True)
                assert extra is not False, f"{where}: unexpected property {key!r}"
                if isinstance(extra, dict):
                    validate(item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")


class _AnyHandler:
    """Stands in for Handlers: every endpoint is a no-op (only the routes matter here)."""

    def __getattr__(self, _name: str) -> Any:
        async def endpoint(_request: Any) -> None:
            return None

        return endpoint


def test_every_route_is_documented() -> None:
    served = set()
    for route in routes(_AnyHandler()):  # type: ignore[arg-type]
        if isinstance(route, Mount):
            served.add(route.path + "/{file}")
        else:
            assert isinstance(route, Route)
            served.add(route.path)
            for method in route.methods or ():
                if method != "HEAD":
                    assert method.lower() in DOC["paths"][route.path], (route.path, method)
    assert served == set(DOC["paths"])


def test_every_reference_resolves() -> None:
    refs = _refs(DOC)
    assert refs
    for ref in refs:
        _resolve(ref)


def test_sse_events_cover_every_gateway_event() -> None:
    for path in ("/v1/sessions/{session_id}/turns", "/v1/sessions/{session_id}/confirmations"):
        media = DOC["paths"][path]["post"]["responses"]["200"]["content"]["text/event-stream"]
        events = media["x-sse-events"]
        assert set(events) == {*sse.EVENT_NAMES.values(), sse.STATUS_ERROR_EVENT}
        assert events["turn_error"] == {"$ref": "#/components/schemas/waybill.common.v1.TurnError"}
        assert events["error"] == {"$ref": "#/components/schemas/ErrorResponse"}


def test_every_error_status_is_documented_with_the_error_body() -> None:
    responses = DOC["paths"]["/v1/sessions/{session_id}/turns"]["post"]["responses"]
    for status in set(HTTP_STATUS.values()) - {200}:
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "Retry-After" in responses["429"]["headers"]
    for status in (413, 415):
        assert str(status) in responses
    assert DOC["info"]["x-status-mapping"]["FAILED_PRECONDITION"] == 409


def test_contract_rules_come_from_the_descriptors() -> None:
    body = DOC["paths"]["/v1/sessions/{session_id}/turns"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "sessionId" not in schema["properties"]  # it is in the path
    assert schema["properties"]["message"] == {"type": "string", "minLength": 1, "maxLength": 4000}
    assert schema["properties"]["userId"]["pattern"] == "^[a-z0-9][a-z0-9_-]{2,63}$"
    confirm = DOC["paths"]["/v1/sessions/{session_id}/confirmations"]["post"]["requestBody"]
    confirm_schema = confirm["content"]["application/json"]["schema"]
    decision = confirm_schema["properties"]["decision"]
    assert decision["enum"] == ["DECISION_CONFIRM", "DECISION_DECLINE"]
    assert confirm_schema["properties"]["idempotencyKey"]["pattern"] == "^[A-Za-z0-9_-]{16,128}$"


def test_required_fields_are_the_ones_whose_rules_reject_the_default() -> None:
    def body(path: str) -> dict[str, Any]:
        request = DOC["paths"][path]["post"]["requestBody"]
        schema: dict[str, Any] = request["content"]["application/json"]["schema"]
        return schema

    assert body("/v1/sessions/{session_id}/turns")["required"] == ["userId", "message"]
    assert body("/v1/sessions/{session_id}/confirmations")["required"] == [
        "userId",
        "actionId",
        "decision",
        "idempotencyKey",
    ]


def test_parameters_carry_the_contract_rules() -> None:
    def params(path: str, method: str) -> dict[str, dict[str, Any]]:
        found = {}
        for p in DOC["paths"][path][method]["parameters"]:
            resolved = _resolve(p["$ref"]) if "$ref" in p else p
            found[resolved["name"]] = resolved
        return found

    session = params("/v1/sessions/{session_id}", "get")
    assert session["userId"]["required"] is True
    assert session["userId"]["schema"]["pattern"] == "^[a-z0-9][a-z0-9_-]{2,63}$"
    assert session["session_id"]["schema"]["pattern"] == "^[A-Za-z0-9_-]{8,64}$"
    listing = params("/v1/customers", "get")
    assert listing["pageSize"]["required"] is False
    assert (listing["pageSize"]["schema"]["minimum"], listing["pageSize"]["schema"]["maximum"]) == (
        0,
        100,
    )
    assert listing["pageToken"]["schema"]["maxLength"] == 64
    timeout = listing["X-Request-Timeout"]["schema"]
    assert timeout["type"] == "string"
    for accepted in ("0.1", "2", "30.5", "99999.999"):
        assert re.fullmatch(timeout["pattern"], accepted), accepted
    for refused in ("0", "0.05", "5e-324", "1e3", "-1", "100000", "nan", "1.2345"):
        assert not re.fullmatch(timeout["pattern"], refused), refused


def _samples() -> list[Message]:
    action = conversation_pb2.PendingAction(
        action_id="act_0123456789abcdef",
        kind=conversation_pb2.ACTION_KIND_REFUND,
        order_id="ORD-20260001",
        amount=money_pb2.Money(currency_code="USD", minor_units=1234),
        summary="Refund?",
    )
    action.expire_time.GetCurrentTime()
    call = events_pb2.ToolCall(
        name="get_order_status", outcome=events_pb2.STATUS_CODE_OK, duration_us=3100
    )
    call.arguments.update({"awb": "WB0000000001", "n": 2})
    final = pb.Final(answer="done", request_id="r1")
    final.usage.generations.add(backend="composer", model="m", input_tokens=3)
    context = customer_pb2.HydratedContext(region="US", block="b")
    context.active_orders.add(order_id="ORD-20260001", awb="WB0000000001", title="Lamp")
    context.active_orders[0].eta.GetCurrentTime()
    return [
        events_pb2.TextDelta(text="hi"),
        call,
        events_pb2.ConfirmationRequest(action=action),
        events_pb2.Escalation(ticket_id="T-1", queue="refunds", reason="r"),
        events_pb2.Refusal(reason=events_pb2.REFUSAL_REASON_OUT_OF_SCOPE, message="no"),
        events_pb2.TurnError(
            code=events_pb2.STATUS_CODE_UNAVAILABLE, reason="X", message="m", retryable=True
        ),
        final,
        pb.GetCustomerContextResponse(context=context),
        pb.ListCustomersResponse(customers=[pb.CustomerSummary(user_id="acme-0001")]),
    ]


def test_what_the_edge_sends_matches_the_derived_schemas() -> None:
    for message in _samples():
        schema = {"$ref": "#/components/schemas/" + message.DESCRIPTOR.full_name}
        validate(json_mapping.to_dict(message), schema, message.DESCRIPTOR.name)


def test_error_bodies_match_the_error_schema() -> None:
    refused = EdgeError(413, grpc.StatusCode.INVALID_ARGUMENT, "big", reason="BODY_TOO_LARGE")
    validate(refused.to_http().body(), SCHEMAS["ErrorResponse"])
    assert error_details_pb2.ErrorInfo.DESCRIPTOR.full_name in SCHEMAS


async def test_served_document_is_the_same(start_edge: StartEdge, http: httpx.AsyncClient) -> None:
    edge = await start_edge()
    response = await http.get(edge.url + "/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOC
    health = await http.get(edge.url + "/healthz")
    validate(health.json(), SCHEMAS["Health"])
