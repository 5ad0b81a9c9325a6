"""Real ledger processes for the tests: ``python -m ledger`` with the environment given,
waited on until its health says SERVING, killed or stopped by the test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import probe
from cli.ports import free_base_port
from ledger.service import SERVICE
from runtime import paths

REPO_ROOT = paths.repo_root()


@dataclass
class LedgerProcess:
    """One running ``python -m ledger``."""

    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        """SIGTERM, then wait; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(30)


def start(env: Mapping[str, str], log: Path, *, timeout_s: float = 60) -> LedgerProcess:
    """Start a ledger on a free port and wait until it serves."""
    address = f"127.0.0.1:{free_base_port(1)}"
    child = {
        **os.environ,
        "WAYBILL_LEDGER_ADDR": address,
        "WAYBILL_ACCESS_LOG": "0",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "gen")]),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger"],
            env=child,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = LedgerProcess(process, address, log)
    deadline = time.monotonic() + timeout_s
    while probe.check_health(address, [SERVICE], 1.0).get(SERVICE) != "SERVING":
        if process.poll() is not None:
            raise RuntimeError(
                f"the ledger exited ({process.returncode}): {log.read_text()[-2000:]}"
            )
        if time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"the ledger never served: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    return running


Starter = Callable[[Mapping[str, str]], Awaitable["LedgerProcess"]]


async def started(env: Mapping[str, str], log: Path) -> LedgerProcess:
    """:func:`start` off the event loop."""
    return await asyncio.to_thread(start, env, log)


@pytest.fixture
async def ledgers(tmp_path: Path) -> AsyncIterator[Starter]:
    """Starts ledger processes (log files in the test's directory); any still running
    when the test ends is killed."""
    running: list[LedgerProcess] = []

    async def _start(env: Mapping[str, str]) -> LedgerProcess:
        process = await started(env, tmp_path / f"ledger-{len(running)}.log")
        running.append(process)
        return process

    yield _start
    for r in running:
        if r.process.poll() is None:
            r.process.kill()
            r.process.wait(30)
