"""One complete run: channels, scenario setup, load, summary."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import grpc

from bench import scenarios
from bench.endpoints import Endpoints, SetupError
from bench.gateway import ChannelPool
from bench.loadgen import LoadGenerator
from bench.report import RunSummary, now_iso, summarize
from bench.schedule import Schedule

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """The knobs of one run (the CLI's flags)."""

    scenario: str
    rate: float
    duration_s: float
    warmup_s: float = 1.0
    concurrency: int = 256
    deadline_s: float = 5.0
    seed: int = 7
    channels: int = 4
    setup_timeout_s: float = 10.0

    def schedule(self) -> Schedule:
        """The arrival schedule (validates rate and durations)."""
        return Schedule(self.rate, self.duration_s, self.warmup_s)


async def run(
    config: RunConfig,
    endpoints: Endpoints,
    *,
    scenario: scenarios.Scenario | None = None,
    progress: TextIO | None = None,
) -> RunSummary:
    """Run ``config`` against ``endpoints``; ``scenario`` overrides the registry lookup.

    Raises ``SetupError`` when the scenario cannot be prepared (gateway down,
    bad key, no customers); failures during the load itself are data.
    """
    chosen = scenario or scenarios.get(config.scenario)
    schedule = config.schedule()
    async with ChannelPool(endpoints.target, config.channels) as pool:
        context = scenarios.ScenarioContext(
            stub=pool.stub(0),
            keys=endpoints.keys,
            seed=config.seed,
            run_tag=secrets.token_hex(4),
            timeout_s=config.setup_timeout_s,
        )
        try:
            source = await chosen.build(context)
        except grpc.aio.AioRpcError as exc:
            raise SetupError(
                f"scenario {chosen.name!r} setup against {endpoints.target} failed: "
                f"{exc.code().name}: {exc.details()}"
            ) from exc
        started_at = now_iso()
        generator = LoadGenerator(
            schedule,
            source,
            pool.stubs,
            concurrency=config.concurrency,
            deadline_s=config.deadline_s,
            progress=progress,
        )
        tally = await generator.run()
    return summarize(
        tally,
        schedule,
        scenario=chosen.name,
        concurrency=config.concurrency,
        deadline_s=config.deadline_s,
        seed=config.seed,
        channels=config.channels,
        target=endpoints.target,
        started_at=started_at,
    )


def run_async(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """Run ``main`` to completion on a fresh loop, uvloop's when installed and wanted."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # optional: plain asyncio is only slower
            pass
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
