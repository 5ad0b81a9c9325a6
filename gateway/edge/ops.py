"""The ops page's data: ``GET /v1/ops/summary`` and who may read it.

Embedded default only: the edge serves it when the launcher named the services'
metrics endpoints (``WAYBILL_EDGE_OPS_METRICS``, refused unless the edge listens on
loopback), and answers only a client connected from this machine that names this
machine in its Host header, as for demo tokens. The figures cover every tenant's
costs and the whole mesh's behaviour: they are for the operator of this machine.

What it reads: every service's Prometheus metrics (the same ones a Prometheus server
scrapes) and the ledger's GetCostReport per tenant, by team and UTC day. What it
answers never carries an address, a key, a customer id or message content; a source
that failed is named with what went wrong, and its figures are left empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
from starlette.requests import Request

from gateway.edge import ops_figures
from gateway.edge.errors import EdgeError, invalid_argument
from gateway.edge.forwarding import loopback_host
from gateway.edge.ledger_client import LedgerClient
from gateway.edge.metrics_scrape import SCRAPE_TIMEOUT_S, scrape_all
from gateway.edge.ops_figures import CostRow
from gateway.edge.settings import EdgeSettings, is_loopback

log = logging.getLogger("waybill.edge")

DEFAULT_DAYS = 7
MAX_DAYS = 31
LEDGER_TIMEOUT_S = 5.0
QUERY_PARAMETERS = ("days", "tenant")


def _off() -> EdgeError:
    return EdgeError(
        404,
        grpc.StatusCode.NOT_FOUND,
        "the ops page is served only by the embedded default (waybill up)",
        reason="OPS_OFF",
    )


def _not_local() -> EdgeError:
    return EdgeError(
        403,
        grpc.StatusCode.PERMISSION_DENIED,
        "the ops page is only shown to clients on this machine",
        reason="LOOPBACK_ONLY",
    )


def check_caller(request: Request, settings: EdgeSettings) -> None:
    """Nothing when this caller may see the ops page, else the refusal (404 off, 403 remote)."""
    if not settings.ops_enabled:
        raise _off()
    client = request.client.host if request.client is not None else ""
    if not is_loopback(client) or not loopback_host(request.headers):
        raise _not_local()


@dataclass(frozen=True, slots=True)
class OpsQuery:
    """What a summary request asks for."""

    days: int
    """UTC days of costs, ending today."""
    tenants: tuple[str, ...]
    """Tenants whose costs are reported."""


def parse_query(items: Sequence[tuple[str, str]], *, tenants: Sequence[str]) -> OpsQuery:
    """``?days=1..31&tenant=<one of tenants>``, each at most once; 400 naming the parameter."""
    values: dict[str, str] = {}
    for key, value in items:
        if key not in QUERY_PARAMETERS:
            raise invalid_argument(
                f"unknown query parameter {key!r}; allowed: {', '.join(QUERY_PARAMETERS)}",
                reason="UNKNOWN_QUERY_PARAMETER",
                field_path=key,
            )
        if key in values:
            raise invalid_argument(
                f"query parameter {key!r} is given more than once",
                reason="REPEATED_QUERY_PARAMETER",
                field_path=key,
            )
        values[key] = value
    days = DEFAULT_DAYS
    if "days" in values:
        text = values["days"]
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_DAYS:
            raise invalid_argument(
                f"days must be a whole number from 1 to {MAX_DAYS}",
                reason="int.range",
                field_path="days",
                metadata={"min": "1", "max": str(MAX_DAYS)},
            )
        days = int(text)
    chosen = tuple(tenants)
    if "tenant" in values:
        if values["tenant"] not in tenants:
            raise invalid_argument(
                f"tenant must be one of: {', '.join(tenants)}",
                reason="UNKNOWN_TENANT",
                field_path="tenant",
            )
        chosen = (values["tenant"],)
    return OpsQuery(days=days, tenants=chosen)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class OpsBoard:
    """Gathers the figures of one summary: every source at once, each with its deadline."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        ledger: LedgerClient | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger or LedgerClient(settings.ops_ledger)
        self._http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        self._now = now or (lambda: datetime.now(UTC))

    async def summary(self, query: OpsQuery) -> dict[str, Any]:
        """The summary the page draws (see docs/rest-edge.md for its shape)."""
        now = self._now()
        today = now.astimezone(UTC).date()
        end = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)
        start = end - timedelta(days=query.days)
        scrapes_task = scrape_all(
            self._http, self._settings.ops_metrics, timeout_s=SCRAPE_TIMEOUT_S
        )
        costs_task = self._costs(query.tenants, start=start, end=end)
        scrapes, (rows, ledger_problem) = await asyncio.gather(scrapes_task, costs_task)
        samples = [s for scrape in scrapes for s in scrape.samples]
        started = ops_figures.started_at(samples)
        sources: list[dict[str, Any]] = []
        for scrape in scrapes:
            entry: dict[str, Any] = {"name": scrape.source, "ok": not scrape.problem}
            if scrape.problem:
                entry["problem"] = scrape.problem
            elif scrape.source in started:
                entry["startTime"] = _iso(datetime.fromtimestamp(started[scrape.source], UTC))
            sources.append(entry)
        ledger_entry: dict[str, Any] = {"name": "ledger (cost report)", "ok": not ledger_problem}
        if ledger_problem:
            ledger_entry["problem"] = ledger_problem
        sources.append(ledger_entry)
        days = ops_figures.window_days(today, query.days)
        cost = ops_figures.cost_by_team_and_day(rows, days)
        cost["tenants"] = list(query.tenants)
        cost["ok"] = not ledger_problem
        return {
            "generatedAt": _iso(now),
            "window": {"days": query.days, "firstDay": days[0], "lastDay": days[-1]},
            "sources": sources,
            "cost": cost,
            "escalation": ops_figures.escalation(samples),
            "latency": ops_figures.latency(samples),
            "routerConfidence": ops_figures.router_confidence(samples),
            "caches": ops_figures.caches(samples),
        }

    async def _costs(
        self, tenants: Sequence[str], *, start: datetime, end: datetime
    ) -> tuple[list[CostRow], str]:
        """Every tenant's rows, or none and the problem (one failed tenant fails the panel:
        a partial sum would read as the whole)."""
        try:
            found = await asyncio.gather(
                *(
                    self._ledger.cost_by_team_and_day(
                        tenant, start=start, end=end, timeout_s=LEDGER_TIMEOUT_S
                    )
                    for tenant in tenants
                )
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "cost report failed",
                extra={"grpc_status": exc.code().name, "detail": exc.details()},
            )
            return [], _ledger_problem(exc.code())
        return [row for rows in found for row in rows], ""

    async def close(self) -> None:
        """Close the HTTP client and the ledger channel."""
        await self._http.aclose()
        await self._ledger.close()


_LEDGER_PROBLEMS: Mapping[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: "the ledger is not available",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the ledger did not answer in time",
}


def _ledger_problem(code: grpc.StatusCode) -> str:
    return _LEDGER_PROBLEMS.get(code, f"the cost report failed ({code.name})")
