"""The agents' queue on both stores, through OrdersService on a real server: tickets
listed most urgent first, claimed by one agent only, resolved by the agent who claimed
them, invisible across tenants, kept across a reload of the demo data, and one claim
winning when agents on two replicas race for a ticket."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as pb

from orders import seed
from orders.store import claim
from runtime.errors import DomainError
from tests.orders.conftest import ANCHOR, Env, Opener, refused

State = orders_pb2.TicketState
Reason = orders_pb2.EscalationReason


async def _open(env: Env, index: int, reason: Reason, key: str) -> orders_pb2.EscalationTicket:
    order = env.order(index)
    response: pb.CreateEscalationTicketResponse = await env.stub.CreateEscalationTicket(
        pb.CreateEscalationTicketRequest(
            tenant_id=env.tenant[order.user_id],
            user_id=order.user_id,
            session_id=f"sess-{index:04d}-abcd",
            order_id=order.order_id,
            reason=reason,
            summary=f"Case {index}: the customer asked for a person.",
            idempotency_key=key,
        )
    )
    return response.ticket


def _tenant_orders(env: Env) -> tuple[str, list[int]]:
    """A tenant with at least three orders, and those orders' indexes."""
    by_tenant: dict[str, list[int]] = {}
    for i, order in enumerate(env.data.orders):
        by_tenant.setdefault(env.tenant[order.user_id], []).append(i)
    tenant, indexes = next((t, ix) for t, ix in by_tenant.items() if len(ix) >= 3)
    return tenant, indexes


async def _list(env: Env, tenant: str, state: State, size: int = 0) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = await env.stub.ListEscalationTickets(
            pb.ListEscalationTicketsRequest(
                tenant_id=tenant, state=state, page_size=size, page_token=token
            )
        )
        ids.extend(t.ticket_id for t in page.tickets)
        token = page.next_page_token
        if not token:
            return ids


