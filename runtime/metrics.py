"""Prometheus metrics shared by every service; exposed when a metrics port is set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPC_TOTAL = Counter(
    "waybill_rpc_total", "RPCs served, by method and status code.", ["service", "method", "code"]
)
RPC_SECONDS = Histogram(
    "waybill_rpc_duration_seconds",
    "Server-side RPC latency.",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
RPC_IN_FLIGHT = Gauge(
    "waybill_rpc_in_flight",
    "Calls being served right now, by method (what the autoscalers scale on).",
    ["service", "method"],
)
VALIDATION_FAILURES = Counter(
    "waybill_validation_failures_total",
    "Requests rejected by protovalidate, by method and rule id.",
    ["service", "method", "rule_id"],
)


def expose(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on ``host:port`` (port 0 disables; in a pod, host 0.0.0.0)."""
    if port:
        start_http_server(port, addr=host)


GUARDRAIL_VERDICTS = Counter(
    "waybill_guardrail_verdicts_total",
    "Guardrail outcomes: blocked inputs, dropped texts, stopped answers, by check and action.",
    ["check", "action"],
)
RATELIMIT_DECISIONS = Counter(
    "waybill_ratelimit_decisions_total",
    "Rate-limit checks at admission, by scope (team/user), limit (requests/tokens) and decision "
    "(admitted/refused).",
    ["scope", "limit", "decision"],
)
RATELIMIT_DEGRADED = Counter(
    "waybill_ratelimit_degraded_total",
    "Rate-limit decisions taken by a replica alone because the shared store (Redis) did not "
    "answer.",
)
CACHE_LOOKUPS = Counter(
    "waybill_answer_cache_lookups_total",
    "Answer cache lookups, by use case, result (hit, miss, error) and, for a hit, how it "
    "matched (exact, semantic).",
    ["use_case", "result", "match"],
)
CACHE_STORES = Counter(
    "waybill_answer_cache_stores_total",
    "Answers offered to the answer cache, by use case and outcome (stored, error).",
    ["use_case", "outcome"],
)
CACHE_BYPASSED = Counter(
    "waybill_answer_cache_bypassed_total",
    "Turns the answer cache neither served nor kept, by use case and why (personal data, "
    "a customer's own order, a tool outside the use case, no policy version, ...).",
    ["use_case", "reason"],
)
CACHE_EMBEDDINGS = Counter(
    "waybill_answer_cache_embeddings_total",
    "Question vectors of semantic lookups, by use case and source: 'reused' (brought by "
    "the caller: a policy turn's is the one the router classified with) or 'embedded' "
    "(the gateway ran the model).",
    ["use_case", "source"],
)
CACHE_LOOKUP_SECONDS = Histogram(
    "waybill_answer_cache_lookup_seconds",
    "Answer cache lookup latency (normalise, exact key, embedding and nearest entry).",
    ["use_case"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1),
)
