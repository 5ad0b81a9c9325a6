"""Fixtures: the edge served by real uvicorn (httptools) in front of a real gRPC stand-in."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import uvicorn

from gateway.demo_tokens import DemoTokenSigner
from gateway.edge.app import create_app
from gateway.edge.demo import DemoCredentials
from gateway.edge.settings import EdgeSettings
from tests.conftest import StartServer
from tests.gateway.edge.standin import ScriptedGateway, registration
from tests.support.keys import clients_file

TENANTS = ("acme-retail", "globex-home")


@dataclass(frozen=True, slots=True)
class RunningEdge:
    """An edge served on a loopback port, and the stand-in gateway behind it."""

    url: str
    gateway: ScriptedGateway
    settings: EdgeSettings


StartEdge = Callable[..., Awaitable[RunningEdge]]


def free_socket() -> socket.socket:
    """A bound loopback socket on a free port, handed to uvicorn (no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    """A credentials file with one fresh key per demo tenant."""
    path = tmp_path / "credentials.json"
    clients_file(path, TENANTS)
    return path


@pytest.fixture
async def start_edge(serve: StartServer) -> AsyncIterator[StartEdge]:
    """Start the stand-in gateway and an edge in front of it; both stop after the test."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def _start(
        *,
        demo: Path | None = None,
        standin: ScriptedGateway | None = None,
        signer: DemoTokenSigner | None = None,
        **overrides: object,
    ) -> RunningEdge:
        """``overrides`` replace EdgeSettings fields (``gateway=`` points elsewhere)."""
        standin = standin or ScriptedGateway()
        address = await serve("gateway", [registration(standin)])
        sock = free_socket()
        port = sock.getsockname()[1]
        settings = replace(
            EdgeSettings(host="127.0.0.1", port=port, gateway=address, demo_credentials=demo),
            **overrides,  # type: ignore[arg-type]
        )
        app = create_app(
            settings,
            demo=DemoCredentials.load(demo) if demo is not None else None,
            signer=signer,
        )
        config = uvicorn.Config(
            app,
            loop="none",
            http="httptools",
            ws="none",
            lifespan="on",
            access_log=False,
            log_config=None,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        servers.append((server, task))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return RunningEdge(f"http://127.0.0.1:{port}", standin, settings)

    yield _start
    for server, task in servers:
        server.should_exit = True
        await task


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the edge."""
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, object]:
    """The error object of an error body, checking its shape on the way."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "status", "details"}, error
    assert error["code"] == response.status_code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], list)
    info = [d for d in error["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert len(info) == 1, error["details"]
    result: dict[str, object] = error
    return result


def error_info(error: dict[str, object]) -> dict[str, object]:
    """The ErrorInfo detail of an error object."""
    details = error["details"]
    assert isinstance(details, list)
    found: dict[str, object] = next(
        d for d in details if d["@type"].endswith("google.rpc.ErrorInfo")
    )
    return found


def sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    """(event name, parsed data) of every event in an SSE body."""
    import json

    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        events.append((name, json.loads("\n".join(data))))
    return events
