"""Prometheus metrics of the pool (names declared once, here)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from llm_pool.generation import Finished, StreamFailed

GENERATIONS = Counter(
    "waybill_llm_generations_total",
    "Generations that ended, by use case, backend and outcome (ok or the error kind).",
    ["use_case", "backend", "outcome"],
)
FALLBACKS = Counter(
    "waybill_llm_fallbacks_total",
    "Times the pool moved past a backend, by use case, backend and why.",
    ["use_case", "backend", "reason"],
)
RETRIES = Counter(
    "waybill_llm_retries_total", "Retries on the same backend.", ["use_case", "backend"]
)
TOKENS = Counter(
    "waybill_llm_tokens_total",
    "Tokens consumed, by backend, model, direction (input/output) and how they were counted.",
    ["backend", "model", "direction", "source"],
)
COST_MICROS = Counter(
    "waybill_llm_cost_micro_units_total",
    "Charges under the price table, in micro units.",
    ["backend", "model", "currency"],
)
TTFT = Histogram(
    "waybill_llm_time_to_first_token_seconds",
    "Time from the pool's start to the first delta, retries and fallbacks included.",
    ["backend"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1, 2, 5),
)
BREAKER_STATE = Gauge(
    "waybill_llm_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.", ["backend"]
)
BREAKER_TRANSITIONS = Counter(
    "waybill_llm_breaker_transitions_total", "Breaker transitions, by new state.", ["backend", "to"]
)
BACKEND_READY = Gauge(
    "waybill_llm_backend_ready", "1 while the backend's model reports ready.", ["backend"]
)


def _usage(backend: str, model: str, inp: int, out: int, source: str) -> None:
    if inp:
        TOKENS.labels(backend, model, "input", source).inc(inp)
    if out:
        TOKENS.labels(backend, model, "output", source).inc(out)


def observe_finished(use_case: str, event: Finished) -> None:
    """Count a generation that finished."""
    backend = event.backend_id or event.backend
    GENERATIONS.labels(use_case, backend, "ok").inc()
    TTFT.labels(backend).observe(event.time_to_first_token_us / 1e6)
    _usage(backend, event.model, event.input_tokens, event.output_tokens, event.usage_source)
    if event.charge is not None and event.charge.micro_units:
        COST_MICROS.labels(backend, event.model, event.charge.currency_code).inc(
            event.charge.micro_units
        )


def observe_failed(use_case: str, event: StreamFailed, kind: str) -> None:
    """Count a failed attempt, with what it consumed."""
    backend = event.backend_id or event.backend
    GENERATIONS.labels(use_case, backend, kind).inc()
    _usage(backend, event.model, event.input_tokens, event.output_tokens, event.usage_source)
    if event.charge is not None and event.charge.micro_units:
        COST_MICROS.labels(backend, event.model, event.charge.currency_code).inc(
            event.charge.micro_units
        )
