"""Exactly one refund when things break between the write and the reply, through real
processes: orders killed right after it wrote the refund, its reply dropped, the worker
killed while orders is answering, the turn's deadline expiring during ``initiate_refund``
after the write and before it. Each time the refund is made once or not at all, and the
customer's next turn (a retried confirmation, or any message) says which. A dropped reply
never reaches the customer: the worker's channel retries the write, which the key makes
find the refund already written.

One supervised mesh (a crashed service comes back, as under ``waybill up``); orders is
restarted with the faults of each case (``WAYBILL_FAULT_*``: after the handler, once per
case through a marker file).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from waybill.common.v1 import conversation_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from cli.launcher import Mesh, RestartPolicy
from cli.ports import free_base_port
from runtime import mesh
from runtime.errors import error_info_of
from tests.mesh.conversation import (
    Chat,
    action_of,
    kinds,
    orders_where,
    refundable_without_a_person,
    text_of,
)

pytestmark = pytest.mark.mesh

CONFIRM = conversation_pb2.DECISION_CONFIRM
EASY = orders_where(refundable_without_a_person)
SLOW_REPLY_MS = 4000
"""How long orders holds a reply in the deadline and worker-kill cases."""


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with Mesh(
        run_dir=tmp_path_factory.mktemp("refund-faults"),
        base_port=free_base_port(len(mesh.SERVICES)),
        restart=RestartPolicy(),
    ) as started:
        yield started


def _faults(m: Mesh, marker: Path, **env: str) -> None:
    """Restart orders with these faults on CreateRefund, firing once."""
    m.restart(
        "orders",
        env={
            "WAYBILL_FAULT_METHODS": "CreateRefund",
            "WAYBILL_FAULT_ONCE_FILE": str(marker),
            **{f"WAYBILL_FAULT_{k.upper()}": v for k, v in env.items()},
        },
    )


def _proposed(m: Mesh, name: str) -> tuple[Chat, conversation_pb2.PendingAction]:
    order = next(EASY)
    chat = Chat(m, order, f"session-fault-{name}-{order.order_id[-5:]}")
    proposed = chat.say(f"Order {order.order_id} never arrived, please refund it")
    assert "confirmation_request" in kinds(proposed), text_of(proposed)
    return chat, action_of(proposed)


def _refunds(chat: Chat) -> list[orders_pb2.Refund]:
    with grpc.insecure_channel(chat.m.addresses["orders"]) as ch:
        response = orders_grpc.OrdersServiceStub(ch).ListRefunds(
            orders.ListRefundsRequest(
                tenant_id=chat.tenant, user_id=chat.order.user_id, order_id=chat.order.order_id
            ),
            timeout=5,
        )
    return list(response.refunds)


def _failed_confirm(chat: Chat, action_id: str, key: str, timeout: float = 10) -> grpc.StatusCode:
    """A confirmation that does not come back with an answer: its status."""
    with grpc.insecure_channel(chat.m.addresses["gateway"]) as ch:
        request = chat.confirmation(action_id, CONFIRM, key)
        with pytest.raises(grpc.RpcError) as raised:
            list(chat._stub(ch).ConfirmAction(request, metadata=chat.md, timeout=timeout))
    code: grpc.StatusCode = raised.value.code()
    return code


def _truthful(chat: Chat, refund: orders_pb2.Refund, events: list[gw.TurnEvent]) -> None:
    assert kinds(events)[-1] == "final", text_of(events)
    assert "Done: I've refunded" in text_of(events)
    assert refund.refund_id in text_of(events)
    assert "confirmation_request" not in kinds(events)


def _wait_for(check: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_orders_killed_after_the_write_and_before_the_reply(
    supervised: Mesh, tmp_path: Path
) -> None:
    _faults(supervised, tmp_path / "fired", after="1", exit="1")
    chat, action = _proposed(supervised, "exit")
    pid = supervised.pid("orders")
    code = _failed_confirm(chat, action.action_id, "confirm-exit-000001")
    assert code == grpc.StatusCode.UNAVAILABLE  # retryable: the customer may try again
    _wait_for(lambda: supervised.pid("orders") != pid)  # the supervisor restarts it
    supervised.wait_serving("orders", 30)
    (refund,) = _refunds(chat)  # it was written before the process died
    assert refund.idempotency_key == action.action_id
    # The next turn tells the truth; nothing is refunded again.
    _truthful(chat, refund, chat.say("Did my refund go through?"))
    with pytest.raises(grpc.RpcError) as raised:
        chat.decide(action.action_id, CONFIRM, "confirm-exit-000002")
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "NO_PENDING_ACTION"
    assert len(_refunds(chat)) == 1


def test_a_dropped_reply_is_retried_into_the_same_refund(supervised: Mesh, tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    _faults(supervised, marker, after="1", status="UNAVAILABLE")
    chat, action = _proposed(supervised, "drop")
    # The worker's channel retries the refund whose reply was dropped; the key makes the
    # retry find the refund the first call wrote, so the customer sees one answer.
    done = chat.decide(action.action_id, CONFIRM, "confirm-drop-000001")
    assert marker.exists()  # the reply was dropped
    (refund,) = _refunds(chat)
    _truthful(chat, refund, done)
    # The customer clicks again anyway (the same request): the same answer, no new refund.
    assert chat.decide(action.action_id, CONFIRM, "confirm-drop-000001") == done
    assert _refunds(chat) == [refund]


def test_the_worker_killed_while_orders_answers(supervised: Mesh, tmp_path: Path) -> None:
    _faults(supervised, tmp_path / "fired", after="1", delay_ms=str(SLOW_REPLY_MS))
    chat, action = _proposed(supervised, "worker")
    codes: list[grpc.StatusCode] = []
    confirming = threading.Thread(
        target=lambda: codes.append(
            _failed_confirm(chat, action.action_id, "confirm-kill-000001", timeout=20)
        )
    )
    confirming.start()
    _wait_for(lambda: len(_refunds(chat)) == 1)  # written; the reply is still on its way
    pid = supervised.pid("negotiation")
    supervised.kill("negotiation")
    confirming.join(30)
    assert codes == [grpc.StatusCode.UNAVAILABLE]
    _wait_for(lambda: supervised.pid("negotiation") != pid)  # the supervisor restarts it
    supervised.wait_serving("negotiation", 30)
    (refund,) = _refunds(chat)
    # A new click (a new key): the worker finds the refund the first one made.
    _truthful(chat, refund, chat.decide(action.action_id, CONFIRM, "confirm-kill-000002"))
    assert _refunds(chat) == [refund]


def test_a_deadline_that_expires_after_the_write(supervised: Mesh, tmp_path: Path) -> None:
    _faults(supervised, tmp_path / "fired", after="1", delay_ms=str(SLOW_REPLY_MS))
    chat, action = _proposed(supervised, "late")
    code = _failed_confirm(chat, action.action_id, "confirm-late-000001", timeout=1.5)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    (refund,) = _refunds(chat)
    _truthful(chat, refund, chat.say("Did my refund go through?"))
    assert len(_refunds(chat)) == 1


def test_a_deadline_that_expires_before_the_write(supervised: Mesh, tmp_path: Path) -> None:
    _faults(supervised, tmp_path / "fired", delay_ms=str(SLOW_REPLY_MS))
    chat, action = _proposed(supervised, "early")
    code = _failed_confirm(chat, action.action_id, "confirm-early-00001", timeout=1.5)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(SLOW_REPLY_MS / 1000 + 0.5)  # long enough for a write that was coming
    assert _refunds(chat) == []
    # The next turn says so: the offer stands, nothing was refunded.
    asked = chat.say("Did my refund go through?")
    assert action_of(asked) == action
    assert "waiting for your answer" in text_of(asked)
    done = chat.decide(action.action_id, CONFIRM, "confirm-early-00002")
    (refund,) = _refunds(chat)
    _truthful(chat, refund, done)
