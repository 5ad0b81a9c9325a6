"""The answer cache through the real mesh: the second identical policy question is served
from the cache (embedded: in the gateway's memory; fleet: Redis, across replicas), never
across tenants, and tracking answers never are."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import redis
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from tests.mesh.conftest import api_key
from tests.mesh.conversation import Conversation
from tests.support.redis_server import REDIS_URL
from tests.support.replicas import gateway_replica

pytestmark = pytest.mark.mesh
QUESTION = "Do I have a right of withdrawal in the EU?"


def test_the_second_identical_policy_question_is_answered_from_the_cache(
    running_mesh: Mesh,
) -> None:
    first = Conversation(running_mesh, "globex-home", "globex-0001", "cache-first-0001").say(
        QUESTION
    )
    assert first.final is not None
    assert not first.final.cache_hit
    assert first.tools == ["search_policy_kb"]
    again = Conversation(running_mesh, "globex-home", "globex-0001", "cache-again-0001")
    second = again.say("do i have a right of withdrawal in the EU")
    assert second.final is not None
    assert second.final.cache_hit
    assert second.tools == []  # no worker, no retrieval
    assert second.answer == first.answer
    assert second.citations == first.citations
    assert second.final.usage.input_tokens == 0


def test_a_near_duplicate_policy_question_is_answered_from_the_cache(running_mesh: Mesh) -> None:
    # Not equal once normalised: found by the router's vector of it (cosine ~0.99).
    asked = "How does the EU right of withdrawal work?"
    first = Conversation(running_mesh, "globex-home", "globex-0001", "cache-near-0001").say(asked)
    assert first.final is not None
    assert not first.final.cache_hit
    near = Conversation(running_mesh, "globex-home", "globex-0001", "cache-near-0002").say(
        "How does the right of withdrawal in the EU work?"
    )
    assert near.final is not None
    assert near.final.cache_hit
    assert near.answer == first.answer


def test_the_same_question_from_another_tenant_is_answered_afresh(running_mesh: Mesh) -> None:
    Conversation(running_mesh, "globex-home", "globex-0001", "cache-tenant-0001").say(QUESTION)
    other = Conversation(running_mesh, "acme-retail", "acme-0001", "cache-tenant-0002").say(
        QUESTION
    )
    assert other.final is not None
    assert not other.final.cache_hit
    assert other.tools == ["search_policy_kb"]
    assert all(c.startswith("acme-") for c in other.citations)


def test_a_tracking_question_is_never_served_from_the_cache(running_mesh: Mesh) -> None:
    for session in ("cache-track-0001", "cache-track-0002"):
        reply = Conversation(running_mesh, "acme-retail", "acme-0001", session).say(
            "where is my package?"
        )
        assert reply.final is not None
        assert not reply.final.cache_hit


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str) -> Iterator[Mesh]:
    with Mesh(
        run_dir=tmp_path_factory.mktemp("cache-fleet"),
        base_port=free_base_port(len(mesh.SERVICES)),
        services=["orders", "guardrails", "router", "retrieval", "policy", "ledger", "gateway"],
        env={"WAYBILL_REDIS_URL": REDIS_URL, "WAYBILL_REDIS_PREFIX": redis_prefix},
    ) as started:
        yield started


def test_a_policy_answer_kept_by_one_gateway_replica_is_served_by_another(
    fleet: Mesh, redis_prefix: str
) -> None:
    first = Conversation(fleet, "globex-home", "globex-0001", "cache-fleet-0001").say(QUESTION)
    assert first.final is not None
    assert not first.final.cache_hit
    direct = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(direct.scan_iter(match=f"{redis_prefix}cache:*"))
        assert keys
        assert all(k.startswith(f"{redis_prefix}cache:{{globex-home}}:".encode()) for k in keys)
    finally:
        direct.close()
    with gateway_replica(fleet) as address, grpc.insecure_channel(address) as ch:
        events = [
            r.event
            for r in gw_grpc.GatewayServiceStub(ch).Converse(
                gw.ConverseRequest(
                    session_id="cache-fleet-0002", user_id="globex-0001", message=QUESTION
                ),
                metadata=[("x-api-key", api_key(fleet, "globex-home"))],
                timeout=10,
            )
        ]
    final = events[-1].final
    assert final.cache_hit
    assert final.answer == first.answer
