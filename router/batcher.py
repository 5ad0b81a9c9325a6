"""Micro-batching: concurrent requests share one model run.

Requests queue while a batch runs; the next run takes everything waiting (up
to ``max_batch``). When the router is under load (the last run held more than
one request and ended moments ago), the batcher waits up to ``window_ms``
after the oldest queued request for more to arrive; a lone request on an idle
router never waits. Runs happen one at a time on a dedicated thread, so the event loop
keeps accepting and answering calls while the model computes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from runtime.errors import ResourceExhausted, Unavailable

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """Batching knobs."""

    max_batch: int = 32
    """Requests per model run at most."""
    window_ms: float = 2.0
    """Extra wait for company under load; 0 disables it (pure run-while-busy batching)."""
    max_queue: int = 2048
    """Requests waiting at most; beyond it callers get RESOURCE_EXHAUSTED with a retry delay."""


@dataclass(slots=True)
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    queued_at: float


class MicroBatcher(Generic[T, R]):
    """Runs ``process`` over batches of submitted items on one worker thread.

    ``process`` maps a list of items to a list of results of the same length;
    it runs on the batcher's thread, never on the event loop. ``on_batch``
    hears each run's size and seconds (metrics).
    """

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R]],
        *,
        options: BatchOptions | None = None,
        on_batch: Callable[[int, float], None] | None = None,
        name: str = "batcher",
    ) -> None:
        self._process = process
        self.options = options or BatchOptions()
        self._on_batch = on_batch
        self._queue: deque[_Pending[T, R]] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._task: asyncio.Task[None] | None = None
        self._last_size = 0
        self._last_end = 0.0
        self._closed = False

    @property
    def queued(self) -> int:
        """Requests waiting for a run."""
        return len(self._queue)

    def start(self) -> None:
        """Start the batching task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, item: T) -> R:
        """The result for ``item``; cancelling the caller drops it from its batch."""
        if self._closed or self._task is None:
            raise Unavailable("the classifier is not running", reason="ROUTER_NOT_RUNNING")
        if len(self._queue) >= self.options.max_queue:
            raise ResourceExhausted(
                f"the router has {len(self._queue)} requests queued; retry shortly",
                reason="ROUTER_OVERLOADED",
                retry_after_s=0.05,
            )
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(item, future, time.monotonic()))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Stop batching; waiting callers (and those of a run cut short) get UNAVAILABLE."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        _fail_stopping(self._queue)
        self._queue.clear()
        # A run in progress finishes on its thread; nobody waits for it.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _take(self, batch: list[_Pending[T, R]]) -> None:
        while self._queue and len(batch) < self.options.max_batch:
            pending = self._queue.popleft()
            if not pending.future.done():  # a cancelled caller needs no run
                batch.append(pending)

    def _under_load(self, window: float) -> bool:
        """Company is likely: the last run was shared and ended moments ago."""
        return self._last_size > 1 and time.monotonic() - self._last_end < 4 * window

    async def _gather_more(self, batch: list[_Pending[T, R]]) -> None:
        """Under load, wait out the window after the oldest request for company."""
        window = self.options.window_ms / 1000
        if window and len(batch) < self.options.max_batch and self._under_load(window):
            wait = batch[0].queued_at + window - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._take(batch)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch: list[_Pending[T, R]] = []
                self._take(batch)
                if not batch:
                    continue
                try:
                    await self._gather_more(batch)
                    self._last_size = len(batch)
                    began = time.perf_counter()
                    results = await loop.run_in_executor(
                        self._executor, self._process, [p.item for p in batch]
                    )
                except asyncio.CancelledError:  # closing: the batch's callers must not hang
                    _fail_stopping(batch)
                    raise
                except Exception as exc:  # every caller of the run hears of it
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(exc)
                    continue
                finally:
                    self._last_end = time.monotonic()
                if self._on_batch is not None:
                    self._on_batch(len(batch), time.perf_counter() - began)
                for pending, result in zip(batch, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(result)


def _fail_stopping(pendings: Iterable[_Pending[T, R]]) -> None:
    for pending in pendings:
        if not pending.future.done():
            pending.future.set_exception(
                Unavailable("the router is stopping", reason="ROUTER_STOPPING")
            )
