"""Requests the edge refuses itself, and what it passes on: credential, deadline, ids."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from waybill.gateway.v1 import gateway_service_pb2 as pb

from runtime import credentials
from tests.gateway.edge.conftest import StartEdge, error_info, error_of, sse_events

TURN_PATH = "/v1/sessions/sess-0000001/turns"
GOOD = {"userId": "acme-0001", "message": "where is my order?"}


# -- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason", "status"),
    [
        (b'{"userId": "acme-0001", "message": ', "MALFORMED_JSON", 400),
        (b"\xff\xfe{}", "MALFORMED_JSON", 400),
        (b'["a", "list"]', "MALFORMED_JSON", 400),
        (b'{"userId": "acme-0001", "message": "hi", "colour": "red"}', "INVALID_JSON_FIELD", 400),
        (b'{"userId": 7, "message": "hi"}', "INVALID_JSON_FIELD", 400),
        (
            b'{"userId": "acme-0001", "message": "hi", "sessionId": "other-00001"}',
            "FIELD_CONFLICT",
            400,
        ),
    ],
)
async def test_bad_bodies_are_400_with_the_error_body(
    content: bytes, reason: str, status: int, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(
        edge.url + TURN_PATH, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error_info(error)["reason"] == reason
    assert error_info(error)["domain"] == "edge.waybill"
    assert not edge.gateway.calls, "a refused request must not reach the gateway"


async def test_the_same_session_id_in_body_and_path_is_fine(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(edge.url + TURN_PATH, json={**GOOD, "session_id": "sess-0000001"})
    assert response.status_code == 200
    assert [n for n, _ in sse_events(response.text)] == ["delta", "final"]
    request = edge.gateway.last("Converse").request
    assert isinstance(request, pb.ConverseRequest)
    assert (request.session_id, request.user_id, request.message) == (
        "sess-0000001",
        "acme-0001",
        "where is my order?",
    )


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_wrong_content_types_are_415(
    content_type: str | None, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    headers = {} if content_type is None else {"content-type": content_type}
    response = await http.post(edge.url + TURN_PATH, content=b'{"a": 1}', headers=headers)
    assert response.status_code == 415
    error = error_of(response)
    assert error_info(error)["reason"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_json_with_utf8_charset_is_accepted(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(
        edge.url + TURN_PATH,
        content=b'{"userId": "acme-0001", "message": "hi"}',
        headers={"content-type": "Application/JSON; charset=UTF-8"},
    )
    assert response.status_code == 200


async def test_oversize_body_with_content_length_is_413(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge(max_body_bytes=2048)
    response = await http.post(edge.url + TURN_PATH, json={**GOOD, "message": "x" * 5000})
    assert response.status_code == 413
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error_info(error)["reason"] == "BODY_TOO_LARGE"
    assert error_info(error)["metadata"] == {"max_bytes": "2048"}


async def test_oversize_chunked_body_is_413(start_edge: StartEdge, http: httpx.AsyncClient) -> None:
    edge = await start_edge(max_body_bytes=2048)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"userId": "acme-0001", "message": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    response = await http.post(
        edge.url + TURN_PATH, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert error_info(error_of(response))["reason"] == "BODY_TOO_LARGE"


# -- paths, methods, query, headers ------------------------------------------------------


async def test_unknown_path_and_method(start_edge: StartEdge, http: httpx.AsyncClient) -> None:
    edge = await start_edge()
    missing = await http.get(edge.url + "/v1/nothing-here")
    assert missing.status_code == 404
    assert error_info(error_of(missing))["reason"] == "NO_ROUTE"
    wrong = await http.delete(edge.url + TURN_PATH)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert error_info(error_of(wrong))["reason"] == "METHOD_NOT_ALLOWED"
    static = await http.get(edge.url + "/static/nope.js")
    assert static.status_code == 404
    error_of(static)


async def test_query_parameters_map_to_the_request(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    ok = await http.get(edge.url + "/v1/customers", params={"page_size": "5", "pageToken": "tok"})
    assert ok.status_code == 200
    body = ok.json()
    assert [c["userId"] for c in body["customers"]] == ["acme-0001", "acme-0002"]
    assert body["nextPageToken"] == ""  # every field printed, defaults included
    request = edge.gateway.last("ListCustomers").request
    assert isinstance(request, pb.ListCustomersRequest)
    assert (request.page_size, request.page_token) == (5, "tok")
    unknown = await http.get(edge.url + "/v1/customers", params={"limit": "5"})
    assert unknown.status_code == 400
    assert error_info(error_of(unknown))["reason"] == "UNKNOWN_QUERY_PARAMETER"
    bad = await http.get(edge.url + "/v1/customers", params={"pageSize": "many"})
    assert bad.status_code == 400
    assert error_info(error_of(bad))["reason"] == "INVALID_JSON_FIELD"
    out_of_range = await http.get(edge.url + "/v1/customers", params={"pageSize": "500"})
    assert out_of_range.status_code == 400  # the contract's rule, enforced by the gateway
    assert error_info(error_of(out_of_range))["reason"] == "VALIDATION_FAILED"


async def test_customer_context_is_proto3_json(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.get(edge.url + "/v1/customers/acme-0001/context")
    assert response.status_code == 200
    order = response.json()["context"]["activeOrders"][0]
    assert order["status"] == "SHIPMENT_STATUS_OUT_FOR_DELIVERY"
    assert order["orderId"] == "ORD-20260001"


@pytest.mark.parametrize(
    "value",
    [
        "soon",
        "-1",
        "0",
        "nan",
        "inf",
        "",
        "5e-324",  # positive, but no call can finish in it
        "0.05",
        "1e3",  # float() reads it; the documented grammar has no exponent
        "+5",
        "1_000",
        "2.0005",
        "100000",  # above the accepted ceiling, not merely lowered
        "9" * 400,
    ],
)
async def test_invalid_timeout_header_is_400_naming_the_header(
    value: str, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(
        edge.url + TURN_PATH, json=GOOD, headers={"x-request-timeout": value}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error_info(error)["reason"] == "INVALID_TIMEOUT"
    assert str(error["message"]).startswith("X-Request-Timeout must be")
    bad = [d for d in error["details"] if d["@type"].endswith("BadRequest")]  # type: ignore[attr-defined]
    assert bad[0]["fieldViolations"][0]["field"] == "X-Request-Timeout"
    assert not edge.gateway.calls


# -- what reaches the gateway -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "sent", "bound"),
    [
        ("2", 2.0, 1.5),
        (None, 30.0, 25.0),
        ("1000", 120.0, 100.0),
        ("99999.999", 120.0, 100.0),
        ("0.25", 0.25, 0.1),
    ],
)
async def test_http_timeout_becomes_the_grpc_deadline(
    header: str | None,
    sent: float,
    bound: float,
    start_edge: StartEdge,
    http: httpx.AsyncClient,
) -> None:
    edge = await start_edge()
    headers = {} if header is None else {"x-request-timeout": header}
    response = await http.post(edge.url + TURN_PATH, json=GOOD, headers=headers)
    assert response.status_code == 200
    remaining = edge.gateway.last("Converse").time_remaining
    assert remaining is not None
    # The default 30 s, the caller's 2 s, or the 120 s maximum, less the 5 ms margin.
    assert bound < remaining < sent - 0.004


async def test_expired_timeout_is_504(start_edge: StartEdge, http: httpx.AsyncClient) -> None:
    edge = await start_edge()
    response = await http.post(
        edge.url + TURN_PATH,
        json={**GOOD, "message": "slow:3"},
        headers={"x-request-timeout": "0.3"},
    )
    assert response.status_code == 504
    assert error_of(response)["status"] == "DEADLINE_EXCEEDED"
    await _until(lambda: edge.gateway.cancelled == ["Converse"])


async def test_credentials_are_forwarded_as_sent(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    await http.post(edge.url + TURN_PATH, json=GOOD, headers={"x-api-key": "wb_key_1"})
    assert edge.gateway.last("Converse").metadata["x-api-key"] == "wb_key_1"
    await http.post(edge.url + TURN_PATH, json=GOOD, headers={"authorization": "Bearer abc.def"})
    seen = edge.gateway.last("Converse").metadata
    assert seen["authorization"] == "Bearer abc.def"
    assert "x-api-key" not in seen
    await http.post(edge.url + TURN_PATH, json=GOOD)
    seen = edge.gateway.last("Converse").metadata
    assert "x-api-key" not in seen, "without demo credentials nothing is added"
    assert "authorization" not in seen
    bad = await http.post(
        edge.url + TURN_PATH, json=GOOD, headers=[(b"x-api-key", "caf\u00e9".encode())]
    )
    assert bad.status_code == 401
    assert error_info(error_of(bad))["reason"] == "MALFORMED_CREDENTIAL"


async def test_demo_credentials_stand_in_only_without_a_credential(
    start_edge: StartEdge, http: httpx.AsyncClient, demo_file: Path
) -> None:
    edge = await start_edge(demo=demo_file)
    acme = credentials.key_for(demo_file, "acme-retail")
    globex = credentials.key_for(demo_file, "globex-home")
    await http.post(edge.url + TURN_PATH, json=GOOD)
    assert edge.gateway.last("Converse").metadata["x-api-key"] == acme
    await http.post(
        edge.url + TURN_PATH, json=GOOD, headers={"x-waybill-demo-tenant": "globex-home"}
    )
    assert edge.gateway.last("Converse").metadata["x-api-key"] == globex
    await http.post(edge.url + TURN_PATH, json=GOOD, headers={"x-api-key": "mine"})
    assert edge.gateway.last("Converse").metadata["x-api-key"] == "mine"
    unknown = await http.post(
        edge.url + TURN_PATH, json=GOOD, headers={"x-waybill-demo-tenant": "initech"}
    )
    assert unknown.status_code == 400
    assert error_info(error_of(unknown))["reason"] == "UNKNOWN_DEMO_TENANT"
    health = (await http.get(edge.url + "/healthz")).json()
    assert health["demo_credentials"] == {
        "enabled": True,
        "tenants": ["acme-retail", "globex-home"],
        "default_tenant": "acme-retail",
        "tokens": False,
    }
    assert acme not in (await http.get(edge.url + "/healthz")).text
    for host in ("localhost:8080", "[::1]:8080", "127.0.0.1"):
        await http.post(edge.url + TURN_PATH, json=GOOD, headers={"host": host})
        assert edge.gateway.last("Converse").metadata["x-api-key"] == acme, host
    # A rebound name is not this machine: no demo key (the gateway will say 401).
    await http.post(edge.url + TURN_PATH, json=GOOD, headers={"host": "evil.example:8080"})
    assert "x-api-key" not in edge.gateway.last("Converse").metadata


async def test_request_id_and_trace_are_passed_on(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    trace_id = secrets.token_hex(16)
    response = await http.post(
        edge.url + TURN_PATH,
        json=GOOD,
        headers={
            "x-request-id": "req-42",
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        },
    )
    assert response.headers["x-request-id"] == "req-42"
    seen = edge.gateway.last("Converse").metadata
    assert seen["x-request-id"] == "req-42"
    assert seen["traceparent"].split("-")[1] == trace_id
    generated = await http.post(
        edge.url + TURN_PATH, json=GOOD, headers={"x-request-id": "bad id!"}
    )
    rid = generated.headers["x-request-id"]
    assert rid != "bad id!"
    assert edge.gateway.last("Converse").metadata["x-request-id"] == rid


async def test_server_timing_reports_the_edge_share(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(edge.url + TURN_PATH, json=GOOD)
    parts = dict(p.strip().split(";dur=") for p in response.headers["server-timing"].split(","))
    assert set(parts) == {"edge-in", "edge-out"}
    assert all(float(v) >= 0 for v in parts.values())


async def _until(condition: object, timeout_s: float = 5.0) -> None:
    """Wait until ``condition()`` holds (a bound on a wait, not a timing assertion)."""
    assert callable(condition)
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_the_idempotency_key_of_a_confirmation_reaches_the_gateway(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    decision = {
        "userId": "acme-0001",
        "actionId": "act_0123456789abcdef",
        "decision": "DECISION_CONFIRM",
        "idempotencyKey": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    }
    path = "/v1/sessions/sess-0000001/confirmations"
    response = await http.post(edge.url + path, json=decision)
    assert response.status_code == 200, response.text
    request = edge.gateway.last("ConfirmAction").request
    assert isinstance(request, pb.ConfirmActionRequest)
    assert request.idempotency_key == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    # The proto name is accepted too (the JSON mapping reads both).
    snake = {k: v for k, v in decision.items() if k != "idempotencyKey"}
    await http.post(edge.url + path, json={**snake, "idempotency_key": "k" * 20})
    request = edge.gateway.last("ConfirmAction").request
    assert isinstance(request, pb.ConfirmActionRequest)
    assert request.idempotency_key == "k" * 20
    missing = await http.post(edge.url + path, json=snake)
    assert missing.status_code == 400
    bad = [d for d in error_of(missing)["details"] if d["@type"].endswith("BadRequest")]  # type: ignore[attr-defined]
    assert bad[0]["fieldViolations"][0]["field"] == "idempotency_key"
