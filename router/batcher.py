"""Micro-batching: concurrent requests share one model run.

Requests queue while a batch runs; the next run takes everything waiting (up
to ``max_batch``). When the router is under load (the last run held more than
one request and ended moments ago), the batcher waits up to ``window_ms``
after the oldest queued request for more to arrive; a lone request on an idle
router never waits. Runs happen one at a time on a dedicated thread, so the event loop
keeps accepting and answering calls while the model computes.

A failing run fails only its own callers (UNAVAILABLE, ``CLASSIFIER_RUN_FAILED``;
the next run is tried as usual). If the batching loop itself ever ends other
than through :meth:`MicroBatcher.close` (a bug in it, or a stray cancellation),
nothing would answer again: its waiting callers get UNAVAILABLE, every later
one too, and ``on_stopped`` is told so that the process can report NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from runtime.errors import DomainError, ResourceExhausted, Unavailable

log = logging.getLogger("waybill.router")

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
    hears each run's size and seconds (metrics). ``on_stopped`` hears, once,
    that the batching loop ended without :meth:`close` (with the exception
    that ended it, or None when it was cancelled).
    """

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R]],
        *,
        options: BatchOptions | None = None,
        on_batch: Callable[[int, float], None] | None = None,
        on_stopped: Callable[[BaseException | None], None] | None = None,
        name: str = "batcher",
    ) -> None:
        self._process = process
        self.options = options or BatchOptions()
        self._on_batch = on_batch
        self._on_stopped = on_stopped
        self._name = name
        self._queue: deque[_Pending[T, R]] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._task: asyncio.Task[None] | None = None
        self._last_size = 0
        self._last_end = 0.0
        self._closed = False
        self._broken = False

    @property
    def queued(self) -> int:
        """Requests waiting for a run."""
        return len(self._queue)

    @property
    def running(self) -> bool:
        """Whether the batching loop is alive and accepting requests."""
        return self._task is not None and not self._task.done() and not self._closed

    def start(self) -> None:
        """Start the batching task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"{self._name}-loop"
            )
            self._task.add_done_callback(self._loop_ended)

    async def submit(self, item: T) -> R:
        """The result for ``item``; cancelling the caller drops it from its batch."""
        if self._broken:
            raise _stopped_error()
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
            # A loop that already died has told on_stopped and logged why.
            await asyncio.gather(self._task, return_exceptions=True)
        _fail(self._queue, _stopping_error)
        self._queue.clear()
        # A run in progress finishes on its thread; nobody waits for it.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """The loop's task is done: expected after close(), a failure otherwise."""
        if self._closed:
            return
        self._closed = self._broken = True
        error = None if task.cancelled() else task.exception()
        log.error(
            "the micro-batcher stopped; the classifier can no longer answer",
            exc_info=error,
            extra={"batcher": self._name, "cause": "cancelled" if error is None else "error"},
        )
        _fail(self._queue, _stopped_error)
        self._queue.clear()
        if self._on_stopped is not None:
            self._on_stopped(error)

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
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch: list[_Pending[T, R]] = []
                self._take(batch)
                if batch:
                    await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Pending[T, R]]) -> None:
        """One model run; its failure is its callers' alone."""
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        try:
            await self._gather_more(batch)
            self._last_size = len(batch)
            began = time.perf_counter()
            results = await loop.run_in_executor(
                self._executor, self._process, [p.item for p in batch]
            )
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except asyncio.CancelledError:  # the batch's callers must not hang
            _fail(batch, _stopping_error if self._closed else _stopped_error)
            raise
        except DomainError as exc:  # already says what the caller should do
            refused: DomainError = exc
            _fail(batch, lambda: refused)
            return
        except Exception:
            log.exception("a classifier run failed", extra={"batch_size": len(batch)})
            _fail(batch, _run_failed_error)
            return
        finally:
            self._last_end = time.monotonic()
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
        # Outside the guard on purpose: a failing hook is a bug in this process, and
        # the loop stopping (health NOT_SERVING) says so louder than a log line.
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - began)


def _stopping_error() -> Unavailable:
    return Unavailable("the router is stopping", reason="ROUTER_STOPPING")


def _stopped_error() -> Unavailable:
    return Unavailable("the classifier stopped; try another router", reason="ROUTER_NOT_RUNNING")


def _run_failed_error() -> Unavailable:
    return Unavailable(
        "the classifier failed on this request; retry", reason="CLASSIFIER_RUN_FAILED"
    )


def _fail(pendings: Iterable[_Pending[T, R]], error: Callable[[], BaseException]) -> None:
    for pending in pendings:
        if not pending.future.done():
            pending.future.set_exception(error())
