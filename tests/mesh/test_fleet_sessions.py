"""Fleet mode: with WAYBILL_REDIS_URL set, sessions live in the real Redis and
survive a gateway restart (the in-process store of the embedded default would not)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from tests.mesh.conversation import Conversation
from tests.support.redis_server import REDIS_URL, sync_prefix_or_skip

pytestmark = pytest.mark.mesh


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    client, prefix = sync_prefix_or_skip()
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def fleet_mesh(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str) -> Iterator[Mesh]:
    with Mesh(
        run_dir=tmp_path_factory.mktemp("fleet"),
        base_port=free_base_port(len(mesh.SERVICES)),
        services=["orders", "guardrails", "router", "tracking", "gateway"],
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
