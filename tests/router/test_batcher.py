"""Micro-batching with a real event loop and a real worker thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from router.batcher import BatchOptions, MicroBatcher
from runtime.errors import ResourceExhausted, Unavailable


class Recorder:
    """A process function that records its batches and can be held back."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def __call__(self, items: list[int]) -> list[int]:
        self.gate.wait(10)
        self.batches.append(list(items))
        if self.fail:
            raise RuntimeError("model run failed")
        return [i * 10 for i in items]


async def _batcher(
    recorder: Recorder, *, max_batch: int, window_ms: float, max_queue: int = 2048
) -> MicroBatcher[int, int]:
    options = BatchOptions(max_batch=max_batch, window_ms=window_ms, max_queue=max_queue)
    batcher: MicroBatcher[int, int] = MicroBatcher(recorder, options=options)
    batcher.start()
    return batcher


async def test_concurrent_requests_share_runs_bounded_by_max_batch() -> None:
    recorder = Recorder()
    batcher = await _batcher(recorder, max_batch=8, window_ms=2.0)
    try:
        recorder.gate.clear()  # hold the first run so that the others queue behind it
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 30)]
        await asyncio.sleep(0.05)
        recorder.gate.set()
        results = await asyncio.gather(first, *rest)
    finally:
        await batcher.close()
    assert results == [i * 10 for i in range(30)]
    assert max(len(b) for b in recorder.batches) == 8
    assert len(recorder.batches) <= 1 + 4  # the held run, then full batches of 8
    assert sorted(i for b in recorder.batches for i in b) == list(range(30))


async def test_a_lone_request_does_not_wait_for_the_window() -> None:
    recorder = Recorder()
    # A window far longer than the test may take: only no-wait can pass.
    batcher = await _batcher(recorder, max_batch=8, window_ms=60_000)
    try:
        for i in range(3):
            assert await asyncio.wait_for(batcher.submit(i), timeout=5) == i * 10
    finally:
        await batcher.close()
    assert recorder.batches == [[0], [1], [2]]


async def test_a_cancelled_caller_is_dropped_from_the_next_run() -> None:
    recorder = Recorder()
    batcher = await _batcher(recorder, max_batch=8, window_ms=0)
    try:
        recorder.gate.clear()
        held = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)
        doomed = asyncio.ensure_future(batcher.submit(1))
        kept = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0.01)
        doomed.cancel()
        recorder.gate.set()
        assert await held == 0
        assert await kept == 20
    finally:
        await batcher.close()
    assert [1] not in recorder.batches
    assert all(1 not in b for b in recorder.batches)


async def test_a_full_queue_answers_resource_exhausted_with_retry() -> None:
    recorder = Recorder()
    batcher = await _batcher(recorder, max_batch=1, max_queue=2, window_ms=0)
    try:
        recorder.gate.clear()
        running = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0.01)
        with pytest.raises(ResourceExhausted) as raised:
            await batcher.submit(3)
        assert raised.value.reason == "ROUTER_OVERLOADED"
        assert raised.value.retry_after_s is not None
        recorder.gate.set()
        assert await asyncio.gather(running, *queued) == [0, 10, 20]
    finally:
        await batcher.close()


async def test_a_failed_run_fails_each_of_its_callers_and_the_next_run_works() -> None:
    recorder = Recorder()
    batcher = await _batcher(recorder, max_batch=8, window_ms=0)
    try:
        recorder.fail = True
        with pytest.raises(RuntimeError, match="model run failed"):
            await batcher.submit(1)
        recorder.fail = False
        assert await batcher.submit(2) == 20
    finally:
        await batcher.close()


async def test_closing_fails_waiting_callers_with_unavailable() -> None:
    recorder = Recorder()
    batcher = await _batcher(recorder, max_batch=1, window_ms=0)
    recorder.gate.clear()
    running = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(batcher.close())
    await asyncio.sleep(0.01)
    recorder.gate.set()
    await closing
    for caller in (running, waiting):
        with pytest.raises(Unavailable):
            await caller
    with pytest.raises(Unavailable):
        await batcher.submit(2)
