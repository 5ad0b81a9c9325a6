"""The edge in front of the real mesh, started by the launcher like `waybill up` does."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli import discovery, up
from cli.launcher import Mesh
from cli.main import main
from tests.gateway.edge.conftest import error_of, sse_events
from tests.gateway.edge.mesh_fixtures import edge_mesh, log_lines, new_traceparent

pytestmark = pytest.mark.mesh


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Every service and the edge, for this module."""
    with edge_mesh(tmp_path_factory.mktemp("edge-mesh")) as started:
        yield started


@pytest.fixture
def client(platform: Mesh) -> Iterator[httpx.Client]:
    """An HTTP client of the platform's edge."""
    assert platform.edge_url is not None
    with httpx.Client(base_url=platform.edge_url, timeout=30) as http:
        yield http


def test_launcher_starts_and_publishes_the_edge(platform: Mesh, client: httpx.Client) -> None:
    info = discovery.load(platform.run_dir)
    assert info.edge is not None
    assert info.edge.address == platform.edge_address
    assert info.edge.pid == platform.pid("edge")
    assert "edge" not in info.services  # gRPC probes never see it
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["demo_credentials"]["enabled"] is True
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>Waybill" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_waybill_health_includes_the_edge(
    platform: Mesh, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "--run-dir", str(platform.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "GET /healthz" in out
    assert f"{platform.edge_address}" in out


def test_up_summary_prints_the_page_address(platform: Mesh) -> None:
    out = io.StringIO()
    up._summary(platform, out)
    assert f"chat page: {platform.edge_url}" in out.getvalue()


def test_tracking_turn_streams_to_a_final_answer(platform: Mesh, client: httpx.Client) -> None:
    trace_id, parent = new_traceparent()
    response = client.post(
        "/v1/sessions/edge-mesh-0001/turns",
        json={"userId": "acme-0001", "message": "where is my order?"},
        headers={"traceparent": parent},
    )
    assert response.status_code == 200
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "tool_call"
    assert "delta" in names
    assert names[-1] == "final"
    final = events[-1][1]
    assert final["worker"] == "WORKER_TRACKING"
    context = client.get("/v1/customers/acme-0001/context").json()["context"]
    (order,) = context["activeOrders"]
    assert order["awb"] in str(final["answer"])
    # One trace from the edge down to orders.
    assert log_lines(platform.log_path("edge"), trace_id=trace_id, msg="http")
    assert log_lines(platform.log_path("orders"), trace_id=trace_id)


def test_policy_turn_streams_its_citations_before_the_answer(client: httpx.Client) -> None:
    response = client.post(
        "/v1/sessions/edge-mesh-policy-0001/turns",
        json={"userId": "acme-0001", "message": "what is the fee to cancel an order in transit?"},
    )
    assert response.status_code == 200
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "final"
    assert events[-1][1]["worker"] == "WORKER_POLICY"
    citations = [data for name, data in events if name == "citation"]
    assert citations, names
    assert names.index("citation") < names.index("delta")
    for n, citation in enumerate(citations, start=1):
        assert str(citation["chunkId"]).startswith("acme-")
        assert citation["title"]
        assert citation["policyVersion"]
        assert f"[{n}]" in str(events[-1][1]["answer"])


def test_refund_turn_ends_with_a_readable_error(client: httpx.Client) -> None:
    """A turn that fails before saying anything is an HTTP error, in the customer's words."""
    response = client.post(
        "/v1/sessions/edge-mesh-0002/turns",
        json={"userId": "acme-0001", "message": "I want a refund for order ORD-99999999"},
    )
    assert response.status_code == 404
    error = error_of(response)
    assert error["status"] == "NOT_FOUND"
    assert "no order with this id" in str(error["message"])


def test_bad_key_and_unknown_customer(client: httpx.Client) -> None:
    bad = client.get("/v1/customers", headers={"x-api-key": "wb_not_a_key"})
    assert bad.status_code == 401
    assert error_of(bad)["status"] == "UNAUTHENTICATED"
    missing = client.get("/v1/customers/acme-9999/context")
    assert missing.status_code == 404
    assert error_of(missing)["status"] == "NOT_FOUND"


def test_session_is_readable_after_a_turn(client: httpx.Client) -> None:
    client.post(
        "/v1/sessions/edge-mesh-0003/turns",
        json={"userId": "acme-0002", "message": "where is my order?"},
    )
    session = client.get("/v1/sessions/edge-mesh-0003", params={"userId": "acme-0002"})
    assert session.status_code == 200
    turns = session.json()["session"]["state"]["turns"]
    assert [t["role"] for t in turns] == ["ROLE_CUSTOMER", "ROLE_ASSISTANT"]
    other = client.get("/v1/sessions/edge-mesh-0003", params={"userId": "acme-0001"})
    assert other.status_code == 404


def test_edge_log_has_no_content(platform: Mesh) -> None:
    text = Path(platform.log_path("edge")).read_text()
    assert "where is my order" not in text
    assert "acme-0001" not in text  # route templates, not paths
    for line in text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            assert "api_key" not in json.dumps(entry)


def test_the_agents_queue_over_rest_and_the_cli(
    platform: Mesh, client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-over ticket listed, claimed and resolved over the REST edge and with
    `waybill tickets`, with the refusals agents meet as HTTP statuses and exit codes."""
    turn = client.post(
        "/v1/sessions/edge-mesh-0004/turns",
        json={"userId": "acme-0004", "message": "I want to speak to a human agent please"},
    )
    (ticket_id,) = [str(d["ticketId"]) for name, d in sse_events(turn.text) if name == "escalation"]
    listed = client.get("/v1/tickets", params={"state": "TICKET_STATE_OPEN", "pageSize": 100})
    assert listed.status_code == 200
    assert ticket_id in [t["ticketId"] for t in listed.json()["tickets"]]

    run_dir = ["--run-dir", str(platform.run_dir)]
    assert main(["tickets", "list", *run_dir]) == 0
    assert ticket_id in capsys.readouterr().out
    assert main(["tickets", "claim", ticket_id, "--agent", "agent-cli", *run_dir]) == 0
    claimed = capsys.readouterr().out
    assert f"{ticket_id}  claimed by agent-cli" in claimed
    assert "session edge-mesh-0004" in claimed

    taken = client.post(f"/v1/tickets/{ticket_id}/claim", json={"agentId": "agent-web"})
    assert taken.status_code == 409
    assert error_of(taken)["status"] == "FAILED_PRECONDITION"
    assert main(["tickets", "claim", ticket_id, "--agent", "agent-other", *run_dir]) == 1
    assert "FAILED_PRECONDITION" in capsys.readouterr().err
    assert main(["tickets", "claim", "TCK-bad", "--agent", "agent-cli", *run_dir]) == 2
    assert "ticket_id" in capsys.readouterr().err

    malformed = client.post(f"/v1/tickets/{ticket_id}/resolve", json={"agentId": "agent-cli"})
    assert malformed.status_code == 400
    assert "resolution" in str(error_of(malformed)["message"])
    resolved = client.post(
        f"/v1/tickets/{ticket_id}/resolve",
        json={"agentId": "agent-cli", "resolution": "Called the customer back."},
    )
    assert resolved.status_code == 200
    assert resolved.json()["ticket"]["state"] == "TICKET_STATE_RESOLVED"
    assert main(["tickets", "list", "--state", "resolved", "--json", *run_dir]) == 0
    dumped = json.loads(capsys.readouterr().out)
    assert [t["resolution"] for t in dumped if t["ticketId"] == ticket_id] == [
        "Called the customer back."
    ]
    unknown = client.post("/v1/tickets/TCK-0000000000000000/claim", json={"agentId": "agent-cli"})
    assert unknown.status_code == 404
