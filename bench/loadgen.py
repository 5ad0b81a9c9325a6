"""The open-loop load generator.

One dispatcher task walks the fixed schedule and starts a task per arrival at
its intended time, whether or not earlier turns have finished. A turn waits
for a slot under the concurrency cap, then opens a Converse stream and reads
it to the end. Every latency is taken from the *intended* start, so waiting
for a slot, or a dispatcher running late, shows up in the numbers instead of
silently lowering the offered load.

All stamps come from ``time.perf_counter``, not ``loop.time()``: uvloop's
loop clock has millisecond resolution and is cached per loop iteration, which
would quantise every latency and hide the loop's own delays.

The deadline is a budget from the intended start too (a user's patience starts
when they press enter): a turn still queued when its budget runs out fails
with DEADLINE_EXCEEDED without being sent, which also bounds how long the run
can drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import grpc

from bench import gateway
from bench.scenarios import Turn, TurnSource
from bench.schedule import Schedule

OK = "OK"
REFUSAL = "REFUSAL"
TURN_ERROR = "TURN_ERROR"
NO_FINAL = "NO_FINAL"
CANCELLED = "CANCELLED"
CLIENT_ERROR = "CLIENT_ERROR"
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.name

# Head start before arrival 0 so that it is not late merely because setup ran.
_LEAD_S = 0.05
# Extra time the drain allows past the last deadline before it cancels turns
# (only a stuck transport needs it; every turn has its own deadline).
_DRAIN_GRACE_S = 2.0


def classify(last_kind: str | None) -> str:
    """Outcome of a stream that ended with status OK, from its last event kind."""
    if last_kind == "final":
        return OK
    if last_kind == "refusal":
        return REFUSAL
    if last_kind == "error":
        return TURN_ERROR
    return NO_FINAL


@dataclass(slots=True)
class Tally:
    """Counters and samples of one run.

    ``sent``/``completed``/``buckets`` and the samples cover measured turns
    only; ``dispatched``/``finished``/``failed`` cover all turns and feed the
    progress line.
    """

    sent: int = 0
    completed: int = 0
    buckets: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    first_event_ms: list[float] = field(default_factory=list)
    queue_timeouts: int = 0
    dispatch_lag_max_ms: float = 0.0
    max_in_flight: int = 0
    window_start: float = 0.0
    window_end: float = 0.0
    dispatched: int = 0
    finished: int = 0
    failed: int = 0
    client_error: str | None = None

    @property
    def errors(self) -> int:
        """Measured turns that did not end OK."""
        return sum(self.buckets.values())

    @property
    def in_flight(self) -> int:
        """Turns dispatched and not finished (queued for a slot included)."""
        return self.dispatched - self.finished

    def record(
        self,
        *,
        warmup: bool,
        intended: float,
        first_event: float | None,
        end: float,
        bucket: str,
    ) -> None:
        """Count one finished turn."""
        self.finished += 1
        if bucket != OK:
            self.failed += 1
        if warmup:
            return
        self.window_end = max(self.window_end, end)
        if bucket != OK:
            self.buckets[bucket] += 1
            return
        self.completed += 1
        self.latencies_ms.append((end - intended) * 1000.0)
        if first_event is not None:
            self.first_event_ms.append((first_event - intended) * 1000.0)


Clock = Callable[[], float]


async def read_turn(
    stub: Any, turn: Turn, timeout_s: float, clock: Clock = time.perf_counter
) -> tuple[str, float | None]:
    """Send one turn and read its stream to the end: (bucket, first-event time)."""
    call = stub.Converse(turn.request, metadata=gateway.metadata(turn.api_key), timeout=timeout_s)
    first: float | None = None
    last_kind: str | None = None
    try:
        async for response in call:
            if first is None:
                first = clock()
            last_kind = response.event.WhichOneof("kind")
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, first
    except asyncio.CancelledError:
        # Leave nothing running on the server side for an abandoned turn.
        call.cancel()
        raise
    return classify(last_kind), first


class LoadGenerator:
    """Runs one schedule of turns against round-robin stubs."""

    def __init__(
        self,
        schedule: Schedule,
        source: TurnSource,
        stubs: Sequence[Any],
        *,
        concurrency: int = 256,
        deadline_s: float = 5.0,
        progress: TextIO | None = None,
        progress_interval_s: float = 1.0,
        clock: Clock = time.perf_counter,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if deadline_s <= 0:
            raise ValueError(f"deadline must be positive, got {deadline_s}")
        if not stubs:
            raise ValueError("need at least one stub")
        self.schedule = schedule
        self.tally = Tally()
        self._source = source
        self._stubs = tuple(stubs)
        self._slots = asyncio.Semaphore(concurrency)
        self._deadline_s = deadline_s
        self._progress = progress
        self._progress_interval_s = progress_interval_s
        self._active = 0
        self._phase = "warmup"
        self._clock = clock

    async def run(self) -> Tally:
        """Dispatch every arrival, wait for all turns, return the tally."""
        t0 = self._clock() + _LEAD_S
        self.tally.window_start = self.schedule.intended_start(t0, self.schedule.warmup_count)
        tasks: set[asyncio.Task[None]] = set()
        reporter = None
        if self._progress is not None:
            reporter = asyncio.create_task(self._report_progress(t0))
        try:
            await self._dispatch(t0, tasks)
            self._phase = "drain"
            await self._drain(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
                self._print_progress(t0)
        return self.tally

    async def _dispatch(self, t0: float, tasks: set[asyncio.Task[None]]) -> None:
        for index in range(self.schedule.total):
            warmup = self.schedule.is_warmup(index)
            # Built before the wait, so building never delays the send itself.
            turn = self._source(index)
            stub = self._stubs[index % len(self._stubs)]
            intended = self.schedule.intended_start(t0, index)
            delay = intended - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if not warmup:
                self._phase = "measure"
                self.tally.sent += 1
                lag_ms = (self._clock() - intended) * 1000.0
                self.tally.dispatch_lag_max_ms = max(self.tally.dispatch_lag_max_ms, lag_ms)
            self.tally.dispatched += 1
            self.tally.max_in_flight = max(self.tally.max_in_flight, self.tally.in_flight)
            task = asyncio.create_task(self._turn(intended, turn, stub, warmup=warmup))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        if tasks:
            # Every turn ends by its deadline; the wait bound is only a backstop.
            await asyncio.wait(set(tasks), timeout=self._deadline_s + _LEAD_S + _DRAIN_GRACE_S)

    async def _turn(
        self,
        intended: float,
        turn: Turn,
        stub: Any,
        *,
        warmup: bool,
    ) -> None:
        bucket, first = CANCELLED, None
        try:
            bucket, first = await self._converse(intended, turn, stub, warmup=warmup)
        finally:
            # Runs on cancellation too, so every dispatched turn is counted once.
            self.tally.record(
                warmup=warmup,
                intended=intended,
                first_event=first,
                end=self._clock(),
                bucket=bucket,
            )

    async def _converse(
        self,
        intended: float,
        turn: Turn,
        stub: Any,
        *,
        warmup: bool,
    ) -> tuple[str, float | None]:
        budget_end = intended + self._deadline_s
        try:
            # Relative timeout: budget_end is on our clock, not the loop's.
            async with asyncio.timeout(budget_end - self._clock()):
                await self._slots.acquire()
        except TimeoutError:
            if not warmup:
                self.tally.queue_timeouts += 1
            return DEADLINE_EXCEEDED, None
        self._active += 1
        try:
            remaining = budget_end - self._clock()
            if remaining <= 0:
                return DEADLINE_EXCEEDED, None
            return await read_turn(stub, turn, remaining, self._clock)
        except Exception as exc:  # a client-side bug must not stop the run
            if self.tally.client_error is None:
                self.tally.client_error = repr(exc)
            return CLIENT_ERROR, None
        finally:
            self._active -= 1
            self._slots.release()

    async def _report_progress(self, t0: float) -> None:
        while True:
            await asyncio.sleep(self._progress_interval_s)
            self._print_progress(t0)

    def _print_progress(self, t0: float) -> None:
        if self._progress is None:
            return
        t = self.tally
        print(
            f"[{max(0.0, self._clock() - t0):6.1f}s] {self._phase:<7} sent={t.dispatched} "
            f"done={t.finished} in_flight={t.in_flight} active={self._active} errors={t.failed}",
            file=self._progress,
            flush=True,
        )
