"""The edge and the stand-in gateway on an event loop of their own thread.

For callers that are synchronous (schemathesis drives the edge with blocking
HTTP requests from the test's thread): the servers keep answering while the
test blocks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from gateway.edge.app import create_app
from gateway.edge.settings import EdgeSettings
from runtime.server import RunningServer, start
from runtime.settings import ServiceSettings
from tests.gateway.edge.conftest import free_socket
from tests.gateway.edge.standin import ScriptedGateway, registration

START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ThreadedEdge:
    """Where the edge answers, and the stand-in behind it."""

    url: str
    gateway: ScriptedGateway


async def _serve(
    standin: ScriptedGateway, started: asyncio.Future[str], stop: asyncio.Event
) -> None:
    running: RunningServer = await start(
        ServiceSettings(name="gateway", address="127.0.0.1:0", drain_s=0.0, grace_s=0.5),
        [registration(standin)],
    )
    await running.set_serving(True)
    sock = free_socket()
    port = sock.getsockname()[1]
    settings = EdgeSettings(host="127.0.0.1", port=port, gateway=f"127.0.0.1:{running.port}")
    config = uvicorn.Config(
        create_app(settings),
        loop="none",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        started.set_result(f"http://127.0.0.1:{port}")
        await stop.wait()
    finally:
        server.should_exit = True
        await task
        await running.server.stop(0)


@contextmanager
def edge_in_thread() -> Iterator[ThreadedEdge]:
    """Serve the edge and a fresh stand-in until the block ends."""
    loop = asyncio.new_event_loop()
    standin = ScriptedGateway()
    started: asyncio.Future[str] = loop.create_future()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_forever, name="edge", daemon=True)
    thread.start()
    serving = asyncio.run_coroutine_threadsafe(_serve(standin, started, stop), loop)
    try:
        url = asyncio.run_coroutine_threadsafe(_wait(started), loop).result(START_TIMEOUT_S)
        yield ThreadedEdge(url, standin)
    finally:
        loop.call_soon_threadsafe(stop.set)
        serving.result(START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_S)
        loop.close()


async def _wait(started: asyncio.Future[str]) -> str:
    return await started
