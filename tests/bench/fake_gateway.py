"""A tiny fake GatewayService for testing the load generator, not the gateway.

It authenticates ``x-api-key`` against a fixed key table, lists customers in
small pages (so paging is exercised), and answers Converse with a few deltas
and a final. Failures are injected two ways: customers in
``unavailable_users`` get UNAVAILABLE, and messages starting with one of the
``SCRIPT`` markers get the matching outcome. ``outcomes`` counts what the fake
produced so tests can check the bench's buckets against it.

Run as a script (``python tests/bench/fake_gateway.py RUN_DIR``) it serves on
a free port and writes a launcher-style ``mesh.json`` and ``credentials.json``
into RUN_DIR, for tests that need the gateway in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import grpc
from waybill.common.v1 import customer_pb2, events_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

KEYS: dict[str, str] = {"key-acme": "acme-retail", "key-globex": "globex-home"}
CUSTOMERS: dict[str, tuple[str, ...]] = {
    "acme-retail": ("acme-ann", "acme-bob", "acme-fail"),
    "globex-home": ("globex-cat", "globex-dan"),
}
UNAVAILABLE_USERS = frozenset({"acme-fail"})

# Message prefix -> outcome the fake produces.
SCRIPT: dict[str, str] = {
    "!unavailable": "UNAVAILABLE",
    "!refuse": "REFUSAL",
    "!turn-error": "TURN_ERROR",
    "!no-final": "NO_FINAL",
    "!hang": "HANG",
}

_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_USER = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
_MAX_PAGE = 2


def awb_of(user_id: str) -> str:
    """A stable fake AWB for a customer."""
    digits = sum(ord(c) * (i + 1) for i, c in enumerate(user_id)) % 10_000_000_000
    return f"WB{digits:010d}"


def _event(**kind: Any) -> pb.ConverseResponse:
    return pb.ConverseResponse(event=pb.TurnEvent(**kind))


class FakeGateway(pb_grpc.GatewayServiceServicer):
    """Scripted GatewayService (Converse, ListCustomers, GetCustomerContext)."""

    def __init__(
        self,
        *,
        keys: Mapping[str, str] = KEYS,
        customers: Mapping[str, tuple[str, ...]] = CUSTOMERS,
        unavailable_users: frozenset[str] = UNAVAILABLE_USERS,
    ) -> None:
        self.keys = dict(keys)
        self.customers = dict(customers)
        self.unavailable_users = unavailable_users
        self.outcomes: Counter[str] = Counter()
        self.requests: list[pb.ConverseRequest] = []

    async def _tenant(self, context: Any) -> str:
        metadata = dict(context.invocation_metadata() or ())
        tenant = self.keys.get(metadata.get("x-api-key", ""))
        if tenant is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown api key")
        assert tenant is not None
        return tenant

    async def ListCustomers(self, request: pb.ListCustomersRequest, context: Any) -> Any:
        tenant = await self._tenant(context)
        users = self.customers.get(tenant, ())
        start = int(request.page_token or "0")
        size = min(request.page_size or 20, _MAX_PAGE)
        page = users[start : start + size]
        token = str(start + size) if start + size < len(users) else ""
        return pb.ListCustomersResponse(
            customers=[pb.CustomerSummary(user_id=u, display_name=u.title()) for u in page],
            next_page_token=token,
        )

    async def GetCustomerContext(self, request: pb.GetCustomerContextRequest, context: Any) -> Any:
        tenant = await self._tenant(context)
        if request.user_id not in self.customers.get(tenant, ()):
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
        order = customer_pb2.OrderBrief(
            order_id="ORD-20260001", awb=awb_of(request.user_id), title="Laptop stand"
        )
        return pb.GetCustomerContextResponse(
            context=customer_pb2.HydratedContext(active_orders=[order])
        )

    def _outcome(self, tenant: str, request: pb.ConverseRequest) -> str:
        if not _SESSION.match(request.session_id) or not _USER.match(request.user_id):
            return "INVALID_ARGUMENT"
        if request.user_id not in self.customers.get(tenant, ()):
            return "NOT_FOUND"
        if request.user_id in self.unavailable_users:
            return "UNAVAILABLE"
        for marker, outcome in SCRIPT.items():
            if request.message.startswith(marker):
                return outcome
        return "OK"

    async def Converse(
        self, request: pb.ConverseRequest, context: Any
    ) -> AsyncIterator[pb.ConverseResponse]:
        tenant = await self._tenant(context)
        self.requests.append(request)
        outcome = self._outcome(tenant, request)
        self.outcomes[outcome] += 1
        if outcome in {"INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE"}:
            await context.abort(getattr(grpc.StatusCode, outcome), f"injected {outcome}")
        if outcome == "HANG":
            # Never answers: the client's deadline must end the turn.
            await asyncio.sleep(3600)
        for word in ("Your ", "parcel ", "is on its way."):
            yield _event(delta=events_pb2.TextDelta(text=word))
        if outcome == "REFUSAL":
            yield _event(refusal=events_pb2.Refusal(message="no"))
        elif outcome == "TURN_ERROR":
            yield _event(
                error=events_pb2.TurnError(code=events_pb2.STATUS_CODE_UNAVAILABLE, reason="BROKEN")
            )
        elif outcome == "OK":
            yield _event(final=pb.Final(answer="Your parcel is on its way.", request_id="r"))


@contextlib.asynccontextmanager
async def serving(fake: FakeGateway) -> AsyncIterator[str]:
    """Serve ``fake`` on a free loopback port; yields ``host:port``."""
    server = grpc.aio.server()
    pb_grpc.add_GatewayServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


def write_run_dir(run_dir: Path, address: str, keys: Mapping[str, str] = KEYS) -> None:
    """Write launcher-style ``credentials.json`` and (last, atomically) ``mesh.json``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    creds = run_dir / "credentials.json"
    creds.write_text(
        json.dumps(
            {
                "keys": [
                    {"api_key": k, "tenant_id": t, "team_id": "support", "role": "service"}
                    for k, t in keys.items()
                ]
            }
        )
    )
    info = {
        "services": {"gateway": {"address": address, "pid": 0, "log": ""}},
        "credentials": str(creds),
    }
    tmp = run_dir / "mesh.json.tmp"
    tmp.write_text(json.dumps(info))
    tmp.replace(run_dir / "mesh.json")


async def _serve_forever(run_dir: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serving(FakeGateway()) as address:
        write_run_dir(run_dir, address)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_serve_forever(Path(sys.argv[1])))
