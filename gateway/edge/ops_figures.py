"""The ops page's figures, computed from scraped samples and the ledger's cost rows.

Pure functions: no I/O, no clock. Counters and histograms are cumulative since each
service started, so every figure here is "since start" (the page says so); latency
percentiles are estimated from histogram buckets the way PromQL's
``histogram_quantile`` does (linear within the bucket). Nothing is invented: a figure
without samples is reported as empty, and the page shows that state.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.edge.metrics_scrape import Sample

QUANTILES = (0.5, 0.95, 0.99)
"""The latency percentiles shown."""
TURN_METHOD = "Converse"
"""The gateway method one conversation turn is (metrics label methods by their short name)."""

RPC_BUCKETS = "waybill_rpc_duration_seconds_bucket"
RPC_TOTAL = "waybill_rpc_total"
ESCALATIONS = "waybill_escalations_total"
CONFIDENCE_BUCKETS = "waybill_router_confidence_bucket"
LOW_CONFIDENCE = "waybill_router_low_confidence_total"
CACHES: Mapping[str, str] = {
    "waybill_embedding_cache_lookups_total": "Embedding cache",
    "waybill_router_decision_cache_lookups_total": "Router decision cache",
    "waybill_answer_cache_lookups_total": "Answer cache",
}
"""Cache lookup counters (label ``result``: hit or miss) and the name each is shown by."""
START_TIME = "process_start_time_seconds"


@dataclass(frozen=True, slots=True)
class CostRow:
    """One (team, day) row of a tenant's cost report."""

    tenant: str
    team: str
    day: str
    """``YYYY-MM-DD`` (UTC)."""
    requests: int
    cost_micros: int
    currency: str


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, as PromQL estimates
    it; None without observations. Beyond the last finite bound: that bound."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q} is not within [0, 1]")
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank and count > lower_count:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = (bound if not math.isinf(bound) else lower_bound), count
    return lower_bound


def _buckets(
    samples: Iterable[Sample], name: str, keys: Sequence[str]
) -> dict[Any, dict[float, float]]:
    """Cumulative bucket counts by ``keys`` labels, summed over sources."""
    found: dict[Any, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for s in samples:
        if s.name != name or "le" not in s.labels:
            continue
        group = tuple(s.labels.get(k, "") for k in keys)
        found[group][float(s.labels["le"])] += s.value
    return found


def _short_method(method: str) -> str:
    """``/pkg.Service/Method`` as ``Method``."""
    return method.rsplit("/", 1)[-1] or method


def latency(samples: Sequence[Sample]) -> dict[str, Any]:
    """Server-side latency percentiles (milliseconds) per service and method served."""
    rows = []
    for (service, method), by_bound in _buckets(
        samples, RPC_BUCKETS, ("service", "method")
    ).items():
        buckets = sorted(by_bound.items())
        count = buckets[-1][1] if buckets else 0.0
        if count <= 0:
            continue
        row: dict[str, Any] = {
            "service": service,
            "method": _short_method(method),
            "count": int(count),
        }
        for q in QUANTILES:
            value = histogram_quantile(q, buckets)
            row[f"p{round(q * 100)}Ms"] = None if value is None else round(value * 1000, 3)
        rows.append(row)
    rows.sort(key=lambda r: (r["service"], r["method"]))
    return {"quantiles": list(QUANTILES), "rows": rows}


def escalation(samples: Sequence[Sample]) -> dict[str, Any]:
    """Turns handed over to a person over turns taken by the gateway."""
    turns = sum(
        s.value
        for s in samples
        if s.name == RPC_TOTAL
        and s.labels.get("service") == "gateway"
        and _short_method(s.labels.get("method", "")) == TURN_METHOD
    )
    by_reason: dict[str, float] = defaultdict(float)
    for s in samples:
        if s.name == ESCALATIONS:
            by_reason[s.labels.get("reason", "")] += s.value
    escalated = sum(by_reason.values())
    return {
        "turns": int(turns),
        "escalated": int(escalated),
        "rate": round(escalated / turns, 4) if turns else None,
        "byReason": [
            {"reason": reason, "count": int(count)}
            for reason, count in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def router_confidence(samples: Sequence[Sample]) -> dict[str, Any]:
    """How confident the router was: observations per confidence bucket, low-confidence reasons."""
    by_bound = _buckets(samples, CONFIDENCE_BUCKETS, ()).get((), {})
    buckets = sorted(by_bound.items())
    rows = []
    previous = 0.0
    for bound, cumulative in buckets:
        rows.append(
            {
                "upTo": None if math.isinf(bound) else bound,
                "count": int(cumulative - previous),
            }
        )
        previous = cumulative
    count = int(buckets[-1][1]) if buckets else 0
    median = histogram_quantile(0.5, buckets) if count else None
    low: dict[str, float] = defaultdict(float)
    for s in samples:
        if s.name == LOW_CONFIDENCE:
            low[s.labels.get("reason", "")] += s.value
    return {
        "count": count,
        "median": None if median is None else round(median, 4),
        "buckets": rows if count else [],
        "lowConfidence": [
            {"reason": reason, "count": int(n)}
            for reason, n in sorted(low.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def caches(samples: Sequence[Sample]) -> dict[str, Any]:
    """Hits and misses of each cache that has been looked up; ``state`` ``empty`` when none
    has (the page then says so instead of drawing anything)."""
    lookups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in samples:
        if s.name in CACHES:
            lookups[s.name][s.labels.get("result", "")] += s.value
    rows = []
    for metric, shown in CACHES.items():
        results = lookups.get(metric)
        if not results:
            continue
        hits, misses = results.get("hit", 0.0), results.get("miss", 0.0)
        if hits + misses <= 0:
            continue
        rows.append(
            {
                "name": shown,
                "hits": int(hits),
                "misses": int(misses),
                "hitRatio": round(hits / (hits + misses), 4),
            }
        )
    return {
        "state": "ok" if rows else "empty",
        "message": "" if rows else "No cache data yet: no cache lookups have been recorded.",
        "caches": rows,
    }


def started_at(samples: Sequence[Sample]) -> dict[str, float]:
    """Each source's process start (seconds since the epoch), when it exports it."""
    return {s.source: s.value for s in samples if s.name == START_TIME}


def window_days(last_day: date, days: int) -> list[str]:
    """The ``days`` UTC days ending with ``last_day``, oldest first."""
    return [(last_day - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


def cost_by_team_and_day(rows: Iterable[CostRow], days: Sequence[str]) -> dict[str, Any]:
    """One series per (tenant, team, currency): cost and requests on each day of ``days``
    (a day without charges is a real zero: the report covered it)."""
    index = {day: i for i, day in enumerate(days)}
    series: dict[tuple[str, str, str], dict[str, list[int]]] = {}
    for row in rows:
        if row.day not in index:
            continue
        key = (row.tenant, row.team, row.currency)
        found = series.setdefault(key, {"costMicros": [0] * len(days), "requests": [0] * len(days)})
        found["costMicros"][index[row.day]] += row.cost_micros
        found["requests"][index[row.day]] += row.requests
    return {
        "days": list(days),
        "series": [
            {"tenant": tenant, "team": team, "currency": currency, **values}
            for (tenant, team, currency), values in sorted(series.items())
        ],
    }
