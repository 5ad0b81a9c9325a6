"""The load generator against in-memory stubs: open loop, queueing counted, buckets.

These stubs stand in for gRPC calls so the tests can hold a turn open until
the test lets it go; they order events causally and assert no timings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from waybill.common.v1 import events_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from bench import loadgen
from bench.loadgen import LoadGenerator
from bench.scenarios import Turn
from bench.schedule import Schedule

EVENTS: dict[str, pb.TurnEvent] = {
    "delta": pb.TurnEvent(delta=events_pb2.TextDelta(text="x")),
    "final": pb.TurnEvent(final=pb.Final(answer="x")),
    "refusal": pb.TurnEvent(refusal=events_pb2.Refusal(message="no")),
    "error": pb.TurnEvent(error=events_pb2.TurnError(code=events_pb2.STATUS_CODE_UNAVAILABLE)),
    "escalation": pb.TurnEvent(escalation=events_pb2.Escalation(ticket_id="t")),
}


class FakeCall:
    """An async-iterable stand-in for a grpc.aio unary-stream call."""

    def __init__(self, kinds: Sequence[str], gate: asyncio.Event | None, log: list[str]) -> None:
        self._kinds = kinds
        self._gate = gate
        self._log = log

    def __aiter__(self) -> AsyncIterator[pb.ConverseResponse]:
        return self._events()

    async def _events(self) -> AsyncIterator[pb.ConverseResponse]:
        self._log.append("start")
        if self._gate is not None:
            await self._gate.wait()
        for kind in self._kinds:
            yield pb.ConverseResponse(event=EVENTS[kind])
        self._log.append("end")

    def cancel(self) -> bool:
        return True


class FakeStub:
    """Answers call ``i`` with ``scripts[i % len]``, each held until ``gates[i]`` is set."""

    def __init__(self, scripts: Sequence[Sequence[str]], *, gated: bool = False) -> None:
        self.scripts = scripts
        self.gates: list[asyncio.Event] = []
        self.log: list[str] = []
        self.gated = gated

    def has_calls(self, count: int) -> Callable[[], bool]:
        """A predicate: at least ``count`` calls were made."""
        return lambda: len(self.gates) >= count

    def Converse(self, request: pb.ConverseRequest, *, metadata: Any, timeout: float) -> FakeCall:
        assert dict(metadata)["x-api-key"] == "k"
        assert timeout > 0
        index = len(self.gates)
        gate = asyncio.Event()
        if not self.gated:
            gate.set()
        self.gates.append(gate)
        return FakeCall(self.scripts[index % len(self.scripts)], gate, self.log)


def _source(index: int) -> Turn:
    return Turn(
        "k", pb.ConverseRequest(session_id=f"session{index:04d}", user_id="u01", message="m")
    )


async def _until(predicate: Callable[[], bool]) -> None:
    """Wait (bounded) until ``predicate()`` holds, polling between loop turns.

    Polling rather than an Event: the conditions are the generator's own
    counters, which have no hook to signal on.
    """
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.mark.parametrize(
    ("kinds", "bucket"),
    [
        (["delta", "final"], "OK"),
        (["delta", "refusal"], "REFUSAL"),
        (["error"], "TURN_ERROR"),
        (["delta"], "NO_FINAL"),
        ([], "NO_FINAL"),
        (["delta", "escalation"], "NO_FINAL"),
        (["final", "delta"], "NO_FINAL"),  # a stream must *end* with final
    ],
)
async def test_outcome_buckets(kinds: list[str], bucket: str) -> None:
    stub = FakeStub([kinds])
    tally = await LoadGenerator(Schedule(rate=200, duration_s=0.02), _source, [stub]).run()
    assert tally.sent == 4
    assert tally.sent == tally.completed + tally.errors
    if bucket == "OK":
        assert tally.completed == 4
        assert len(tally.latencies_ms) == len(tally.first_event_ms) == 4
    else:
        assert dict(tally.buckets) == {bucket: 4}
        assert tally.latencies_ms == []


async def test_open_loop_does_not_wait_for_responses() -> None:
    """Every arrival is sent on schedule even though no earlier turn has finished."""
    stub = FakeStub([["delta", "final"]], gated=True)
    generator = LoadGenerator(Schedule(rate=200, duration_s=0.05), _source, [stub], concurrency=64)
    run = asyncio.create_task(generator.run())
    await _until(lambda: stub.log.count("start") == 10)
    assert "end" not in stub.log
    assert generator.tally.in_flight == 10
    for gate in stub.gates:
        gate.set()
    tally = await run
    assert tally.completed == 10
    assert tally.max_in_flight == 10


async def test_warmup_turns_are_sent_but_not_counted() -> None:
    stub = FakeStub([["final"], ["delta"]])
    tally = await LoadGenerator(
        Schedule(rate=100, duration_s=0.06, warmup_s=0.04), _source, [stub]
    ).run()
    assert len(stub.gates) == 10  # 4 warm-up + 6 measured calls made
    assert tally.sent == 6
    # Calls 4..9 are measured: even ones end with final, odd ones do not.
    assert tally.completed == 3
    assert dict(tally.buckets) == {"NO_FINAL": 3}
    assert tally.finished == 10


class StepClock:
    """A clock that moves only when told (plus real time, so scheduling still advances)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.perf_counter() + self.offset


async def test_queue_wait_behind_the_cap_is_counted() -> None:
    """With one slot, later turns' latency includes their wait for the slot."""
    stub = FakeStub([["final"]], gated=True)
    clock = StepClock()
    generator = LoadGenerator(
        Schedule(rate=100, duration_s=0.03), _source, [stub], concurrency=1, clock=clock
    )
    run = asyncio.create_task(generator.run())
    await _until(lambda: generator.tally.dispatched == 3)
    assert stub.log.count("start") == 1  # the other two wait for the slot
    # Every intended start is behind us; hold the slot for 1 s of the generator's time.
    clock.offset += 1.0
    for i in range(3):
        await _until(stub.has_calls(i + 1))  # call i starts only when the slot frees
        stub.gates[i].set()
    tally = await run
    assert tally.completed == 3
    # Each turn ended after the hold, so from its intended start each took at
    # least that long; measured from its own send, turns 1 and 2 would show
    # almost nothing.
    assert all(latency >= 1000.0 for latency in tally.latencies_ms), tally.latencies_ms


async def test_round_robin_over_stubs() -> None:
    stubs = [FakeStub([["final"]]) for _ in range(3)]
    tally = await LoadGenerator(Schedule(rate=200, duration_s=0.045), _source, stubs).run()
    assert tally.completed == 9
    assert [len(s.gates) for s in stubs] == [3, 3, 3]


def test_rejects_bad_settings() -> None:
    schedule = Schedule(rate=1, duration_s=1)
    with pytest.raises(ValueError, match="concurrency"):
        LoadGenerator(schedule, _source, [FakeStub([["final"]])], concurrency=0)
    with pytest.raises(ValueError, match="stub"):
        LoadGenerator(schedule, _source, [])


def test_classify() -> None:
    assert loadgen.classify("final") == loadgen.OK
    assert loadgen.classify(None) == loadgen.NO_FINAL
