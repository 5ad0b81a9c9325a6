"""Recorded ConfirmAction outcomes: one contract, the in-process store and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
import redis.asyncio as redis
from waybill.common.v1 import events_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.outcomes import InMemoryOutcomeStore, Outcome, OutcomeKey, OutcomeStore, decode, encode
from gateway.redis_outcomes import RedisOutcomeStore
from runtime.errors import DeadlineExceeded
from runtime.peer_errors import PeerError
from tests.gateway.clock import FakeClock
from tests.support.redis_server import cleanup, connect, redis_client  # noqa: F401

KEY = OutcomeKey("acme-retail", "acme-0001", "session-aaaa1", "idem-0123456789abcdef")
StoreFactory = Callable[[], OutcomeStore]


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Stores of one implementation; two Redis stores on one prefix are two replicas."""
    if request.param == "memory":
        shared = InMemoryOutcomeStore(ttl_s=60)
        yield lambda: shared
        return
    client, prefix = await connect()
    yield lambda: RedisOutcomeStore(client, prefix=prefix, ttl_s=60)
    await cleanup(client, prefix)


def _outcome(error: PeerError | None = None) -> Outcome:
    events = (
        pb.TurnEvent(delta=events_pb2.TextDelta(text="Refund issued.")),
        pb.TurnEvent(final=pb.Final(answer="Refund issued.", request_id="r-1")),
    )
    return Outcome("act_0123456789abcdef:1", events, error)


def test_an_outcome_survives_its_stored_form() -> None:
    busy = PeerError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "the order was already refunded",
        reason="ALREADY_REFUNDED",
        domain="ledger.waybill",
        metadata={"order_id": "ORD-20260001"},
        retry_after_s=1.5,
    )
    for original in (_outcome(), _outcome(busy)):
        back = decode(encode(original))
        assert back.fingerprint == original.fingerprint
        assert back.events == original.events
        if original.error is None:
            assert back.error is None
            continue
        assert back.error is not None
        assert back.error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert (back.error.message, back.error.reason, back.error.domain) == (
            "the order was already refunded",
            "ALREADY_REFUNDED",
            "ledger.waybill",
        )
        assert back.error.metadata == {"order_id": "ORD-20260001"}
        assert back.error.retry_after_s == 1.5


async def test_the_first_claim_owns_the_key_and_later_ones_replay(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    assert await store.claim(KEY, wait_s=5) is None
    await store.finish(KEY, _outcome())
    replayed = await make_store().claim(KEY, wait_s=5)
    assert replayed is not None
    assert replayed.events == _outcome().events
    other = OutcomeKey("acme-retail", "acme-0002", "session-aaaa1", KEY.idempotency_key)
    assert await store.claim(other, wait_s=5) is None  # another customer: its own key


async def test_a_duplicate_waits_for_the_running_attempt(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    assert await first.claim(KEY, wait_s=5) is None
    waiting = asyncio.ensure_future(second.claim(KEY, wait_s=10))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()  # nothing recorded yet: it cannot have an answer
    await first.finish(KEY, _outcome())
    replayed = await asyncio.wait_for(waiting, 10)
    assert replayed is not None
    assert replayed.events == _outcome().events


async def test_a_released_key_can_be_claimed_again(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    assert await first.claim(KEY, wait_s=5) is None
    waiting = asyncio.ensure_future(second.claim(KEY, wait_s=10))
    await first.release(KEY)
    assert await asyncio.wait_for(waiting, 10) is None  # the waiter now owns it
    await second.finish(KEY, _outcome())
    assert await first.claim(KEY, wait_s=5) is not None


async def test_a_duplicate_gives_up_when_its_time_runs_out(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    assert await first.claim(KEY, wait_s=5) is None
    with pytest.raises(DeadlineExceeded) as raised:
        await second.claim(KEY, wait_s=0.05)
    assert raised.value.reason == "CONFIRMATION_IN_PROGRESS"
    await first.release(KEY)


async def test_memory_records_expire_with_the_session_ttl() -> None:
    clock = FakeClock()
    store = InMemoryOutcomeStore(ttl_s=30, clock=clock)
    assert await store.claim(KEY, wait_s=1) is None
    await store.finish(KEY, _outcome())
    clock.advance(29)
    assert await store.claim(KEY, wait_s=1) is not None
    clock.advance(1)
    assert await store.claim(KEY, wait_s=1) is None


async def test_redis_records_survive_a_restart_and_carry_the_ttl(
    redis_client: tuple[redis.Redis, str],  # noqa: F811
) -> None:
    client, prefix = redis_client
    before = RedisOutcomeStore(client, prefix=prefix, ttl_s=60)
    assert await before.claim(KEY, wait_s=5) is None
    await before.finish(KEY, _outcome())
    after = RedisOutcomeStore(client, prefix=prefix, ttl_s=60)  # a fresh gateway process
    replayed = await after.claim(KEY, wait_s=5)
    assert replayed is not None
    assert replayed.events == _outcome().events
    ttl = await client.pttl(after.key(KEY))
    assert 0 < ttl <= 60_000
    assert after.key(KEY).startswith(f"{prefix}confirm:{{acme-retail}}:acme-0001:")
