"""A worker's LLM pool across the process's life: probed at start, watched while serving,
closed at stop, with the worker's channels."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from llm_pool.pool import LLMPool


@dataclass(slots=True)
class PoolLifecycle:
    """``ready`` and ``on_stop`` hooks for ``runtime.server.serve``."""

    pool: LLMPool
    channels: Sequence[grpc.aio.Channel]
    """Channels to close at stop (the worker's peers)."""
    readiness_timeout_s: float
    """Most time the first readiness probe may take."""
    readiness_interval_s: float
    """Seconds between readiness probes while serving."""
    _watcher: asyncio.Task[None] | None = field(default=None, init=False)

    async def ready(self) -> None:
        """Probe the backends once, then keep watching them.

        Model readiness (Triton ModelReady) gates routing, not serving: with the model
        down the composer still answers, so the worker reports SERVING either way.
        """
        await self.pool.probe_ready(timeout_s=self.readiness_timeout_s)
        self._watcher = asyncio.create_task(self.pool.watch_readiness(self.readiness_interval_s))

    async def on_stop(self) -> None:
        """Stop watching, close the pool and the channels."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.pool.close()
        for channel in self.channels:
            await channel.close()
