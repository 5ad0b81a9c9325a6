"""The LedgerService servicer: proto <-> domain, and what each outcome is counted as.

The decisions are in ``ledger.core`` (budgets, pricing) and the stores (atomic holds,
idempotency, durability); this module translates, prices the usage with the price
table, and reports budgets to metrics and the log (one WARNING per level crossed per
team and month). Cost reports are ``ledger.reports`` over the store's journal of charges.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
import protovalidate
from google.protobuf import timestamp_pb2
from waybill.common.v1 import money_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from ledger import metrics, reports
from ledger.core import ReserveInput, State, UsedGeneration, price
from ledger.store import BudgetView, LedgerStore
from llm_pool.pricing import PriceTable
from runtime import mesh
from runtime.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    status_for,
    status_for_violations,
)
from runtime.interceptors import violations

log = logging.getLogger("waybill.ledger")

SERVICE = mesh.spec("ledger").grpc_services[0]
"""The fully qualified gRPC service served."""

DOMAIN = "ledger.waybill"
"""The ErrorInfo domain of the ledger's own errors (as the server interceptor names it)."""
MAX_OPERATIONS = 1000
"""Operations one Exchange message may carry (the contract's rule)."""

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
        return await self.reserve(request)

    async def Commit(
        self, request: pb.CommitRequest, context: grpc.aio.ServicerContext
    ) -> pb.CommitResponse:
        return await self.commit(request)

    async def Release(
        self, request: pb.ReleaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseResponse:
        return await self.release(request)

    async def Exchange(
        self,
        requests: AsyncIterator[pb.ExchangeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.ExchangeResponse]:
        exchange = _Exchange(self)
        async for response in exchange.run(requests):
            yield response

    async def reserve(self, request: pb.ReserveRequest) -> pb.ReserveResponse:
        """Hold a worst-case cost (a validated request)."""
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

    async def commit(self, request: pb.CommitRequest) -> pb.CommitResponse:
        """Charge a reservation for the usage (a validated request)."""
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

    async def release(self, request: pb.ReleaseRequest) -> pb.ReleaseResponse:
        """Free a reservation without charge (a validated request)."""
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


class _Exchange:
    """One Exchange stream: every operation runs as soon as it arrives, beside the others
    (so the journal's group commit gathers them), and its result goes out with whatever
    else completed meanwhile, in one message."""

    _validator = protovalidate.Validator()

    def __init__(self, servicer: LedgerServicer) -> None:
        self._servicer = servicer
        self._results: asyncio.Queue[pb.LedgerOperationResult | BaseException | None] = (
            asyncio.Queue()
        )
        self._running: set[asyncio.Task[None]] = set()

    async def run(
        self, requests: AsyncIterator[pb.ExchangeRequest]
    ) -> AsyncIterator[pb.ExchangeResponse]:
        reader = asyncio.ensure_future(self._read(requests))
        try:
            while True:
                first = await self._results.get()
                batch: list[pb.LedgerOperationResult] = []
                item = first
                while True:
                    if item is None:  # the caller half-closed and everything was answered
                        if batch:
                            yield pb.ExchangeResponse(results=batch)
                        return
                    if isinstance(item, BaseException):
                        raise item
                    batch.append(item)
                    if self._results.empty():
                        break
                    item = self._results.get_nowait()
                yield pb.ExchangeResponse(results=batch)
        finally:
            reader.cancel()
            for task in list(self._running):
                task.cancel()

    async def _read(self, requests: AsyncIterator[pb.ExchangeRequest]) -> None:
        try:
            async for message in requests:
                if len(message.operations) > MAX_OPERATIONS:
                    raise InvalidArgument(
                        f"an Exchange message carries at most {MAX_OPERATIONS} operations",
                        reason="TOO_MANY_OPERATIONS",
                        metadata={"max_operations": str(MAX_OPERATIONS)},
                    )
                for operation in message.operations:
                    task = asyncio.ensure_future(self._answer(operation))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
            while self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            self._results.put_nowait(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the stream, which ends with it
            self._results.put_nowait(exc)

    async def _answer(self, operation: pb.LedgerOperation) -> None:
        kind = operation.WhichOneof("operation") or "none"
        started = time.perf_counter()
        result, code = await self._run(operation, kind)
        metrics.OPERATIONS.labels(kind, code).inc()
        metrics.OPERATION_SECONDS.labels(kind).observe(time.perf_counter() - started)
        self._results.put_nowait(result)

    async def _run(
        self, operation: pb.LedgerOperation, kind: str
    ) -> tuple[pb.LedgerOperationResult, str]:
        """The operation's result and its status code's name."""
        done = pb.LedgerOperationResult(operation_id=operation.operation_id)
        try:
            found = violations(self._validator, operation)
            if found:
                status = status_for_violations(
                    found, domain=DOMAIN, message_type=operation.DESCRIPTOR.full_name
                )
                done.error = status.SerializeToString()
                return done, "INVALID_ARGUMENT"
            if kind == "reserve":
                done.reserve.CopyFrom(await self._servicer.reserve(operation.reserve))
            elif kind == "commit":
                done.commit.CopyFrom(await self._servicer.commit(operation.commit))
            else:
                done.release.CopyFrom(await self._servicer.release(operation.release))
            return done, "OK"
        except DomainError as exc:
            done.error = status_for(exc, default_domain=DOMAIN).SerializeToString()
            return done, exc.code.name
        except Exception:
            log.exception("ledger operation failed", extra={"operation": kind})
            bug = DomainError("internal error", reason="INTERNAL")
            bug.code = grpc.StatusCode.INTERNAL
            done.error = status_for(bug, default_domain=DOMAIN).SerializeToString()
            return done, "INTERNAL"
