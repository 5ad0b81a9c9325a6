"""The price table: what a generation costs, in integer micro units.

Prices are micro units of the currency per one million tokens, per backend
kind and model (``triton/llama-3.1-8b-instruct``), in a versioned file next to
this module; every charge names the table version it was computed with.
Self-hosted prices are an internal transfer price (GPU-hours over measured
throughput); hosted prices follow the provider's list.

Integer arithmetic only, rounded up to the next micro unit: a generation is
never charged less than it consumed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from llm_pool.generation import Charge

DEFAULT_FILE = Path(__file__).with_name("prices.json")
PER = 1_000_000

UNPRICED = Counter(
    "waybill_llm_unpriced_generations_total",
    "Generations whose backend/model has no price in the table (not charged).",
    ["backend", "model"],
)


class PriceError(ValueError):
    """The price table cannot be used."""


@dataclass(frozen=True, slots=True)
class Price:
    """Micro units per one million tokens."""

    input: int
    output: int


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices per ``backend/model`` under one version."""

    version: str
    currency_code: str
    prices: Mapping[str, Price]

    def charge(
        self, backend: str, model: str, *, input_tokens: int, output_tokens: int
    ) -> Charge | None:
        """The charge for one generation, or None (and a counted miss) if unpriced."""
        price = self.prices.get(f"{backend}/{model}")
        if price is None:
            UNPRICED.labels(backend, model).inc()
            return None
        total = input_tokens * price.input + output_tokens * price.output
        micros = -(-total // PER)  # ceiling division: never under-charge
        return Charge(self.currency_code, micros, self.version)


def parse(raw: Mapping[str, Any]) -> PriceTable:
    """Validate a price document."""
    version = raw.get("version")
    currency = raw.get("currency_code")
    if not isinstance(version, str) or not version:
        raise PriceError("version must be a non-empty string")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise PriceError("currency_code must be an ISO 4217 code")
    prices: dict[str, Price] = {}
    for key, value in (raw.get("prices") or {}).items():
        if "/" not in key:
            raise PriceError(f"price key {key!r} must be backend/model")
        try:
            price = Price(input=value["input"], output=value["output"])
        except (KeyError, TypeError):
            raise PriceError(f"{key} needs integer input and output prices") from None
        if not all(isinstance(p, int) and p >= 0 for p in (price.input, price.output)):
            raise PriceError(f"{key}: prices are non-negative integers (micro units per 1M)")
        prices[key] = price
    return PriceTable(version=version, currency_code=currency, prices=prices)


PRICES_ENV = "WAYBILL_PRICES_FILE"
"""Another price table for every process of a mesh (the workers price generations with it,
the gateway its reservations, the ledger its charges): one file for all of them."""


def load(path: Path | None = None) -> PriceTable:
    """The price table from ``path``, else ``WAYBILL_PRICES_FILE``, else the versioned file."""
    source = path or Path(os.environ.get(PRICES_ENV) or DEFAULT_FILE)
    try:
        return parse(json.loads(source.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceError(f"cannot read price table {source}: {exc}") from None
