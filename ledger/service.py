"""The LedgerService servicer: proto <-> domain, and what each outcome is counted as.

The decisions are in ``ledger.core`` (budgets, pricing) and the stores (atomic holds,
idempotency, durability); this module translates, prices the usage with the price
table, and reports budgets to metrics and the log (one WARNING per level crossed per
team and month). Cost reports are ``ledger.reports`` over the store's journal of charges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from google.protobuf import timestamp_pb2
from waybill.common.v1 import money_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from ledger import metrics, reports
from ledger.core import ReserveInput, State, UsedGeneration, price
from ledger.store import BudgetView, LedgerStore
from llm_pool.pricing import PriceTable
from runtime import mesh
from runtime.errors import FailedPrecondition, InvalidArgument, ResourceExhausted

log = logging.getLogger("waybill.ledger")

SERVICE = mesh.spec("ledger").grpc_services[0]
"""The fully qualified gRPC service served."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


class LedgerServicer(pb_grpc.LedgerServiceServicer):
    """Budgets, reservations and commits over a :class:`ledger.store.LedgerStore`."""

    def __init__(self, store: LedgerStore, prices: PriceTable, *, clock: Clock = utc_now) -> None:
        self.store = store
        self.prices = prices
        self.clock = clock

    def _cost(self, micro_units: int) -> money_pb2.Cost:
        return money_pb2.Cost(currency_code=self.prices.currency_code, micro_units=micro_units)

    def _micros(self, cost: money_pb2.Cost, field: str) -> int:
        if cost.currency_code != self.prices.currency_code:
            raise InvalidArgument(
                f"{field} must be in {self.prices.currency_code}, the ledger's currency",
                reason="CURRENCY_MISMATCH",
                metadata={"currency_code": self.prices.currency_code},
            )
        return int(cost.micro_units)

    def _budget(self, view: BudgetView) -> pb.Budget:
        self._observe(view)
        return pb.Budget(
            tenant_id=view.tenant_id,
            team_id=view.team_id,
            limit=self._cost(view.limit),
            spent=self._cost(view.spent),
            reserved=self._cost(view.reserved),
            state=int(view.state),  # type: ignore[arg-type]
        )

    @staticmethod
    def _observe(view: BudgetView) -> None:
        metrics.BUDGET_USED.labels(view.tenant_id, view.team_id).set(view.ratio)
        metrics.BUDGET_STATE.labels(view.tenant_id, view.team_id).set(int(view.state))

    async def Reserve(
        self, request: pb.ReserveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReserveResponse:
        ask = ReserveInput(
            request_id=request.request_id,
            tenant_id=request.tenant_id,
            team_id=request.team_id,
            user_id=request.user_id,
            feature_id=request.feature_id,
            estimate=self._micros(request.estimate, "estimate"),
        )
        try:
            held = await self.store.reserve(ask, now=self.clock())
        except ResourceExhausted:
            metrics.RESERVATIONS.labels("refused").inc()
            raise
        metrics.RESERVATIONS.labels("replayed" if held.replayed else "held").inc()
        self._observe(held.budget)
        return pb.ReserveResponse(
            reservation_id=held.reservation_id,
            state=int(held.budget.state),  # type: ignore[arg-type]
            expire_time=_timestamp(held.expire_time),
        )

    async def Commit(
        self, request: pb.CommitRequest, context: grpc.aio.ServicerContext
    ) -> pb.CommitResponse:
        usage = request.usage
        priced = price(
            [
                UsedGeneration(g.backend, g.model, g.input_tokens, g.output_tokens)
                for g in usage.generations
            ],
            table=self.prices,
            totals=(usage.input_tokens, usage.output_tokens),
        )
        try:
            done = await self.store.commit(
                request.tenant_id, request.reservation_id, priced, now=self.clock()
            )
        except FailedPrecondition as exc:
            if exc.reason == "RESERVATION_EXPIRED":
                metrics.SETTLED.labels("late_commit").inc()
            raise
        view = done.budget
        if not done.replayed:
            metrics.SETTLED.labels("committed").inc()
            metrics.CHARGED.labels(view.tenant_id, view.team_id).inc(done.charged)
            if priced.unpriced:
                metrics.UNPRICED.inc(priced.unpriced)
            if done.overrun:
                metrics.OVERRUNS.labels(view.tenant_id, view.team_id).inc()
                metrics.OVERRUN_MICROS.labels(view.tenant_id, view.team_id).inc(done.overrun)
        if done.crossed is not None:
            log.warning(
                "budget hard limit reached"
                if done.crossed is State.HARD_LIMIT
                else "budget soft limit reached",
                extra={
                    "tenant_id": view.tenant_id,
                    "team_id": view.team_id,
                    "month": view.month,
                    "state": done.crossed.name,
                    "used_ratio": round(view.ratio, 4),
                },
            )
        self._observe(view)
        return pb.CommitResponse(
            charged=self._cost(done.charged),
            state=int(view.state),  # type: ignore[arg-type]
        )

    async def Release(
        self, request: pb.ReleaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseResponse:
        freed = await self.store.release(
            request.tenant_id, request.reservation_id, now=self.clock()
        )
        if freed:
            metrics.SETTLED.labels("released").inc()
        return pb.ReleaseResponse(released=freed)

    async def GetBudget(
        self, request: pb.GetBudgetRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBudgetResponse:
        view = await self.store.budget(request.tenant_id, request.team_id, now=self.clock())
        return pb.GetBudgetResponse(budget=self._budget(view))

    async def SetBudget(
        self, request: pb.SetBudgetRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetBudgetResponse:
        limit = self._micros(request.limit, "limit")
        view = await self.store.set_budget(
            request.tenant_id, request.team_id, limit, now=self.clock()
        )
        log.info(
            "budget set",
            extra={"tenant_id": view.tenant_id, "team_id": view.team_id, "limit_micros": limit},
        )
        return pb.SetBudgetResponse(budget=self._budget(view))

    async def GetCostReport(
        self, request: pb.GetCostReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCostReportResponse:
        return await reports.get_cost_report(self.store.charges, request)

    async def sweep(self) -> int:
        """Release every reservation past its expiry; how many (counted)."""
        count = await self.store.expire(now=self.clock())
        if count:
            metrics.SETTLED.labels("expired").inc(count)
            log.info("expired reservations released", extra={"count": count})
        return count
