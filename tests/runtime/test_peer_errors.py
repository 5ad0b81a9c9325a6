"""from_peer on failures from a real aio peer: what a caller keeps, what it never sees."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from runtime.peer_errors import KEPT, RETRYABLE, PeerError, from_peer
from tests.runtime.peers import CLEAN_MESSAGE, PEER_MESSAGE, RETRY_S, failing_peer

INTERNAL_TEXT = ("/waybill.", "OrdersService", "127.0.0.1", "50051")


def _name(code: grpc.StatusCode) -> str:
    name: str = code.name
    return name


@pytest.fixture
async def peer() -> AsyncIterator[pb_grpc.RouterServiceStub]:
    async with failing_peer() as stub:
        yield stub


async def _mapped(stub: pb_grpc.RouterServiceStub, text: str, **kwargs: object) -> PeerError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Classify(pb.ClassifyRequest(tenant_id="acme", text=text), **kwargs)
    return from_peer(raised.value, peer="orders")


def _names_nothing_internal(error: PeerError) -> None:
    for text in (error.message, *error.metadata.keys(), *error.metadata.values()):
        for internal in INTERNAL_TEXT:
            assert internal not in text, (internal, text)


def test_every_code_has_a_rule() -> None:
    ruled = KEPT | RETRYABLE | {grpc.StatusCode.INVALID_ARGUMENT}
    rest = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
    assert ruled | rest | {grpc.StatusCode.OK} == set(grpc.StatusCode)
    assert grpc.StatusCode.INVALID_ARGUMENT not in KEPT


@pytest.mark.parametrize("code", sorted(KEPT, key=_name))
async def test_kept_codes_keep_the_peers_error_info(
    code: grpc.StatusCode, peer: pb_grpc.RouterServiceStub
) -> None:
    error = await _mapped(peer, code.name)
    assert error.code is code
    assert (error.reason, error.domain) == (f"PEER_{code.name}", "orders.waybill")
    # The peer's public metadata travels; a key naming an internal target does not.
    assert error.metadata == {"team": "support"}
    expected_retry = RETRY_S if code is grpc.StatusCode.RESOURCE_EXHAUSTED else None
    assert error.retry_after_s == expected_retry
    # A message naming the peer's method and host is replaced by the code's words.
    assert error.message == code.name.lower().replace("_", " ")
    _names_nothing_internal(error)


async def test_a_clean_message_of_a_kept_code_is_passed_on(
    peer: pb_grpc.RouterServiceStub,
) -> None:
    error = await _mapped(peer, "NOT_FOUND:clean")
    assert (error.code, error.message) == (grpc.StatusCode.NOT_FOUND, CLEAN_MESSAGE)


@pytest.mark.parametrize("code", sorted(RETRYABLE, key=_name))
async def test_transient_codes_pass_on_without_the_peers_text(
    code: grpc.StatusCode, peer: pb_grpc.RouterServiceStub
) -> None:
    error = await _mapped(peer, code.name)
    assert error.code is code
    assert error.reason == f"PEER_{code.name}"
    assert PEER_MESSAGE not in error.message
    _names_nothing_internal(error)
    expected_retry = RETRY_S if code is grpc.StatusCode.UNAVAILABLE else None
    assert error.retry_after_s == expected_retry


async def test_a_peer_rejecting_our_request_is_our_bug(
    peer: pb_grpc.RouterServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="waybill.peer"):
        error = await _mapped(peer, "INVALID_ARGUMENT")
    assert error.code is grpc.StatusCode.INTERNAL
    assert error.reason == "DEPENDENCY_REJECTED_REQUEST"
    assert error.metadata == {}
    _names_nothing_internal(error)
    # What the peer said is kept for operators, in the log.
    (record,) = [r for r in caplog.records if r.name == "waybill.peer"]
    assert record.__dict__["peer"] == "orders"
    assert record.__dict__["detail"] == PEER_MESSAGE


@pytest.mark.parametrize("name", ["INTERNAL", "UNKNOWN", "DATA_LOSS"])
async def test_peer_bugs_become_internal(name: str, peer: pb_grpc.RouterServiceStub) -> None:
    error = await _mapped(peer, name)
    assert (error.code, error.reason) == (grpc.StatusCode.INTERNAL, "DEPENDENCY_FAILED")
    _names_nothing_internal(error)


async def test_without_details_the_code_still_says_what_happened(
    peer: pb_grpc.RouterServiceStub,
) -> None:
    error = await _mapped(peer, "NOT_FOUND:plain")
    assert (error.code, error.reason, error.domain) == (
        grpc.StatusCode.NOT_FOUND,
        "DEPENDENCY_NOT_FOUND",
        "",
    )
    down = await _mapped(peer, "UNAVAILABLE:plain")
    assert (down.code, down.reason) == (grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE")
    _names_nothing_internal(down)


async def test_retry_info_survives_without_error_info(peer: pb_grpc.RouterServiceStub) -> None:
    error = await _mapped(peer, "UNAVAILABLE:retry-only")
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.retry_after_s == RETRY_S
    limited = await _mapped(peer, "RESOURCE_EXHAUSTED:retry-only")
    assert (limited.reason, limited.retry_after_s) == ("DEPENDENCY_RESOURCE_EXHAUSTED", RETRY_S)


async def test_details_that_do_not_parse_are_ignored(peer: pb_grpc.RouterServiceStub) -> None:
    error = await _mapped(peer, "FAILED_PRECONDITION:garbage")
    assert (error.code, error.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "DEPENDENCY_FAILED_PRECONDITION",
    )


async def test_an_expired_deadline_names_no_peer(peer: pb_grpc.RouterServiceStub) -> None:
    error = await _mapped(peer, "sleep", timeout=0.05)
    assert (error.code, error.reason) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "DEPENDENCY_DEADLINE_EXCEEDED",
    )
    _names_nothing_internal(error)


async def test_an_unreachable_peer_names_no_address() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        error = await _mapped(stub, "OK", timeout=5)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.reason == "DEPENDENCY_UNAVAILABLE"
    _names_nothing_internal(error)
    assert "127.0.0.1:1" not in error.message
