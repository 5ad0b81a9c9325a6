"""Micro-batching with a real event loop and a real worker thread.

Tests synchronise on state, never on time: a run that has started (an event
the worker thread sets through the loop), the queue's length, a future's
completion. ``_until`` only yields to the loop so that already scheduled
tasks take their next step.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from router.batcher import BatchOptions, MicroBatcher
from runtime.errors import FailedPrecondition, ResourceExhausted, Unavailable


class Recorder:
    """A process function that records its batches, can be held back and can fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_runs: set[int] = set()
        """Run numbers (0-based) that raise instead of answering."""
        self.short_runs: set[int] = set()
        """Run numbers that answer one result too few."""
        self.refuse: Exception | None = None
        self._loop = asyncio.get_running_loop()
        self._started = 0
        self._changed = asyncio.Event()

    def __call__(self, items: list[int]) -> list[int]:
        run = len(self.batches)
        self.batches.append(list(items))
        self._loop.call_soon_threadsafe(self._entered)
        self.gate.wait(10)
        if self.refuse is not None:
            raise self.refuse
        if run in self.fail_runs:
            raise RuntimeError("model run failed")
        results = [i * 10 for i in items]
        return results[:-1] if run in self.short_runs else results

    def _entered(self) -> None:
        self._started += 1
        self._changed.set()

    async def started(self, runs: int) -> None:
        """Wait until ``runs`` runs have entered the process function."""
        async with asyncio.timeout(5):
            while self._started < runs:
                self._changed.clear()
                await self._changed.wait()


