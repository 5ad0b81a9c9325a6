"""A worker or orders killed mid-conversation: the turn fails fast with
UNAVAILABLE (never a hang, never INTERNAL), and after a restart the next turn
succeeds with the session intact."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from tests.mesh.conversation import Conversation

pytestmark = pytest.mark.mesh
SERVICES = ["orders", "guardrails", "router", "tracking", "ledger", "gateway"]


@pytest.fixture(scope="module")
def fragile_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """A mesh of its own: these tests kill processes."""
    with Mesh(
        run_dir=tmp_path_factory.mktemp("fragile"),
        base_port=free_base_port(len(mesh.SERVICES)),
        services=SERVICES,
    ) as started:
        yield started


def _fails_unavailable(chat: Conversation, message: str) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        chat.say(message, timeout=10)
    # A turn that hung on the dead process would end DEADLINE_EXCEEDED instead.
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("victim", ["tracking", "orders"])
def test_killed_dependency_then_restart(fragile_mesh: Mesh, victim: str) -> None:
    chat = Conversation(fragile_mesh, "acme-retail", "acme-0002", f"fragile-{victim}-1")
    chat.say("where is my package?")
    chosen = chat.say("the second one")
    assert chosen.focus_awb
    fragile_mesh.kill(victim)
    _fails_unavailable(chat, "when will it arrive?")
    fragile_mesh.restart(victim)
    after = chat.say("when will it arrive?")
    # The session survived: "it" is still the order chosen before the failure.
    assert after.focus_awb == chosen.focus_awb
    assert after.tools == ["get_eta"]
    assert chosen.focus_awb in after.answer
