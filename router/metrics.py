"""Router metrics (Prometheus), exposed with the process's other metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

CLASSIFICATIONS = Counter(
    "waybill_router_classifications_total",
    "Messages classified, by intent and method.",
    ["intent", "method"],
)
LOW_CONFIDENCE = Counter(
    "waybill_router_low_confidence_total",
    "Messages sent to the low-confidence bucket, by reason. Its rate is the drift signal:"
    " a rise means traffic the exemplars do not cover.",
    ["reason"],
)
CLASSIFIER = Info(
    "waybill_router_classifier", "The classifier in use (model, exemplar set, version)."
)
EXEMPLARS = Gauge("waybill_router_exemplars", "Exemplars in the index in use.")
INDEX_SWAPS = Counter("waybill_router_index_swaps_total", "Exemplar indexes swapped in.")
BATCH_SIZE = Histogram(
    "waybill_router_batch_size",
    "Messages embedded per model run.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
BATCH_SECONDS = Histogram(
    "waybill_router_batch_seconds",
    "Seconds per model run (tokenize, embed, search, decide).",
    buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256),
)
CONFIDENCE = Histogram(
    "waybill_router_confidence",
    "Calibrated confidence of each classification.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)
FALLBACK_CALLS = Counter(
    "waybill_router_fallback_total",
    "Low-confidence messages offered to the LLM-router fallback, by outcome"
    " (decided, declined, error, no_time).",
    ["outcome"],
)

DECISION_CACHE = Counter(
    "waybill_router_decision_cache_lookups_total",
    "Decisions looked up for messages seen before, by result.",
    ["result"],
)
