"""Nothing internal crosses the edge: no method, service, host or stack trace in any answer.

The stand-in gateway is made to fail the careless way (messages and ErrorInfo
metadata naming methods and hosts, the deadline helper's refusal, a gateway
that cannot be reached), and every body, header and SSE event is scanned.
"""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.edge.conftest import StartEdge, error_info, error_of, sse_events

FORBIDDEN = ("/waybill.", "127.0.0.1", "Service/", "Traceback", "50051", 'File "')
TURN = "/v1/sessions/sess-0000001/turns"
USER = {"userId": "acme-0001"}


def _scan(response: httpx.Response) -> None:
    seen = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
    for internal in FORBIDDEN:
        assert internal not in seen, (internal, seen)


@pytest.mark.parametrize("code", ["NOT_FOUND", "FAILED_PRECONDITION", "INTERNAL", "UNAVAILABLE"])
async def test_a_status_naming_internals_is_answered_plainly(
    code: str, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    for response in (
        await http.get(f"{edge.url}/v1/customers", params={"pageToken": f"leak:{code}"}),
        await http.post(edge.url + TURN, json={**USER, "message": f"leak:{code}"}),
    ):
        _scan(response)
        error = error_of(response)
        assert error["status"] == code
        info = error_info(error)
        # The reason and the public metadata still tell the caller what to do.
        assert info["reason"] == f"TEST_{code}"
        assert info["metadata"] == {"which": code}


async def test_a_stream_failing_with_internals_ends_plainly(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(edge.url + TURN, json={**USER, "message": "midleak:INTERNAL"})
    assert response.status_code == 200
    _scan(response)
    assert [name for name, _ in sse_events(response.text)] == ["delta", "turn_error", "error"]


async def test_too_little_time_inside_the_mesh_names_no_method(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    response = await http.post(edge.url + TURN, json={**USER, "message": "deadline-short"})
    assert response.status_code == 504
    _scan(response)
    error = error_of(response)
    assert error_info(error)["reason"] == "DEADLINE_TOO_SHORT"
    assert "GuardrailsService" not in response.text


@pytest.mark.parametrize("header", ["5e-324", "0.001", "0", "-1", "nan", "1e9"])
async def test_unusable_timeouts_are_refused_before_any_call(
    header: str, start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    for response in (
        await http.get(f"{edge.url}/v1/customers", headers={"x-request-timeout": header}),
        await http.get(
            f"{edge.url}/v1/sessions/sess-0000001",
            params={"userId": "acme-0001"},
            headers={"x-request-timeout": header},
        ),
        await http.post(
            edge.url + TURN,
            json={**USER, "message": "hi"},
            headers={"x-request-timeout": header},
        ),
    ):
        assert response.status_code == 400, response.text
        _scan(response)
        error = error_of(response)
        assert "X-Request-Timeout" in str(error["message"])
        assert error_info(error)["reason"] == "INVALID_TIMEOUT"
    assert edge.gateway.calls == []


async def test_an_unreachable_gateway_names_no_address(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge(gateway="127.0.0.1:1")
    for response in (
        await http.get(f"{edge.url}/v1/customers"),
        await http.get(f"{edge.url}/v1/sessions/sess-0000001", params={"userId": "acme-0001"}),
        await http.post(edge.url + TURN, json={**USER, "message": "hi"}),
        await http.get(f"{edge.url}/healthz"),
    ):
        assert response.status_code == 503
        _scan(response)


async def test_refusals_of_the_edge_itself_name_nothing_internal(
    start_edge: StartEdge, http: httpx.AsyncClient
) -> None:
    edge = await start_edge()
    for response in (
        await http.post(
            edge.url + TURN, content=b"{", headers={"content-type": "application/json"}
        ),
        await http.post(edge.url + TURN, json={**USER, "message": "hi", "colour": "red"}),
        await http.post(edge.url + "/v1/sessions/short/turns", json={**USER, "message": "hi"}),
        await http.get(f"{edge.url}/v1/customers", params={"pageSize": "500"}),
        await http.get(f"{edge.url}/v1/nowhere"),
        await http.delete(edge.url + TURN),
    ):
        assert 400 <= response.status_code < 500
        _scan(response)
