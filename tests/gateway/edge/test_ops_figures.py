"""The ops page's figures from samples: exposition text written by prometheus_client itself."""

from __future__ import annotations

from datetime import date

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.edge import ops_figures
from gateway.edge.metrics_scrape import Sample, parse
from gateway.edge.ops_figures import CostRow, histogram_quantile

RPC_BUCKETS = (0.001, 0.01, 0.1, 1.0)


def _exposition(
    *,
    latencies: dict[tuple[str, str], list[float]] | None = None,
    turns: int = 0,
    escalations: dict[str, int] | None = None,
    confidences: list[float] | None = None,
    cache: dict[str, int] | None = None,
) -> str:
    registry = CollectorRegistry()
    seconds = Histogram(
        "waybill_rpc_duration_seconds",
        "latency",
        ["service", "method"],
        buckets=RPC_BUCKETS,
        registry=registry,
    )
    for (service, method), values in (latencies or {}).items():
        for value in values:
            seconds.labels(service, method).observe(value)
    total = Counter("waybill_rpc", "rpcs", ["service", "method", "code"], registry=registry)
    if turns:
        total.labels("gateway", ops_figures.TURN_METHOD, "OK").inc(turns)
    handed = Counter("waybill_escalations", "escalations", ["reason"], registry=registry)
    for reason, n in (escalations or {}).items():
        handed.labels(reason).inc(n)
    confidence = Histogram(
        "waybill_router_confidence", "confidence", buckets=(0.5, 0.9, 1.0), registry=registry
    )
    for value in confidences or []:
        confidence.observe(value)
    lookups = Counter("waybill_embedding_cache_lookups", "lookups", ["result"], registry=registry)
    for result, n in (cache or {}).items():
        lookups.labels(result).inc(n)
    return generate_latest(registry).decode()


def _samples(text: str, source: str = "gateway") -> list[Sample]:
    return parse(text, source=source)


def test_quantiles_interpolate_within_the_bucket_as_promql_does() -> None:
    buckets = [(0.1, 10.0), (0.2, 20.0), (float("inf"), 20.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    # Past the last finite bound: that bound, as PromQL answers.
    assert histogram_quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == pytest.approx(0.1)
    assert histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.5, []) is None
    with pytest.raises(ValueError, match="quantile"):
        histogram_quantile(1.5, buckets)


def test_latency_rows_per_service_and_method() -> None:
    text = _exposition(
        latencies={
            ("gateway", ops_figures.TURN_METHOD): [0.005] * 9 + [0.5],
            ("router", "Classify"): [0.0005] * 4,
        }
    )
    rows = ops_figures.latency(_samples(text))["rows"]
    assert [(r["service"], r["method"], r["count"]) for r in rows] == [
        ("gateway", "Converse", 10),
        ("router", "Classify", 4),
    ]
    gateway = rows[0]
    assert 1.0 < gateway["p50Ms"] <= 10.0
    assert 100.0 < gateway["p99Ms"] <= 1000.0
    assert gateway["p50Ms"] <= gateway["p95Ms"] <= gateway["p99Ms"]


def test_escalation_rate_is_hand_overs_over_turns() -> None:
    text = _exposition(turns=8, escalations={"asked": 1, "fraud": 1})
    found = ops_figures.escalation(_samples(text))
    assert found == {
        "turns": 8,
        "escalated": 2,
        "rate": 0.25,
        "byReason": [{"reason": "asked", "count": 1}, {"reason": "fraud", "count": 1}],
    }
    assert ops_figures.escalation([])["rate"] is None


def test_router_confidence_buckets_are_not_cumulative() -> None:
    text = _exposition(confidences=[0.3, 0.95, 0.97, 0.99])
    found = ops_figures.router_confidence(_samples(text, "router"))
    assert found["count"] == 4
    assert found["buckets"] == [
        {"upTo": 0.5, "count": 1},
        {"upTo": 0.9, "count": 0},
        {"upTo": 1.0, "count": 3},
        {"upTo": None, "count": 0},
    ]
    assert 0.9 < found["median"] <= 1.0
    assert ops_figures.router_confidence([])["buckets"] == []


def test_caches_without_lookups_say_so_instead_of_zeros() -> None:
    empty = ops_figures.caches(_samples(_exposition()))
    assert empty["state"] == "empty"
    assert empty["caches"] == []
    assert "No cache data yet" in empty["message"]
    found = ops_figures.caches(_samples(_exposition(cache={"hit": 3, "miss": 1})))
    assert found["state"] == "ok"
    assert found["caches"] == [
        {"name": "Embedding cache", "hits": 3, "misses": 1, "hitRatio": 0.75}
    ]


def test_samples_of_several_sources_add_up() -> None:
    one = _samples(_exposition(escalations={"asked": 1}), "negotiation")
    two = _samples(_exposition(turns=4), "gateway")
    assert ops_figures.escalation(one + two)["rate"] == 0.25


def test_unparsable_text_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="could not convert"):
        parse("waybill_rpc_total{service=gateway 1\n", source="gateway")


def test_costs_per_team_fill_every_day_of_the_window() -> None:
    days = ops_figures.window_days(date(2026, 12, 7), 3)
    assert days == ["2026-12-05", "2026-12-06", "2026-12-07"]
    rows = [
        CostRow("acme-retail", "support", "2026-12-05", 2, 300, "USD"),
        CostRow("acme-retail", "support", "2026-12-07", 1, 100, "USD"),
        CostRow("globex-home", "support", "2026-12-06", 4, 0, "USD"),
        CostRow("acme-retail", "support", "2026-11-01", 9, 999, "USD"),  # outside: left out
    ]
    found = ops_figures.cost_by_team_and_day(rows, days)
    assert found["days"] == days
    assert found["series"] == [
        {
            "tenant": "acme-retail",
            "team": "support",
            "currency": "USD",
            "costMicros": [300, 0, 100],
            "requests": [2, 0, 1],
        },
        {
            "tenant": "globex-home",
            "team": "support",
            "currency": "USD",
            "costMicros": [0, 0, 0],
            "requests": [0, 4, 0],
        },
    ]
