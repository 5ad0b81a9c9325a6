"""Who may do what at the gateway: API keys, end users' bearer tokens, and the
principal that every hop below the gateway sees."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.demo_tokens import DemoTokenSigner
from runtime.errors import error_info_in
from tests.conftest import StartServer
from tests.gateway.standins import ACME, ACME_KEY, GLOBEX_KEY, Harness, build, full_status
from tests.support.keys import token_issuer

C = grpc.StatusCode


@pytest.fixture
async def identity(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], tmp_path: Path
) -> AsyncIterator[tuple[Harness, DemoTokenSigner]]:
    """A gateway that accepts the stand-in keys and tokens of a test issuer."""
    signer, verifier = token_issuer(tmp_path)
    built = await build(serve, channels, tokens=verifier)
    yield built.harness, signer
    for ch in built.channels:
        await ch.close()


def bearer(signer: DemoTokenSigner, user_id: str, tenant: str = "acme-retail") -> str:
    return "Bearer " + signer.issue(tenant_id=tenant, user_id=user_id).token


def reason(error: grpc.aio.AioRpcError) -> str:
    info = error_info_in(full_status(error)[2])
    assert info is not None
    return str(info.reason)


async def test_an_end_user_acts_as_their_own_customer(
    identity: tuple[Harness, DemoTokenSigner],
) -> None:
    gw, signer = identity
    events, error = await gw.converse(user_id="acme-0003", key=bearer(signer, "acme-0003"))
    assert error is None, error
    assert events[-1].WhichOneof("kind") == "final"
    seen = gw.tracking.principals[-1]
    assert seen is not None
    assert (seen.tenant_id, seen.role, seen.user_id) == ("acme-retail", "customer", "acme-0003")
    assert seen.principal_id == "user:acme-0003"


async def test_another_customer_is_denied_alike_whether_or_not_it_exists(
    identity: tuple[Harness, DemoTokenSigner],
) -> None:
    gw, signer = identity
    token = bearer(signer, "acme-0003")
    answers = []
    for other in ("acme-0004", "acme-9999"):
        events, error = await gw.converse(user_id=other, key=token)
        assert error is not None
        assert events == []
        answers.append(full_status(error))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gw.get_session(user_id=other, key=token)
        answers.append(full_status(caught.value))
    assert {a[0] for a in answers} == {C.PERMISSION_DENIED}
    assert len(set(answers)) == 1, "the answer must not say whether the customer exists"
    assert "acme-0004" not in answers[0][1]
    assert gw.tracking.calls == 0
    assert gw.orders.calls == 0
    _, error = await gw.confirm(user_id="acme-0004", key=token)
    assert error is not None
    assert error.code() == C.PERMISSION_DENIED


async def test_end_users_cannot_list_customers_or_use_the_ticket_queue(
    identity: tuple[Harness, DemoTokenSigner],
) -> None:
    gw, signer = identity
    md = [("authorization", bearer(signer, "acme-0003"))]
    calls: list[Any] = [
        gw.stub.ListCustomers(pb.ListCustomersRequest(page_size=10), metadata=md, timeout=10),
        gw.stub.ListTickets(pb.ListTicketsRequest(page_size=10), metadata=md, timeout=10),
        gw.stub.ClaimTicket(
            pb.ClaimTicketRequest(ticket_id="TCK-0123456789ABCDEF", agent_id="agent-1"),
            metadata=md,
            timeout=10,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == C.PERMISSION_DENIED
        assert reason(caught.value) == "ROLE_NOT_ALLOWED"
    assert gw.orders.calls == 0


async def test_a_service_key_acts_for_any_customer_of_its_tenant_only(
    identity: tuple[Harness, DemoTokenSigner],
) -> None:
    gw, _ = identity
    for user in ("acme-0003", "acme-0004"):
        _, error = await gw.converse(user_id=user, key=ACME_KEY)
        assert error is None, error
    seen = gw.tracking.principals[-1]
    assert seen is not None
    assert (seen.tenant_id, seen.role, seen.user_id) == ("acme-retail", "service", "")
    assert seen.principal_id == f"key:{ACME[0]}"
    # Another tenant's key is scoped to its own tenant: acme's session is not there for it.
    await gw.converse(session_id="session-tenant1", user_id="acme-0003", key=ACME_KEY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.get_session(session_id="session-tenant1", user_id="acme-0003", key=GLOBEX_KEY)
    assert caught.value.code() == C.NOT_FOUND
    listed = await gw.stub.ListCustomers(
        pb.ListCustomersRequest(page_size=10), metadata=[("x-api-key", ACME_KEY)], timeout=10
    )
    assert listed.customers


async def test_a_token_of_another_tenant_never_reaches_this_tenants_data(
    identity: tuple[Harness, DemoTokenSigner],
) -> None:
    gw, signer = identity
    await gw.converse(session_id="session-tenant2", user_id="acme-0003", key=ACME_KEY)
    foreign = bearer(signer, "acme-0003", tenant="globex-home")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.get_session(session_id="session-tenant2", user_id="acme-0003", key=foreign)
    assert caught.value.code() == C.NOT_FOUND


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ([], "MISSING_CREDENTIAL"),
        ([("x-api-key", "wb_not_a_key")], "INVALID_CREDENTIAL"),
        ([("x-api-key", ACME_KEY[:-1] + "x")], "INVALID_CREDENTIAL"),
        ([("authorization", "Bearer not.a.jwt")], "INVALID_CREDENTIAL"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "INVALID_CREDENTIAL"),
        # A bearer token wins over a key sent beside it: an end user cannot borrow one.
        ([("authorization", "Bearer x.y.z"), ("x-api-key", ACME_KEY)], "INVALID_CREDENTIAL"),
    ],
)
async def test_missing_or_invalid_credentials_are_unauthenticated(
    identity: tuple[Harness, DemoTokenSigner], metadata: list[tuple[str, str]], expected: str
) -> None:
    gw, _ = identity
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.stub.GetCustomerContext(
            pb.GetCustomerContextRequest(user_id="acme-0001"), metadata=metadata, timeout=10
        )
    assert caught.value.code() == C.UNAUTHENTICATED
    assert reason(caught.value) == expected
    assert gw.orders.calls == 0


async def test_a_claimed_principal_in_metadata_is_replaced_by_the_authenticated_one(
    identity: tuple[Harness, DemoTokenSigner],
) -> None:
    gw, signer = identity
    token = bearer(signer, "acme-0003")
    request = pb.ConverseRequest(session_id="session-forged", user_id="acme-0003", message="hi")
    forged = [
        ("authorization", token),
        ("x-waybill-principal", "key:0000000000000001"),
        ("x-waybill-role", "service"),
        ("x-waybill-customer", ""),
    ]
    async for _ in gw.stub.Converse(request, metadata=forged, timeout=10):
        pass
    seen = gw.tracking.principals[-1]
    assert seen is not None
    assert (seen.role, seen.user_id) == ("customer", "acme-0003")
