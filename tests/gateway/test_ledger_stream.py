"""The gateway's one Exchange stream to the ledger, against a real ledger server on
loopback (the production servicer, store and interceptors): operations batch, fail one
by one with the status a unary call would carry, survive a broken stream exactly once,
and carry nothing of the turn that opened the stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from waybill.common.v1 import money_pb2, usage_pb2
from waybill.ledger.v1 import ledger_service_pb2 as ledger
from waybill.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc

from gateway.budgets import LedgerClient
from ledger.embedded_store import EmbeddedLedgerStore
from ledger.service import LedgerServicer
from llm_pool import pricing
from runtime import context
from runtime.deadlines import DeadlinePolicy
from runtime.peer_errors import PeerError
from runtime.principal import Principal
from runtime.server import Registration, RunningServer, start
from runtime.settings import ServiceSettings

LIMIT = 10_000


class _Watched(LedgerServicer):
    """The real servicer, noting each Exchange's metadata; it can break the first
    stream after reading its first message, answering nothing."""

    def __init__(self, *args: Any, break_first: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.break_first = break_first
        self.metadata: list[dict[str, str]] = []

    async def Exchange(
        self, requests: AsyncIterator[ledger.ExchangeRequest], ctx: grpc.aio.ServicerContext
    ) -> AsyncIterator[ledger.ExchangeResponse]:
        self.metadata.append({k: str(v) for k, v in (ctx.invocation_metadata() or ())})
        if self.break_first:
            self.break_first = False
            async for _ in requests:
                break
            await ctx.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        async for response in super().Exchange(requests, ctx):
            yield response


@dataclass
class Env:
    servicer: _Watched
    client: LedgerClient
    stub: Any
    store: EmbeddedLedgerStore
    running: list[RunningServer]
    port: int

    async def restart(self) -> None:
        """A new ledger process on the same port, over the same store."""
        self.running.append(await _start(self.servicer, self.port))


async def _start(servicer: LedgerServicer, port: int) -> RunningServer:
    settings = ServiceSettings(name="ledger", address=f"127.0.0.1:{port}", drain_s=0.0, grace_s=0.1)
    server = await start(
        settings,
        [
            Registration(
                "waybill.ledger.v1.LedgerService",
                ledger_grpc.add_LedgerServiceServicer_to_server,
                servicer,
            )
        ],
    )
    await server.set_serving(True)
    return server


@pytest.fixture
async def env(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    store = await EmbeddedLedgerStore.open(tmp_path / "ledger", default_limit=LIMIT, ttl_s=300)
    servicer = _Watched(store, pricing.load(), break_first=bool(getattr(request, "param", False)))
    first = await _start(servicer, 0)
    address = f"127.0.0.1:{first.port}"
    channel = grpc.aio.insecure_channel(
        address,
        options=[("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 100)],
    )
    stub = ledger_grpc.LedgerServiceStub(channel)
    client = LedgerClient(stub, policy=DeadlinePolicy(default_s=5.0))
    built = Env(servicer, client, stub, store, [first], first.port)
    yield built
    await client.close()
    await channel.close()
    for server in built.running:
        await server.server.stop(0)
    await store.close()


def _reserve(request_id: str, micros: int, *, team: str = "support") -> ledger.ReserveRequest:
    return ledger.ReserveRequest(
        request_id=request_id,
        tenant_id="acme",
        team_id=team,
        feature_id="order-support",
        estimate=money_pb2.Cost(currency_code="USD", micro_units=micros),
    )


async def _reserved(env: Env, team: str = "support") -> int:
    budget = await env.stub.GetBudget(ledger.GetBudgetRequest(tenant_id="acme", team_id=team))
    return int(budget.budget.reserved.micro_units)


async def test_concurrent_operations_share_messages(env: Env) -> None:
    held = await asyncio.gather(
        *(env.client.reserve(_reserve(f"turn-{i:04d}", 10)) for i in range(50))
    )
    assert len({h.reservation_id for h in held}) == 50
    counts = env.client.stream.counts
    assert counts.operations == 50
    assert counts.messages < 50, "operations queued together must leave together"
    assert counts.streams == 1
    committed = await asyncio.gather(
        *(
            env.client.commit(
                ledger.CommitRequest(
                    reservation_id=h.reservation_id, usage=usage_pb2.Usage(), tenant_id="acme"
                )
            )
            for h in held
        )
    )
    assert all(c.charged.micro_units == 0 for c in committed)
    assert await _reserved(env) == 0
    assert env.client.stream.counts.streams == 1, "the stream stays open between bursts"


async def test_each_operation_fails_alone_with_its_own_status(env: Env) -> None:
    await env.client.reserve(_reserve("turn-0001", LIMIT - 100))
    results = await asyncio.gather(
        env.client.reserve(_reserve("turn-0002", 50)),
        env.client.reserve(_reserve("turn-0003", 5_000)),  # over the budget
        env.client.reserve(_reserve("bad id!", 10)),  # breaks the contract's rule
        env.client.release(
            ledger.ReleaseRequest(reservation_id="rsv_" + "0" * 16, tenant_id="acme")
        ),
        return_exceptions=True,
    )
    granted, refused, invalid, unknown = results
    assert isinstance(granted, ledger.ReserveResponse)
    assert granted.reservation_id
    assert isinstance(refused, PeerError)
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.reason == "BUDGET_EXHAUSTED"
    assert refused.retry_after_s is not None
    assert refused.retry_after_s > 0
    # A request the gateway built wrong is its own bug, as with a unary call.
    assert isinstance(invalid, PeerError)
    assert invalid.code == grpc.StatusCode.INTERNAL
    assert invalid.reason == "DEPENDENCY_REJECTED_REQUEST"
    # Existence is answered per tenant, as the unary Release answers it.
    assert isinstance(unknown, PeerError)
    assert unknown.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("env", [True], indirect=True)
async def test_a_broken_stream_resends_what_it_left_unanswered_once(env: Env) -> None:
    held = await asyncio.wait_for(env.client.reserve(_reserve("turn-0001", 700)), 10)
    assert held.reservation_id
    assert env.client.stream.counts.streams == 2
    # Sent twice, held once: the retry found the first stream's reservation or made it.
    assert await _reserved(env) == 700
    again = await env.client.reserve(_reserve("turn-0001", 700))
    assert again.reservation_id == held.reservation_id


async def test_budgets_fail_closed_while_the_ledger_is_away_and_recover(env: Env) -> None:
    await env.client.reserve(_reserve("turn-0001", 10))
    await env.running.pop().server.stop(0)
    with pytest.raises(PeerError) as away:
        await asyncio.wait_for(env.client.reserve(_reserve("turn-0002", 10)), 10)
    assert away.value.code == grpc.StatusCode.UNAVAILABLE
    await env.restart()
    codes = []
    held = None
    for _ in range(100):  # the channel reconnects within its backoff (<= 100 ms)
        try:
            held = await env.client.reserve(_reserve("turn-0003", 10))
            break
        except PeerError as exc:
            codes.append(exc.code)
            await asyncio.sleep(0.05)
    assert held is not None, "the ledger stream never came back"
    assert held.reservation_id
    assert set(codes) <= {grpc.StatusCode.UNAVAILABLE}


async def test_the_stream_carries_nothing_of_the_turn_that_opened_it(env: Env) -> None:
    tokens = (
        context.request_id.set("req-0001"),
        context.tenant_id.set("acme"),
        context.principal.set(Principal("acme", "support", "service", principal_id="key-1")),
    )
    try:
        await env.client.reserve(_reserve("turn-0001", 10))
    finally:
        context.request_id.reset(tokens[0])
        context.tenant_id.reset(tokens[1])
        context.principal.reset(tokens[2])
    (metadata,) = env.servicer.metadata
    leaked = {k for k in metadata if k.startswith("x-waybill") or k in ("traceparent",)}
    assert not leaked


async def test_an_operation_times_out_with_its_own_turn(env: Env) -> None:
    original = env.servicer.reserve

    async def slow(request: ledger.ReserveRequest) -> ledger.ReserveResponse:
        await asyncio.sleep(2)
        return await original(request)

    env.servicer.reserve = slow  # type: ignore[method-assign]
    token = context.deadline.set(time.monotonic() + 0.2)
    try:
        with pytest.raises(PeerError) as late:
            await env.client.reserve(_reserve("turn-0001", 10))
    finally:
        context.deadline.reset(token)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    env.servicer.reserve = original  # type: ignore[method-assign]
    assert (await env.client.reserve(_reserve("turn-0002", 10))).reservation_id


async def test_over_many_operations_in_one_message_is_refused_by_rule(env: Env) -> None:
    call = env.stub.Exchange()
    ops: Sequence[ledger.LedgerOperation] = [
        ledger.LedgerOperation(operation_id=i, release=ledger.ReleaseRequest()) for i in range(1001)
    ]
    await call.write(ledger.ExchangeRequest(operations=ops))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1000" in (refused.value.details() or "")
