"""The edge's end-user credentials: a bearer token is passed through as sent, and
demo tokens are minted only for clients on this machine, only in the embedded mode."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.demo_tokens import DemoTokenSigner
from gateway.edge.app import create_app
from gateway.edge.demo import DemoCredentials
from gateway.edge.settings import DEMO_SIGNING_KEY_ENV, EdgeSettings
from gateway.tokens import TokenVerifier
from runtime.settings import SettingsError
from tests.gateway.edge.conftest import StartEdge, error_info, error_of
from tests.support.keys import token_issuer

TURN_PATH = "/v1/sessions/session-0001/turns"
GOOD = {"userId": "acme-0003", "message": "where is my parcel?"}


@pytest.fixture
def issuer(tmp_path: Path) -> tuple[DemoTokenSigner, TokenVerifier]:
    return token_issuer(tmp_path / "demo-keys")


async def test_a_bearer_token_is_passed_through_instead_of_the_demo_key(
    start_edge: StartEdge, http: httpx.AsyncClient, demo_file: Path
) -> None:
    edge = await start_edge(demo=demo_file)
    await http.post(edge.url + TURN_PATH, json=GOOD, headers={"authorization": "Bearer a.b.c"})
    seen = edge.gateway.last("Converse").metadata
    assert seen["authorization"] == "Bearer a.b.c"
    assert "x-api-key" not in seen, "the demo key must not stand in beside a bearer token"


async def test_a_loopback_client_gets_a_token_for_the_customer_it_names(
    start_edge: StartEdge,
    http: httpx.AsyncClient,
    demo_file: Path,
    issuer: tuple[DemoTokenSigner, TokenVerifier],
) -> None:
    signer, verifier = issuer
    edge = await start_edge(demo=demo_file, signer=signer)
    assert (await http.get(edge.url + "/healthz")).json()["demo_credentials"]["tokens"] is True
    answer = await http.post(
        edge.url + "/v1/demo-token",
        json={"userId": "globex-0002"},
        headers={"x-waybill-demo-tenant": "globex-home"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 900
    principal = verifier.principal(body["token"])
    assert (principal.tenant_id, principal.user_id, principal.role) == (
        "globex-home",
        "globex-0002",
        "customer",
    )
    default = await http.post(edge.url + "/v1/demo-token", json={"userId": "acme-0003"})
    assert verifier.principal(default.json()["token"]).tenant_id == "acme-retail"
    bad = await http.post(edge.url + "/v1/demo-token", json={"userId": "Not Valid"})
    assert bad.status_code == 400
    unknown = await http.post(edge.url + "/v1/demo-token", json={"userId": "a", "x": 1})
    assert unknown.status_code == 400
    stranger = await http.post(
        edge.url + "/v1/demo-token",
        json={"userId": "acme-0003"},
        headers={"x-waybill-demo-tenant": "initech"},
    )
    assert stranger.status_code == 400


async def test_demo_tokens_are_refused_to_a_client_on_another_machine(
    demo_file: Path, issuer: tuple[DemoTokenSigner, TokenVerifier]
) -> None:
    signer, _ = issuer
    settings = EdgeSettings(host="127.0.0.1", port=8080, gateway="127.0.0.1:1")
    app = create_app(settings, demo=DemoCredentials.load(demo_file), signer=signer)
    for client, host in (
        (("203.0.113.7", 4321), "127.0.0.1:8080"),
        (("127.0.0.1", 4321), "evil.test"),
    ):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
            answer = await http.post("/v1/demo-token", json={"userId": "acme-0003"})
        assert answer.status_code == 403, (client, host)
        assert error_info(error_of(answer))["reason"] == "LOOPBACK_ONLY"
        assert "token" not in answer.json()


async def test_demo_tokens_are_off_without_a_signing_key(
    start_edge: StartEdge, http: httpx.AsyncClient, demo_file: Path
) -> None:
    edge = await start_edge(demo=demo_file)
    answer = await http.post(edge.url + "/v1/demo-token", json={"userId": "acme-0003"})
    assert answer.status_code == 404
    assert error_info(error_of(answer))["reason"] == "DEMO_TOKENS_OFF"


def test_a_signing_key_is_refused_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=DEMO_SIGNING_KEY_ENV):
        EdgeSettings(
            host="0.0.0.0",
            port=8080,
            gateway="g:1",
            demo_signing_key=tmp_path / "k.pem",
            demo_issuer="i",
            demo_audience="a",
        )
