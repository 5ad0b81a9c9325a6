"""A real Triton server (nvidia-pytriton's, on CPU) serving the CPU test model, per session."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.triton import TRITON_VENV, TritonServer


@pytest.fixture(scope="session")
def triton_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """File the test model appends one JSON line per request to."""
    return tmp_path_factory.mktemp("triton-events") / "events.jsonl"


@pytest.fixture(scope="session")
def triton_server(
    tmp_path_factory: pytest.TempPathFactory, triton_events: Path
) -> Iterator[TritonServer]:
    """The CPU test model behind a real Triton server for the whole session."""
    if not (TRITON_VENV / "bin" / "python").exists():
        pytest.fail(f"{TRITON_VENV} is missing: run `bash scripts/setup.d/30-pytriton.sh`")
    server = TritonServer(
        run_dir=tmp_path_factory.mktemp("triton"),
        env={"WAYBILL_TEST_MODEL_EVENTS": str(triton_events)},
    )
    server.start(timeout_s=90)
    yield server
    server.stop()


def wait_event(path: Path, request_id: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """The test model's record of one request (it writes it when the request ends)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                entry: dict[str, Any] = json.loads(line)
                if entry["request_id"] == request_id:
                    return entry
        time.sleep(0.02)
    raise AssertionError(f"no event for request {request_id} in {path}")


def events_for(path: Path, request_id: str) -> list[dict[str, Any]]:
    """Every record of ``request_id`` so far."""
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in entries if e["request_id"] == request_id]
