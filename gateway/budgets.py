"""A turn's money: reserve its worst case before it runs, commit what it used, release the rest.

The ledger holds the team's monthly budget. Before a turn may call a worker, the gateway
reserves the turn's worst-case cost there (``TurnEstimate`` priced at the dearest model of
the price table); a reservation the ledger refuses ends the turn with RESOURCE_EXHAUSTED
(``BUDGET_EXHAUSTED``, RetryInfo until the budget resets) before anything ran. When the
worker's result is in, the gateway commits the turn's usage (the ledger prices it and
charges at most what was reserved) and the ``Final`` event carries the budget state after
the charge. A turn that is refused, fails or is cancelled releases its reservation; if even
that fails (the gateway died), the ledger releases it when the reservation expires.

Budgets fail closed: when the ledger cannot be reached, turns are refused (UNAVAILABLE),
never run unaccounted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from waybill.common.v1 import money_pb2, usage_pb2
from waybill.ledger.v1 import ledger_service_pb2 as ledger

from gateway.ledger_stream import LedgerStream
from llm_pool.pricing import PER, PriceTable
from runtime.deadlines import DeadlinePolicy
from runtime.peer_errors import PeerError
from runtime.principal import Principal

log = logging.getLogger("waybill.gateway")

UNCHARGED = Counter(
    "waybill_turns_uncharged_total",
    "Turns answered whose charge the ledger did not take (the reservation expires).",
)
FEATURE = "order-support"
"""The feature every conversation turn is charged to."""


@dataclass(frozen=True, slots=True)
class TurnEstimate:
    """The most one turn may consume: what its reservation is priced from."""

    generations: int = 4
    """Generations of one turn at most (an answer and the payloads of its writes)."""
    input_tokens: int = 4096
    """Prompt tokens of one generation at most."""
    output_tokens: int = 512
    """Completion tokens of one generation at most (the workers ask for <= 400)."""

    def cost(self, prices: PriceTable) -> money_pb2.Cost:
        """The worst case at the dearest model of ``prices`` (rounded up, never under)."""
        dearest = max(
            (self.input_tokens * p.input + self.output_tokens * p.output)
            for p in prices.prices.values()
        )
        micros = -(-(self.generations * dearest) // PER)
        return money_pb2.Cost(currency_code=prices.currency_code, micro_units=micros)


class LedgerClient:
    """The ledger's Reserve, Commit and Release, as operations on the replica's one
    Exchange stream (``gateway.ledger_stream``; each idempotent, so resent when the stream
    breaks)."""

    def __init__(self, stub: Any, *, policy: DeadlinePolicy) -> None:
        self.stream = LedgerStream(stub, policy=policy)

    async def reserve(self, request: ledger.ReserveRequest) -> ledger.ReserveResponse:
        """Hold a worst-case cost; RESOURCE_EXHAUSTED over the budget."""
        result = await self.stream.call(ledger.LedgerOperation(reserve=request))
        return result.reserve

    async def commit(self, request: ledger.CommitRequest) -> ledger.CommitResponse:
        """Charge a reservation for what the turn used."""
        result = await self.stream.call(ledger.LedgerOperation(commit=request))
        return result.commit

    async def release(self, request: ledger.ReleaseRequest) -> ledger.ReleaseResponse:
        """Free a reservation without charge."""
        result = await self.stream.call(ledger.LedgerOperation(release=request))
        return result.release

    async def close(self) -> None:
        """End the stream."""
        await self.stream.close()


class Hold:
    """One turn's reservation: committed once or released once, never both."""

    def __init__(self, client: LedgerClient, tenant_id: str, reserved: ledger.ReserveResponse):
        self._client = client
        self._tenant_id = tenant_id
        self.reservation_id = reserved.reservation_id
        self.state: ledger.BudgetState = reserved.state
        """The budget's state: after reserving, then after the charge."""
        self._settled = False

    async def commit(self, usage: usage_pb2.Usage) -> money_pb2.Cost:
        """Charge the turn's usage; the charged cost (the ledger's pricing, at most the
        reservation). The budget state after the charge is in ``state``."""
        self._settled = True
        charged = await self._client.commit(
            ledger.CommitRequest(
                reservation_id=self.reservation_id, usage=usage, tenant_id=self._tenant_id
            )
        )
        self.state = charged.state
        return charged.charged

    def release_soon(self) -> None:
        """Release in the background unless committed (a cancelled turn cannot wait for it);
        a release that fails is left to the reservation's expiry."""
        if self._settled:
            return
        self._settled = True
        task = asyncio.get_running_loop().create_task(self._release())
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _release(self) -> None:
        try:
            await self._client.release(
                ledger.ReleaseRequest(reservation_id=self.reservation_id, tenant_id=self._tenant_id)
            )
        except PeerError as exc:
            log.warning(
                "reservation not released; it expires",
                extra={"reservation_id": self.reservation_id, "reason": exc.reason},
            )


