"""The rest-edge benchmark's HTTP/SSE client against a real edge and a stand-in gateway."""

from __future__ import annotations

from waybill.gateway.v1 import gateway_service_pb2 as pb

from bench import loadgen
from bench.scenario_rest_edge import HttpPool, PathTally, figures, rest_turn
from bench.scenarios import Turn
from tests.gateway.edge.conftest import StartEdge


def _turn(message: str) -> Turn:
    return Turn(
        "wb_key",
        pb.ConverseRequest(session_id="sess-0000001", user_id="acme-0001", message=message),
    )


async def test_outcomes_of_turns(start_edge: StartEdge) -> None:
    edge = await start_edge()
    pool = HttpPool(edge.url.removeprefix("http://"))
    try:
        ok = await rest_turn(pool, _turn("where is my order?"), 5.0)
        assert ok.bucket == loadgen.OK
        assert ok.first is not None
        assert ok.edge_ms is not None
        again = await rest_turn(pool, _turn("where is my order?"), 5.0)  # a kept-alive connection
        assert again.bucket == loadgen.OK
        assert len(edge.gateway.calls) == 2
        assert edge.gateway.last("Converse").metadata["x-api-key"] == "wb_key"
        refused = await rest_turn(pool, _turn("fail:UNAUTHENTICATED"), 5.0)
        assert refused.bucket == "UNAUTHENTICATED"
        assert refused.first is None
        broken = await rest_turn(pool, _turn("midfail:UNAVAILABLE"), 5.0)
        assert broken.bucket == "UNAVAILABLE"
        assert broken.first is not None
        cut = await rest_turn(pool, _turn("incomplete"), 5.0)
        assert cut.bucket == "INTERNAL"
        late = await rest_turn(pool, _turn("slow:2"), 0.3)
        assert late.bucket in {loadgen.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"}
    finally:
        await pool.close()


def test_added_latency_is_the_difference_of_percentiles() -> None:
    rest, grpc_ = PathTally(), PathTally()
    rest.first_ms = [float(x) for x in range(1, 101)]
    grpc_.first_ms = [float(x) - 0.5 for x in range(1, 101)]
    rest.edge_ms = [0.25] * 100
    result = figures(50.0, rest, grpc_)
    assert (result.rest_first_p50_ms, result.grpc_first_p50_ms) == (50.0, 49.5)
    assert (result.added_p50_ms, result.added_p95_ms) == (0.5, 0.5)
    assert result.edge_own_p95_ms == 0.25
    empty = figures(50.0, PathTally(), PathTally())
    assert empty.added_p50_ms is None
