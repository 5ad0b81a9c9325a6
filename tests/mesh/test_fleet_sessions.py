"""Fleet mode: with WAYBILL_REDIS_URL set, sessions live in the real Redis and
survive a gateway restart (the in-process store of the embedded default would not), and
two gateway processes confirming one refund at once make it once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import redis
from waybill.common.v1 import conversation_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from runtime.errors import error_info_of
from tests.mesh.conversation import (
    DATA,
    Chat,
    Conversation,
    action_of,
    refundable_without_a_person,
    text_of,
)
from tests.support.redis_server import REDIS_URL
from tests.support.replicas import gateway_replica

pytestmark = pytest.mark.mesh


@pytest.fixture(scope="module")
def fleet_mesh(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str) -> Iterator[Mesh]:
    with Mesh(
        run_dir=tmp_path_factory.mktemp("fleet"),
        base_port=free_base_port(len(mesh.SERVICES)),
        services=["orders", "guardrails", "router", "tracking", "negotiation", "ledger", "gateway"],
        env={"WAYBILL_REDIS_URL": REDIS_URL, "WAYBILL_REDIS_PREFIX": redis_prefix},
    ) as started:
        yield started


def test_sessions_live_in_redis_and_survive_a_gateway_restart(
    fleet_mesh: Mesh, redis_prefix: str
) -> None:
    session = f"fleet-{uuid.uuid4().hex[:8]}"
    chat = Conversation(fleet_mesh, "acme-retail", "acme-0002", session)
    chat.say("where is my package?")
    chosen = chat.say("the first one")
    assert chosen.focus_awb
    # Keyed by tenant, customer and session id: another customer's id is another key.
    key = f"{redis_prefix}session:{{acme-retail}}:acme-0002:{session}"
    direct = redis.Redis.from_url(REDIS_URL)
    try:
        assert direct.exists(key) == 1
        assert 0 < direct.pttl(key) <= 1_800_000
        version, state = direct.hmget(key, ["v", "s"])
        assert int(version or 0) >= 2  # one write per turn so far
        assert state
    finally:
        direct.close()
    fleet_mesh.restart("gateway")
    after = chat.say("when will it arrive?")
    assert after.focus_awb == chosen.focus_awb
    assert after.tools == ["get_eta"]


@pytest.fixture
def second_gateway(fleet_mesh: Mesh) -> Iterator[str]:
    """Another gateway process beside the mesh's own, on the same Redis: a replica."""
    with gateway_replica(fleet_mesh) as address:
        yield address


def test_two_gateway_processes_confirming_at_once_make_one_refund(
    fleet_mesh: Mesh, second_gateway: str
) -> None:
    order = next(o for o in DATA.orders if refundable_without_a_person(o))
    chat = Chat(fleet_mesh, order, f"fleet-refund-{uuid.uuid4().hex[:8]}")
    action = action_of(chat.say(f"Order {order.order_id} never arrived, please refund it"))
    replicas = [fleet_mesh.addresses["gateway"], second_gateway]

    def confirm(i: int) -> str:
        """The refund id this device was told about, or the reason it was refused."""
        with grpc.insecure_channel(replicas[i % 2]) as ch:
            request = gw.ConfirmActionRequest(
                session_id=chat.session,
                user_id=order.user_id,
                action_id=action.action_id,
                decision=conversation_pb2.DECISION_CONFIRM,
                # Two devices: a key of their own each (one key would replay, not race).
                idempotency_key=f"fleet-confirm-key-{i:04d}",
            )
            stub = gw_grpc.GatewayServiceStub(ch)
            try:
                events = [
                    r.event for r in stub.ConfirmAction(request, metadata=chat.md, timeout=15)
                ]
            except grpc.RpcError as exc:
                info = error_info_of(exc)
                return info.reason if info else str(exc.code())
        (refund_id,) = re.findall(r"REF-[0-9A-F]{16}", text_of(events))
        return str(refund_id)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(confirm, range(2)))
    assert chat.refunded() == order.total.minor_units  # once, not twice
    told = {a for a in answers if a.startswith("REF-")}
    assert len(told) == 1, answers  # whoever is told is told about the same refund
    # The later device either raced in and found that refund, or found nothing pending.
    assert set(answers) - told <= {"NO_PENDING_ACTION"}, answers