async def charge(hold: Hold | None, usage: usage_pb2.Usage) -> ledger.BudgetState:
    """Commit a turn's usage; its cost becomes the ledger's charge. A commit that fails
    after the answer was given does not fail the turn: it is logged and counted, and the
    reservation expires uncharged. The budget state after (UNSPECIFIED without a hold)."""
    if hold is None:
        return ledger.BUDGET_STATE_UNSPECIFIED
    try:
        usage.cost.CopyFrom(await hold.commit(usage))
    except PeerError as exc:
        UNCHARGED.inc()
        log.error(
            "turn not charged; its reservation expires",
            extra={"reservation_id": hold.reservation_id, "reason": exc.reason},
        )
    return hold.state


def charge_soon(hold: Hold | None, usage: usage_pb2.Usage) -> asyncio.Task[ledger.BudgetState]:
    """:func:`charge` started now, held until done even if the turn stops waiting for it
    (a turn cancelled after its answer was generated is still charged)."""
    task = asyncio.ensure_future(charge(hold, usage))
    _charging.add(task)
    task.add_done_callback(_charging.discard)
    return task


_background: set[asyncio.Task[None]] = set()
"""Releases in flight (held so they are not garbage-collected mid-call)."""
_charging: set[asyncio.Task[ledger.BudgetState]] = set()
"""Commits in flight (held likewise)."""


class Budgets:
    """Reservations for turns, or nothing when budgets are off (``Budgets.off()``)."""

    def __init__(self, client: LedgerClient | None, estimate: money_pb2.Cost) -> None:
        self._client = client
        self._estimate = estimate

    @classmethod
    def off(cls) -> Budgets:
        """No reservations: turns run unaccounted (tests and benchmarks of other parts)."""
        return cls(None, money_pb2.Cost())

    async def close(self) -> None:
        """End the ledger stream (the gateway is stopping)."""
        if self._client is not None:
            await self._client.close()

    @property
    def enabled(self) -> bool:
        """Whether turns reserve and commit."""
        return self._client is not None

    async def hold(
        self,
        principal: Principal,
        user_id: str,
        *,
        estimate: money_pb2.Cost | None = None,
        feature: str = FEATURE,
    ) -> Hold | None:
        """Reserve one turn's worst case (or ``estimate``, a direct model call's) for the
        principal's team, charged to ``feature``; None when budgets are off.
        RESOURCE_EXHAUSTED (as a PeerError) when the budget cannot cover it."""
        if self._client is None:
            return None
        reserved = await self._client.reserve(
            ledger.ReserveRequest(
                # One id per turn attempt: the channel's retries of Reserve reuse it; a
                # caller that runs the turn again is charged again.
                request_id=uuid.uuid4().hex,
                tenant_id=principal.tenant_id,
                team_id=principal.team_id,
                feature_id=feature,
                estimate=self._estimate if estimate is None else estimate,
                user_id=user_id,
            )
        )
        return Hold(self._client, principal.tenant_id, reserved)
