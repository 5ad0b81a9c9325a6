"""The ledger's store contract runs against both stores: the embedded journal and
PostgreSQL (a fresh schema per test; it must run on CI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from waybill.common.v1 import money_pb2, usage_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from ledger.core import PricedGeneration, PricedUsage, ReserveInput
from ledger.embedded_store import EmbeddedLedgerStore
from ledger.service import SERVICE, LedgerServicer
from ledger.store import LedgerStore
from llm_pool import pricing
from runtime.server import Registration
from tests.conftest import StartServer
from tests.ledger.processes import ledgers  # noqa: F401 - the process tests' fixture
from tests.support.postgres_server import PG_DSN, fresh_schema

LIMIT = 1_000_000
"""The default monthly limit in these tests: one USD."""
TTL_S = 300.0
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

Opener = Callable[[], Awaitable[LedgerStore]]
"""Opens another store on the same data (another replica, or a restart)."""


async def open_backend(
    backend: str, location: str, *, default_limit: int = LIMIT, fsync: bool = True
) -> LedgerStore:
    """A store of ``backend`` on ``location`` (a directory, or a PostgreSQL schema)."""
    if backend == "embedded":
        return await EmbeddedLedgerStore.open(
            Path(location), default_limit=default_limit, ttl_s=TTL_S, fsync=fsync
        )
    from ledger.pg_store import PostgresLedgerStore

    return await PostgresLedgerStore.open(
        PG_DSN, schema=location, default_limit=default_limit, ttl_s=TTL_S, min_size=1, max_size=8
    )


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(backend, location) of an empty ledger for one test."""
    if request.param == "embedded":
        yield "embedded", str(tmp_path / "ledger")
        return
    async with fresh_schema() as schema:
        yield "postgres", schema


@pytest.fixture
async def opener(backend: tuple[str, str]) -> AsyncIterator[Opener]:
    """Opens stores on the test's ledger; all are closed after the test."""
    opened: list[LedgerStore] = []

    async def open_store() -> LedgerStore:
        store = await open_backend(*backend)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
async def store(opener: Opener) -> LedgerStore:
    """One store on the test's ledger."""
    return await opener()


def ask(
    request_id: str = "turn-0001", *, estimate: int = 1000, team: str = "support", **over: str
) -> ReserveInput:
    """A Reserve of the acme-retail support team."""
    fields = {
        "tenant_id": "acme-retail",
        "team_id": team,
        "user_id": "acme-0001",
        "feature_id": "order-support",
        **over,
    }
    return ReserveInput(request_id=request_id, estimate=estimate, **fields)


def priced(cost: int, *costs: int) -> PricedUsage:
    """A turn priced at ``cost`` (one generation per cost given)."""
    return PricedUsage(
        generations=tuple(
            PricedGeneration("openai/gpt-4o-mini", 100 * (i + 1), 10, c)
            for i, c in enumerate((cost, *costs))
        ),
        price_version="test",
    )


class Clock:
    """A clock the test moves."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class Env:
    """A real LedgerService on a store of the test's backend, with a clock the test moves."""

    def __init__(self, stub: pb_grpc.LedgerServiceStub, servicer: LedgerServicer, clock: Clock):
        self.stub, self.servicer, self.clock = stub, servicer, clock

    @staticmethod
    def reserve(request_id: str, micros: int, **over: object) -> pb.ReserveRequest:
        fields: dict[str, object] = {
            "request_id": request_id,
            "tenant_id": "acme-retail",
            "team_id": "support",
            "feature_id": "order-support",
            "user_id": "acme-0001",
            "estimate": money_pb2.Cost(currency_code="USD", micro_units=micros),
        }
        fields.update(over)
        return pb.ReserveRequest(**fields)  # type: ignore[arg-type]

    @staticmethod
    def commit(
        reservation_id: str, *, output_tokens: int = 100, **over: object
    ) -> pb.CommitRequest:
        """A commit of one gpt-4o-mini generation: 1000 in, ``output_tokens`` out."""
        usage = usage_pb2.Usage(
            input_tokens=1000,
            output_tokens=output_tokens,
            generations=[
                usage_pb2.Generation(
                    backend="openai",
                    model="gpt-4o-mini",
                    input_tokens=1000,
                    output_tokens=output_tokens,
                )
            ],
        )
        fields: dict[str, object] = {
            "reservation_id": reservation_id,
            "tenant_id": "acme-retail",
            "usage": usage,
        }
        fields.update(over)
        return pb.CommitRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def env(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel], store: LedgerStore
) -> Env:
    clock = Clock()
    servicer = LedgerServicer(store, pricing.load(), clock=clock)
    address = await serve(
        "ledger", [Registration(SERVICE, pb_grpc.add_LedgerServiceServicer_to_server, servicer)]
    )
    return Env(pb_grpc.LedgerServiceStub(channels(address)), servicer, clock)
