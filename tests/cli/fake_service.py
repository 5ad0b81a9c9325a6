"""A stand-in service process for the launcher tests (the real services may not exist yet).

Run as ``python -m tests.cli.fake_service``. It poses as the mesh service named
by ``FAKE_SERVICE_NAME``: it listens on that service's ``WAYBILL_<NAME>_ADDR``
and reports health for the gRPC services the mesh table lists for it, through
the same bootstrap (runtime.server.serve) as the real services. Knobs:

- ``FAKE_CRASH=1``: print a marker and exit 3 before serving.
- ``FAKE_CRASH_IF=<path>``: the same, but only while ``path`` exists (a test
  turns a service that started fine into one that crash-loops on restart).
- ``FAKE_READY_DELAY_S``: stay NOT_SERVING this long after binding.
- ``FAKE_SLOW_IF=<path>``: stay NOT_SERVING for an hour while ``path`` exists
  at start (a restart that is still starting when the test acts).
- ``FAKE_IGNORE_SIGTERM=1``: ignore SIGTERM once serving (only SIGKILL ends it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import grpc

from runtime import mesh, server
from runtime.settings import ServiceSettings

CRASH_MARKER = "fake service crashing on purpose"


def _exists(variable: str) -> bool:
    """Whether the variable names a path that exists."""
    path = os.environ.get(variable)
    return bool(path) and Path(str(path)).exists()


def _no_servicer(_servicer: Any, _server: grpc.aio.Server) -> None:
    """Nothing to add: only health and reflection answer for the name."""


async def _main() -> None:
    name = os.environ["FAKE_SERVICE_NAME"]
    if os.environ.get("FAKE_CRASH") == "1" or _exists("FAKE_CRASH_IF"):
        print(CRASH_MARKER, flush=True)
        sys.exit(3)
    delay = 3600.0 if _exists("FAKE_SLOW_IF") else float(os.environ.get("FAKE_READY_DELAY_S", "0"))
    settings = ServiceSettings.from_env(name)
    registrations = [
        server.Registration(name=grpc_name, add=_no_servicer, servicer=None)
        for grpc_name in mesh.spec(name).grpc_services
    ]

    async def ready() -> None:
        await asyncio.sleep(delay)
        if os.environ.get("FAKE_IGNORE_SIGTERM") == "1":
            # Replaces serve()'s own handler, so SIGTERM no longer stops it.
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: None)

    await server.serve(settings, registrations, ready=ready)


if __name__ == "__main__":
    server.run(_main)
