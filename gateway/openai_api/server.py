"""Running the model API inside the gateway process, on the gateway's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger("waybill.gateway.models")


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway's own stop the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ModelApiServer:
    """The HTTP listener of the model API."""

    def __init__(self, app: ASGIApp, address: str) -> None:
        host, _, port = address.rpartition(":")
        config = uvicorn.Config(
            app,
            host=host or "127.0.0.1",
            port=int(port),
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="httptools",
            loop="none",
            timeout_keep_alive=30,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.address = f"{host or '127.0.0.1'}:{port}"

    async def start(self, timeout_s: float = 10.0) -> None:
        """Listen; OSError when the port cannot be bound."""
        self._task = asyncio.ensure_future(self._server.serve())
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError(f"the model API could not listen on {self.address}")
            if asyncio.get_running_loop().time() > deadline:
                raise OSError(f"the model API did not start on {self.address}")
            await asyncio.sleep(0.01)
        log.info("model API serving", extra={"address": self.address})

    async def stop(self) -> None:
        """Finish the requests in flight and close."""
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