async def test_a_ticket_goes_from_open_to_claimed_to_resolved(env: Env) -> None:
    tenant, indexes = _tenant_orders(env)
    a, b, c = indexes[:3]
    low = await _open(env, a, orders_pb2.ESCALATION_REASON_CUSTOMER_REQUEST, "esc-key-000000000a")
    high = await _open(env, b, orders_pb2.ESCALATION_REASON_FRAUD_RISK, "esc-key-000000000b")
    later = await _open(env, c, orders_pb2.ESCALATION_REASON_FRAUD_RISK, "esc-key-000000000c")
    assert low.state == high.state == State.TICKET_STATE_OPEN
    assert low.summary.startswith("Case")
    assert (low.session_id, low.order_id) == (f"sess-{a:04d}-abcd", env.order(a).order_id)
    # Most urgent first: priority, then the oldest; pages of one see the same order.
    expected = [
        t.ticket_id
        for t in sorted(
            (low, high, later), key=lambda t: (t.priority, t.create_time.ToNanoseconds())
        )
    ]
    assert await _list(env, tenant, State.TICKET_STATE_OPEN) == expected
    assert await _list(env, tenant, State.TICKET_STATE_OPEN, size=1) == expected

    claim_req = pb.ClaimEscalationTicketRequest(
        tenant_id=tenant, ticket_id=high.ticket_id, agent_id="agent-ana"
    )
    claimed = (await env.stub.ClaimEscalationTicket(claim_req)).ticket
    assert claimed.state == State.TICKET_STATE_CLAIMED
    assert claimed.agent_id == "agent-ana"
    assert claimed.claim_time.seconds > 0
    # The same agent again: the ticket back, unchanged (a retried click).
    assert (await env.stub.ClaimEscalationTicket(claim_req)).ticket == claimed
    reason, metadata, _ = await refused(
        env.stub.ClaimEscalationTicket(
            pb.ClaimEscalationTicketRequest(
                tenant_id=tenant, ticket_id=high.ticket_id, agent_id="agent-bo"
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert (reason, metadata["agent_id"]) == ("TICKET_CLAIMED", "agent-ana")
    assert high.ticket_id not in await _list(env, tenant, State.TICKET_STATE_OPEN)
    assert await _list(env, tenant, State.TICKET_STATE_CLAIMED) == [high.ticket_id]
    got = await env.stub.GetEscalationTicket(
        pb.GetEscalationTicketRequest(tenant_id=tenant, ticket_id=high.ticket_id)
    )
    assert got.ticket == claimed

    async def resolve_req(
        agent: str, note: str, ticket_id: str = high.ticket_id
    ) -> orders_pb2.EscalationTicket:
        response: pb.ResolveEscalationTicketResponse = await env.stub.ResolveEscalationTicket(
            pb.ResolveEscalationTicketRequest(
                tenant_id=tenant, ticket_id=ticket_id, agent_id=agent, resolution=note
            )
        )
        return response.ticket

    reason, _, _ = await refused(
        resolve_req("agent-bo", "Refunded."), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert reason == "TICKET_CLAIMED"
    reason, _, _ = await refused(
        resolve_req("agent-ana", "Refunded.", low.ticket_id), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert reason == "TICKET_NOT_CLAIMED"
    done = await resolve_req("agent-ana", "Refunded after a carrier check.")
    assert done.state == State.TICKET_STATE_RESOLVED
    assert done.resolution == "Refunded after a carrier check."
    assert done.resolve_time.seconds > 0
    assert await resolve_req("agent-ana", "Refunded after a carrier check.") == done
    reason, _, _ = await refused(
        resolve_req("agent-ana", "Something else."), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert reason == "TICKET_RESOLVED"
    reason, _, _ = await refused(
        env.stub.ClaimEscalationTicket(claim_req), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert reason == "TICKET_RESOLVED"
    assert await _list(env, tenant, State.TICKET_STATE_RESOLVED) == [high.ticket_id]
    everything = await _list(env, tenant, State.TICKET_STATE_UNSPECIFIED)
    assert sorted(everything) == sorted(expected)


async def test_another_tenants_ticket_answers_exactly_like_a_missing_one(env: Env) -> None:
    tenant, (index, *_) = _tenant_orders(env)
    ticket = await _open(env, index, orders_pb2.ESCALATION_REASON_LOST_SHIPMENT, "esc-key-00000x01")
    other = next(t for t in set(env.tenant.values()) if t != tenant)
    assert await _list(env, other, State.TICKET_STATE_UNSPECIFIED) == []
    missing_id = "TCK-0000000000000000"
    for ticket_id in (ticket.ticket_id, missing_id):
        answers = [
            await refused(
                env.stub.GetEscalationTicket(
                    pb.GetEscalationTicketRequest(tenant_id=other, ticket_id=ticket_id)
                ),
                grpc.StatusCode.NOT_FOUND,
            ),
            await refused(
                env.stub.ClaimEscalationTicket(
                    pb.ClaimEscalationTicketRequest(
                        tenant_id=other, ticket_id=ticket_id, agent_id="agent-eve"
                    )
                ),
                grpc.StatusCode.NOT_FOUND,
            ),
        ]
        assert answers == [("TICKET_NOT_FOUND", {}, "no ticket with this id in this tenant")] * 2
    # Nothing the other tenant tried changed the ticket.
    mine = await env.stub.GetEscalationTicket(
        pb.GetEscalationTicketRequest(tenant_id=tenant, ticket_id=ticket.ticket_id)
    )
    assert mine.ticket.state == State.TICKET_STATE_OPEN


@pytest.mark.parametrize(
    ("field", "value"),
    [("ticket_id", "TCK-lower00000000000"), ("agent_id", "Agent With Spaces"), ("agent_id", "")],
)
async def test_a_malformed_claim_is_refused_with_the_rule(env: Env, field: str, value: str) -> None:
    tenant, _ = _tenant_orders(env)
    fields = {"tenant_id": tenant, "ticket_id": "TCK-0000000000000000", "agent_id": "agent-ana"}
    fields[field] = value
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await env.stub.ClaimEscalationTicket(pb.ClaimEscalationTicketRequest(**fields))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")


async def test_claims_and_resolutions_survive_a_reload_of_the_data(env: Env) -> None:
    tenant, (index, *_) = _tenant_orders(env)
    ticket = await _open(env, index, orders_pb2.ESCALATION_REASON_OUT_OF_SCOPE, "esc-key-00000r01")
    await env.stub.ClaimEscalationTicket(
        pb.ClaimEscalationTicketRequest(
            tenant_id=tenant, ticket_id=ticket.ticket_id, agent_id="agent-ana"
        )
    )
    tomorrow = seed.generate(anchor=ANCHOR + timedelta(days=1), customers_per_tenant=6)
    assert await env.store.load(tomorrow)
    got = await env.stub.GetEscalationTicket(
        pb.GetEscalationTicketRequest(tenant_id=tenant, ticket_id=ticket.ticket_id)
    )
    assert (got.ticket.state, got.ticket.agent_id) == (State.TICKET_STATE_CLAIMED, "agent-ana")


async def test_agents_racing_on_two_replicas_one_claim_wins(env: Env, opener: Opener) -> None:
    tenant, (index, *_) = _tenant_orders(env)
    ticket = await _open(env, index, orders_pb2.ESCALATION_REASON_FRAUD_RISK, "esc-key-00000c01")
    replicas = [env.store, await opener()]
    now = datetime.now(UTC)

    async def try_claim(i: int) -> str:
        store = replicas[i % 2]
        try:
            got = await store.change_ticket(
                tenant, ticket.ticket_id, claim(f"agent-{i:02d}", now=now)
            )
        except DomainError as exc:
            return exc.reason
        return got.agent_id

    outcomes = await asyncio.gather(*(try_claim(i) for i in range(12)))
    winners = [o for o in outcomes if o.startswith("agent-")]
    assert len(winners) == 1, outcomes
    assert outcomes.count("TICKET_CLAIMED") == 11
    stored = await replicas[1].ticket(tenant, ticket.ticket_id)
    assert stored is not None
    assert stored.agent_id == winners[0]