async def _until(condition: Callable[[], bool]) -> None:
    """Let scheduled tasks run until ``condition`` holds (no clock involved)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def _batcher(
    recorder: Recorder,
    *,
    max_batch: int,
    window_ms: float,
    max_queue: int = 2048,
    on_batch: Callable[[int, float], None] | None = None,
    on_stopped: Callable[[BaseException | None], None] | None = None,
    name: str = "test-batcher",
) -> MicroBatcher[int, int]:
    options = BatchOptions(max_batch=max_batch, window_ms=window_ms, max_queue=max_queue)
    batcher: MicroBatcher[int, int] = MicroBatcher(
        recorder, options=options, on_batch=on_batch, on_stopped=on_stopped, name=name
    )
    batcher.start()
    return batcher


async def test_concurrent_requests_share_runs_bounded_by_max_batch() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder, max_batch=8, window_ms=2.0)
    try:
        recorder.gate.clear()  # hold the first run so that the others queue behind it
        first = asyncio.ensure_future(batcher.submit(0))
        await recorder.started(1)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 30)]
        await _until(lambda: batcher.queued == 29)
        recorder.gate.set()
        results = await asyncio.gather(first, *rest)
    finally:
        await batcher.close()
    assert results == [i * 10 for i in range(30)]
    assert recorder.batches[0] == [0]
    assert [len(b) for b in recorder.batches[1:]] == [8, 8, 8, 5]
    assert sorted(i for b in recorder.batches for i in b) == list(range(30))


async def test_a_lone_request_does_not_wait_for_the_window() -> None:
    recorder = Recorder()
    # A window far longer than the test may take: only no-wait can pass.
    batcher = _batcher(recorder, max_batch=8, window_ms=60_000)
    try:
        for i in range(3):
            assert await asyncio.wait_for(batcher.submit(i), timeout=5) == i * 10
    finally:
        await batcher.close()
    assert recorder.batches == [[0], [1], [2]]


async def test_a_cancelled_caller_is_dropped_from_the_next_run() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder, max_batch=8, window_ms=0)
    try:
        recorder.gate.clear()
        held = asyncio.ensure_future(batcher.submit(0))
        await recorder.started(1)
        doomed = asyncio.ensure_future(batcher.submit(1))
        kept = asyncio.ensure_future(batcher.submit(2))
        await _until(lambda: batcher.queued == 2)
        doomed.cancel()
        recorder.gate.set()
        assert await held == 0
        assert await kept == 20
    finally:
        await batcher.close()
    assert recorder.batches == [[0], [2]]


async def test_a_full_queue_answers_resource_exhausted_with_retry() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder, max_batch=1, max_queue=2, window_ms=0)
    try:
        recorder.gate.clear()
        running = asyncio.ensure_future(batcher.submit(0))
        await recorder.started(1)
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await _until(lambda: batcher.queued == 2)
        with pytest.raises(ResourceExhausted) as raised:
            await batcher.submit(3)
        assert raised.value.reason == "ROUTER_OVERLOADED"
        assert raised.value.retry_after_s is not None
        recorder.gate.set()
        assert await asyncio.gather(running, *queued) == [0, 10, 20]
    finally:
        await batcher.close()


async def test_a_failed_run_fails_only_its_own_callers_and_the_next_run_works() -> None:
    recorder = Recorder()
    recorder.fail_runs = {1}
    stopped: list[BaseException | None] = []
    batcher = _batcher(recorder, max_batch=8, window_ms=0, on_stopped=stopped.append)
    try:
        recorder.gate.clear()
        held = asyncio.ensure_future(batcher.submit(0))
        await recorder.started(1)
        doomed = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
        await _until(lambda: batcher.queued == 3)
        recorder.gate.set()
        assert await held == 0
        for caller in doomed:
            with pytest.raises(Unavailable) as raised:
                await caller
            assert raised.value.reason == "CLASSIFIER_RUN_FAILED"
            assert "model run failed" not in raised.value.message  # nothing internal
        assert await batcher.submit(4) == 40
    finally:
        await batcher.close()
    assert recorder.batches == [[0], [1, 2, 3], [4]]
    assert batcher.queued == 0
    assert stopped == []


async def test_a_run_with_too_few_results_fails_that_run_only() -> None:
    recorder = Recorder()
    recorder.short_runs = {0}
    batcher = _batcher(recorder, max_batch=8, window_ms=0)
    try:
        with pytest.raises(Unavailable) as raised:
            await batcher.submit(1)
        assert raised.value.reason == "CLASSIFIER_RUN_FAILED"
        assert await batcher.submit(2) == 20
        assert batcher.running
    finally:
        await batcher.close()


async def test_a_domain_error_of_a_run_reaches_its_callers_unchanged() -> None:
    recorder = Recorder()
    recorder.refuse = FailedPrecondition("index is being rebuilt", reason="INDEX_REBUILDING")
    batcher = _batcher(recorder, max_batch=8, window_ms=0)
    try:
        with pytest.raises(FailedPrecondition) as raised:
            await batcher.submit(1)
        assert raised.value.reason == "INDEX_REBUILDING"
        recorder.refuse = None
        assert await batcher.submit(2) == 20
    finally:
        await batcher.close()


async def test_a_loop_ended_by_an_unexpected_error_says_so_and_refuses_later_calls() -> None:
    recorder = Recorder()
    stopped: list[BaseException | None] = []
    heard = asyncio.Event()

    def broken_hook(size: int, seconds: float) -> None:
        raise RuntimeError("metrics hook bug")

    def on_stopped(error: BaseException | None) -> None:
        stopped.append(error)
        heard.set()

    batcher = _batcher(
        recorder, max_batch=1, window_ms=0, on_batch=broken_hook, on_stopped=on_stopped
    )
    try:
        recorder.gate.clear()
        answered = asyncio.ensure_future(batcher.submit(0))
        await recorder.started(1)
        stranded = asyncio.ensure_future(batcher.submit(1))
        await _until(lambda: batcher.queued == 1)
        recorder.gate.set()
        # The run's own caller got its answer before the hook failed.
        assert await answered == 0
        await asyncio.wait_for(heard.wait(), timeout=5)
        with pytest.raises(Unavailable) as raised:
            await stranded
        assert raised.value.reason == "ROUTER_NOT_RUNNING"
        with pytest.raises(Unavailable):
            await batcher.submit(2)
        assert not batcher.running
    finally:
        await batcher.close()
    (error,) = stopped
    assert isinstance(error, RuntimeError)
    assert recorder.batches == [[0]]


async def test_a_stray_cancellation_of_the_loop_says_so() -> None:
    recorder = Recorder()
    stopped: list[BaseException | None] = []
    heard = asyncio.Event()

    def on_stopped(error: BaseException | None) -> None:
        stopped.append(error)
        heard.set()

    batcher = _batcher(recorder, max_batch=1, window_ms=0, on_stopped=on_stopped, name="stray")
    try:
        recorder.gate.clear()
        in_run = asyncio.ensure_future(batcher.submit(0))
        await recorder.started(1)
        (loop_task,) = [t for t in asyncio.all_tasks() if t.get_name() == "stray-loop"]
        loop_task.cancel()
        await asyncio.wait_for(heard.wait(), timeout=5)
        with pytest.raises(Unavailable) as raised:
            await in_run
        assert raised.value.reason == "ROUTER_NOT_RUNNING"
    finally:
        recorder.gate.set()
        await batcher.close()
    assert stopped == [None]


async def test_closing_fails_waiting_callers_with_unavailable_and_is_no_failure() -> None:
    recorder = Recorder()
    stopped: list[BaseException | None] = []
    batcher = _batcher(recorder, max_batch=1, window_ms=0, on_stopped=stopped.append)
    recorder.gate.clear()
    running = asyncio.ensure_future(batcher.submit(0))
    await recorder.started(1)
    waiting = asyncio.ensure_future(batcher.submit(1))
    await _until(lambda: batcher.queued == 1)
    closing = asyncio.ensure_future(batcher.close())
    # The run in progress is cut short: its caller hears before the thread ends.
    await _until(running.done)
    recorder.gate.set()
    await closing
    for caller in (running, waiting):
        with pytest.raises(Unavailable) as raised:
            await caller
        assert raised.value.reason == "ROUTER_STOPPING"
    with pytest.raises(Unavailable):
        await batcher.submit(2)
    assert stopped == []
