"""A redis-server of the test's own, for what must not happen to the shared one: killing
it, restarting it empty, freezing it, flushing its scripts.

Outside CI a missing ``redis-server`` binary skips the test with a message; in CI it
fails (see :mod:`tests.support.redis_server`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync

from tests.support.redis_server import in_ci


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """One redis-server on a loopback port, without persistence; ``kill`` and ``start``
    again on the same port stand for a crash and a restart."""

    def __init__(self, binary: str, run_dir: Path) -> None:
        self._binary = binary
        self._run_dir = run_dir
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        log = (self._run_dir / "redis.log").open("ab")
        # No persistence: a restart comes back empty, as a crashed cache would.
        argv = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self._run_dir)]
        self._process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis_sync.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if client.ping():
                        return
                except (redis_sync.ConnectionError, redis_sync.TimeoutError, OSError):
                    pass
                assert self._process.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server never answered"
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL (a crash: nothing saved) and wait for the process to be gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause``."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def client(self) -> redis_sync.Redis:
        """A synchronous client, for the test's own look at the data."""
        return redis_sync.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)


def started(tmp_path: Path) -> Iterator[RedisProcess]:
    """A started redis-server of the test's own, killed after (the body of a fixture)."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        if in_ci():
            pytest.fail("redis-server is not installed: CI must run the Redis restart tests")
        pytest.skip("redis-server is not installed; the Redis restart tests need it")
    server = RedisProcess(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server._process is not None and server._process.poll() is None:
            server.resume()
        server.kill()
