"""Policy conversations through the real mesh: the router sends them to the policy
worker, which answers from the tenant's own knowledge base and cites the chunks."""

from __future__ import annotations

import grpc
import pytest
from waybill.common.v1 import intent_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.retrieval.v1 import retrieval_service_pb2 as retrieval
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as retrieval_grpc

from cli.launcher import Mesh
from tests.mesh.conftest import api_key, new_trace, rpc_lines
from tests.mesh.conversation import Conversation
from workers.policy.templates import NOT_FOUND

pytestmark = pytest.mark.mesh
CHARGERS = "acme-returns-electronics-us#usb-c-chargers-sku-9942-a-and-sku-9942-b"


def test_a_sku_question_gets_its_window_and_the_rule_that_states_it(running_mesh: Mesh) -> None:
    chat = Conversation(running_mesh, "acme-retail", "acme-0001", "policy-0001")
    reply = chat.say("Can I return SKU-9942-B after three weeks?")
    assert reply.final is not None
    assert reply.final.worker == intent_pb2.WORKER_POLICY
    assert reply.tools == ["get_return_window", "search_policy_kb"]
    assert reply.citations[0] == CHARGERS
    assert all(c.startswith("acme-") for c in reply.citations)
    # The window the answer states is the one retrieval computes for this customer.
    with grpc.insecure_channel(running_mesh.addresses["orders"]) as ch:
        customer = (
            orders_grpc.OrdersServiceStub(ch)
            .GetCustomer(
                orders.GetCustomerRequest(tenant_id="acme-retail", user_id="acme-0001"), timeout=5
            )
            .customer
        )
    with grpc.insecure_channel(running_mesh.addresses["retrieval"]) as ch:
        window = retrieval_grpc.RetrievalServiceStub(ch).GetReturnWindow(
            retrieval.GetReturnWindowRequest(
                tenant_id="acme-retail",
                sku="SKU-9942-B",
                tier=customer.tier,
                region=customer.region,
            ),
            timeout=5,
        )
    assert window.sku_rule
    assert f"within {window.days} days of delivery" in reply.answer
    assert [c.chunk_id for c in window.chunks] == reply.citations[: len(window.chunks)]
    # The session remembers what was cited.
    with grpc.insecure_channel(running_mesh.addresses["gateway"]) as ch:
        session = (
            gw_grpc.GatewayServiceStub(ch)
            .GetSession(
                gw.GetSessionRequest(session_id="policy-0001", user_id="acme-0001"),
                metadata=[("x-api-key", api_key(running_mesh))],
                timeout=5,
            )
            .session
        )
    assert list(session.state.policy.cited_chunk_ids) == reply.citations


@pytest.mark.parametrize(
    ("tenant", "user", "question", "first_citation"),
    [
        (
            "globex-home",
            "globex-0001",
            "Do I have a right of withdrawal in the EU?",
            "globex-withdrawal-right-eu#the-14-day-right-of-withdrawal",
        ),
        (
            "globex-home",
            "globex-0002",
            "How long do refunds take to reach my card?",
            "globex-refund-methods#refund-to-the-original-payment-method",
        ),
    ],
)
def test_scripted_policy_questions_cite_the_expected_chunk(
    running_mesh: Mesh, tenant: str, user: str, question: str, first_citation: str
) -> None:
    chat = Conversation(running_mesh, tenant, user, f"policy-{user}")
    reply = chat.say(question)
    assert reply.final is not None
    assert reply.tools == ["search_policy_kb"]
    assert reply.citations[0] == first_citation
    assert "[1]" in reply.answer
    assert "“" in reply.answer  # the policy's own words, quoted


def test_another_tenants_rule_code_never_brings_their_chunks(running_mesh: Mesh) -> None:
    """RET-EL-14 is an Acme rule; a Globex customer asking with it sees only Globex policy."""
    chat = Conversation(running_mesh, "globex-home", "globex-0001", "policy-cross-0001")
    reply = chat.say("Under RET-EL-14, can I return my charger after three weeks?")
    assert reply.final is not None
    assert reply.citations
    assert all(c.startswith("globex-") for c in reply.citations)
    assert "RET-EL-14" not in reply.answer.replace(
        "Under RET-EL-14, can I return my charger after three weeks?", ""
    )


def test_a_question_the_policies_do_not_answer_offers_a_person(running_mesh: Mesh) -> None:
    chat = Conversation(running_mesh, "acme-retail", "acme-0001", "policy-none-0001")
    reply = chat.say("do you offer gift wrapping?")
    assert reply.final is not None
    assert reply.citations == []
    assert reply.answer == NOT_FOUND


def test_one_trace_runs_from_the_gateway_through_the_policy_worker_to_retrieval(
    running_mesh: Mesh,
) -> None:
    trace_id, parent = new_trace()
    md = [("x-api-key", api_key(running_mesh)), ("traceparent", parent)]
    with grpc.insecure_channel(running_mesh.addresses["gateway"]) as ch:
        events = list(
            gw_grpc.GatewayServiceStub(ch).Converse(
                gw.ConverseRequest(
                    session_id="policy-trace-0001",
                    user_id="acme-0001",
                    message="Can I return SKU-9942-B after three weeks?",
                ),
                metadata=md,
                timeout=10,
            )
        )
    assert events[-1].event.WhichOneof("kind") == "final"
    assert rpc_lines(running_mesh.log_path("policy"), trace_id, method="/RunTurn")
    search = rpc_lines(running_mesh.log_path("retrieval"), trace_id, method="/Search")
    assert len(search) == 1
    assert search[0]["tenant"] == "acme-retail"
