"""Identity across gateway replicas: two gateway processes read one hashed key
store, so a key created, rotated or revoked with ``waybill keys`` is accepted or
refused by every replica within the refresh interval; both trust the run's demo
token issuer and hold an end user to their own customer."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli.launcher import Mesh
from cli.main import main as waybill
from cli.ports import free_base_port
from gateway import demo_tokens
from runtime import credentials, mesh
from runtime.errors import error_info_of
from tests.support.replicas import gateway_replica

pytestmark = pytest.mark.mesh

REFRESH_S = 0.5
"""WAYBILL_KEYS_REFRESH_S of both replicas."""
SLACK_S = 5.0
"""What a loaded machine may add to the refresh interval before a replica's next call."""


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mesh, list[str]]]:
    """The launcher's gateway and a second gateway process on the same run directory."""
    with (
        Mesh(
            run_dir=tmp_path_factory.mktemp("identity"),
            base_port=free_base_port(len(mesh.SERVICES)),
            services=["gateway"],
            env={"WAYBILL_KEYS_REFRESH_S": str(REFRESH_S)},
        ) as m,
        gateway_replica(m) as address,
    ):
        yield m, [m.addresses["gateway"], address]


def answer(address: str, metadata: list[tuple[str, str]], user_id: str = "acme-0003") -> str:
    """What a replica answers GetSession for a session nobody has: NOT_FOUND once the
    credential passed (no other service is needed for that), else the refusal."""
    with grpc.insecure_channel(address) as channel:
        try:
            gw_grpc.GatewayServiceStub(channel).GetSession(
                gw.GetSessionRequest(session_id="no-such-session", user_id=user_id),
                metadata=metadata,
                timeout=5,
            )
        except grpc.RpcError as exc:
            info = error_info_of(exc)
            code = exc.code().name
            return f"{code}:{info.reason}" if info is not None else code
    return "OK"


ACCEPTED = "NOT_FOUND:SESSION_NOT_FOUND"


def until(address: str, key: str, expected: str, *, within_s: float = SLACK_S) -> float:
    """Seconds until ``address`` answers ``key`` with ``expected``; fails when it does
    not within ``within_s``."""
    began = time.monotonic()
    while answer(address, [("x-api-key", key)]) != expected:
        assert time.monotonic() - began < within_s, f"{address} not within the stated time"
        time.sleep(0.05)
    return time.monotonic() - began


def keys_cli(m: Mesh, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    code = waybill(["keys", *argv, "--run-dir", str(m.run_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    return out.strip()


def test_the_launchers_key_works_on_every_replica(replicas: tuple[Mesh, list[str]]) -> None:
    m, addresses = replicas
    key = credentials.key_for(m.credentials_path, "acme-retail")
    assert key not in m.api_keys_path.read_text()
    for address in addresses:
        assert answer(address, [("x-api-key", key)]) == ACCEPTED
        assert answer(address, [("x-api-key", key + "x")]) == "UNAUTHENTICATED:INVALID_CREDENTIAL"
        assert answer(address, []) == "UNAUTHENTICATED:MISSING_CREDENTIAL"


def test_create_rotate_and_revoke_reach_every_replica(
    replicas: tuple[Mesh, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    m, addresses = replicas
    key = keys_cli(m, capsys, "create", "--tenant", "acme-retail", "--name", "fleet-test")
    key_id = key.split("_")[1]
    for address in addresses:
        until(address, key, ACCEPTED)

    rotated = keys_cli(m, capsys, "rotate", key_id, "--grace", "3600")
    for address in addresses:
        until(address, rotated, ACCEPTED)
        # Both keys work during the switch.
        assert answer(address, [("x-api-key", key)]) == ACCEPTED

    keys_cli(m, capsys, "revoke", key_id)
    revoked = "UNAUTHENTICATED:REVOKED_CREDENTIAL"
    for address in addresses:
        until(address, key, revoked)
    # Stays refused everywhere; the rotated key is untouched.
    for address in addresses:
        assert answer(address, [("x-api-key", key)]) == revoked
        assert answer(address, [("x-api-key", rotated)]) == ACCEPTED


def test_an_end_user_token_is_held_to_its_customer_on_every_replica(
    replicas: tuple[Mesh, list[str]],
) -> None:
    m, addresses = replicas
    signer = demo_tokens.DemoTokenSigner.load(
        m.demo_keys.private_key,
        issuer=demo_tokens.DEMO_ISSUER,
        audience=demo_tokens.DEMO_AUDIENCE,
    )
    token = signer.issue(tenant_id="acme-retail", user_id="acme-0003").token
    md = [("authorization", f"Bearer {token}")]
    for address in addresses:
        assert answer(address, md, "acme-0003") == ACCEPTED
        assert answer(address, md, "acme-0004") == "PERMISSION_DENIED:CUSTOMER_NOT_ALLOWED"
        assert answer(address, md, "acme-9999") == "PERMISSION_DENIED:CUSTOMER_NOT_ALLOWED"
