"""Shared fixtures: real aio servers on port 0, built from the same runtime as production."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import pytest

from runtime.server import Registration, RunningServer, start
from runtime.settings import ServiceSettings

StartServer = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[StartServer]:
    """Start real gRPC servers (interceptors, health, reflection) on free ports; stop them after."""
    running: list[RunningServer] = []

    async def _start(name: str, registrations: Sequence[Registration], **overrides: Any) -> str:
        settings = ServiceSettings(
            name=name, address="127.0.0.1:0", drain_s=0.0, grace_s=0.5, **overrides
        )
        server = await start(settings, registrations)
        await server.set_serving(True)
        running.append(server)
        return f"127.0.0.1:{server.port}"

    yield _start
    for server in running:
        await server.server.stop(0)


@pytest.fixture
async def channels() -> AsyncIterator[Callable[[str], grpc.aio.Channel]]:
    """Plain client channels, closed after the test."""
    opened: list[grpc.aio.Channel] = []

    def _open(address: str) -> grpc.aio.Channel:
        ch = grpc.aio.insecure_channel(address)
        opened.append(ch)
        return ch

    yield _open
    for ch in opened:
        await ch.close()
