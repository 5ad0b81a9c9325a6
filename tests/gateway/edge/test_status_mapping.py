"""Every gRPC status from a real gateway stand-in maps to the documented HTTP status and body.

The stand-in is a real grpc.aio GatewayService behind the production
interceptor chain, so each failure carries the rich status (ErrorInfo,
RetryInfo) the real gateway would send.
"""

from __future__ import annotations

import grpc
import httpx
import pytest

from gateway.edge.errors import HTTP_STATUS
from tests.gateway.edge.conftest import StartEdge, error_info, error_of, sse_events

# The documented table (docs/rest-edge.md); written out, not derived, so a change shows.
EXPECTED = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 409,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
CODES = sorted(EXPECTED)
TURN = {"userId": "acme-0001"}


def test_the_table_covers_every_status_code() -> None:
    assert {c.name for c in grpc.StatusCode} - {"OK"} == set(EXPECTED)
    assert {c.name: s for c, s in HTTP_STATUS.items() if c.name != "OK"} == EXPECTED


def _check(response: httpx.Response, code: str) -> None:
    assert response.status_code == EXPECTED[code], response.text
    error = error_of(response)
    assert error["status"] == code
    assert error["message"] == f"stand-in failure {code}"
    info = error_info(error)
    assert info["reason"] == f"TEST_{code}"
    assert info["domain"] == "gateway.waybill"
    assert info["metadata"] == {"which": code}
    if code == "RESOURCE_EXHAUSTED":
        assert response.headers["retry-after"] == "3"  # 2.5 s rounded up
        retry = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]  # type: ignore[attr-defined]
        assert retry == [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.500s"}
        ]
    else:
        assert "retry-after" not in response.headers
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("code", CODES)
async def test_unary_failure_maps_to_http(
    code: str, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.get(f"{edge.url}/v1/customers", params={"pageToken": f"fail:{code}"})
    _check(response, code)


@pytest.mark.parametrize("code", CODES)
async def test_turn_failing_before_its_first_event_is_an_http_error(
    code: str, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(
        f"{edge.url}/v1/sessions/sess-0000001/turns", json={**TURN, "message": f"fail:{code}"}
    )
    _check(response, code)


@pytest.mark.parametrize("code", ["UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED", "UNIMPLEMENTED"])
async def test_turn_failing_mid_stream_ends_with_an_error_event(
    code: str, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(
        f"{edge.url}/v1/sessions/sess-0000001/turns", json={**TURN, "message": f"midfail:{code}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse_events(response.text)
    assert [name for name, _ in events] == ["delta", "turn_error", "error"]
    assert events[1][1]["code"] == f"STATUS_CODE_{code}"  # the contract enum, by name
    body = events[2][1]
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == EXPECTED[code]
    assert error["status"] == code
    assert error["message"] == f"stand-in failure {code}"
    assert error["details"][0]["reason"] == f"TEST_{code}"


async def test_stream_that_ends_without_a_final_event_is_not_complete(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(
        f"{edge.url}/v1/sessions/sess-0000001/turns", json={**TURN, "message": "incomplete"}
    )
    events = sse_events(response.text)
    assert [name for name, _ in events] == ["delta", "error"]
    error = events[1][1]["error"]
    assert isinstance(error, dict)
    assert (error["code"], error["status"]) == (500, "INTERNAL")
    assert error["details"][0]["reason"] == "STREAM_INCOMPLETE"


async def test_contract_violation_carries_the_bad_request_rule(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(
        f"{edge.url}/v1/sessions/short/turns", json={**TURN, "message": "hello"}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    bad = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]  # type: ignore[attr-defined]
    assert bad[0]["fieldViolations"][0]["field"] == "session_id"
    assert bad[0]["fieldViolations"][0]["reason"] == "string.pattern"


async def test_gateway_down_is_503_without_internal_addresses(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge(gateway="127.0.0.1:1")
    for response in (
        await http.get(f"{edge.url}/v1/customers"),
        await http.post(
            f"{edge.url}/v1/sessions/sess-0000001/turns", json={**TURN, "message": "hi"}
        ),
    ):
        assert response.status_code == 503
        error = error_of(response)
        assert error["message"] == "the gateway is not available"
        assert "127.0.0.1" not in response.text
        assert error_info(error)["reason"] == "GATEWAY_UNAVAILABLE"
    health = await http.get(f"{edge.url}/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "NOT_SERVING"
