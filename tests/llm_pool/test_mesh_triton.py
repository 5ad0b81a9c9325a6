"""The mesh with the CPU test Triton server at the head of the tracking chain (real processes)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc
import pytest
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from cli.launcher import Mesh
from cli.ports import free_base_port
from cli.triton import TritonServer, chain_env
from runtime import mesh
from tests.mesh.conftest import api_key

pytestmark = pytest.mark.mesh
TOKEN = re.compile(r"\w+|[^\w\s]")


@pytest.fixture(scope="module")
def triton_mesh(
    tmp_path_factory: pytest.TempPathFactory, triton_server: TritonServer
) -> Iterator[Mesh]:
    run_dir = tmp_path_factory.mktemp("mesh-triton")
    base = free_base_port(len(mesh.SERVICES))
    with Mesh(run_dir=run_dir, base_port=base, env=chain_env(triton_server)) as started:
        yield started


def _converse(m: Mesh, message: str, events: list[gw.TurnEvent]) -> None:
    md = [("x-api-key", api_key(m))]
    with grpc.insecure_channel(m.addresses["gateway"]) as ch:
        stub = gw_grpc.GatewayServiceStub(ch)
        request = gw.ConverseRequest(session_id="s-triton", user_id="acme-0001", message=message)
        for response in stub.Converse(request, metadata=md, timeout=10):
            events.append(response.event)


def test_a_turn_is_generated_by_triton_through_the_mesh(triton_mesh: Mesh) -> None:
    events: list[gw.TurnEvent] = []
    _converse(triton_mesh, "where is my order?", events)
    answer = "".join(e.delta.text for e in events if e.WhichOneof("kind") == "delta")
    assert answer.startswith("Here is what I found.")  # the test model's wording
    final = events[-1]
    assert final.WhichOneof("kind") == "final"
    (generation,) = final.final.usage.generations
    assert (generation.backend, generation.model) == ("triton", "waybill-cpu-test")
    # The test model's tokens are words and punctuation marks (the gateway may merge deltas).
    assert generation.output_tokens == len(TOKEN.findall(answer))


def test_a_stream_broken_mid_way_reaches_the_caller_as_an_error(triton_mesh: Mesh) -> None:
    events: list[gw.TurnEvent] = []
    with pytest.raises(grpc.RpcError) as caught:
        _converse(triton_mesh, "where is my order? [[test:break-after=3]]", events)
    kinds = [e.WhichOneof("kind") for e in events]
    answer = "".join(e.delta.text for e in events if e.WhichOneof("kind") == "delta")
    assert answer == "Here is what"  # three tokens, then the break
    assert kinds[-1] == "error"
    assert "final" not in kinds
    assert events[-1].error.reason == "BACKEND_STREAM_BROKEN"
    assert caught.value.code() != grpc.StatusCode.OK
