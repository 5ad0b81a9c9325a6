"""Which models the model API serves, the fallback chain behind each, and its worst case.

A model is a served model of a configured backend that has an endpoint (the inference
configuration's ``served_model``: ``gpt-4o-mini``, ``llama-3.1-8b-instruct``). A call
for it tries the backends serving it, then the ``direct`` chain of the configuration
(``WAYBILL_LLM_CHAIN_DIRECT``), each behind its breaker and retries (the LLM pool).
The composer is never part of these chains: it answers plans, not conversations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from waybill.common.v1 import money_pb2

from llm_pool.config import COMPOSER, PoolConfig
from llm_pool.pricing import PER, PriceTable
from runtime.errors import NotFound

DIRECT_CHAIN = "direct"
"""The configuration's chain that follows a model's own backends."""
USE_CASE_PREFIX = "direct:"
"""Pool use cases of model calls are ``direct:<model>`` (one chain per model)."""


@dataclass(frozen=True, slots=True)
class Model:
    """One model the API lists."""

    id: str
    """The served model's name, as callers send it in ``model``."""
    chain: tuple[str, ...]
    """Backend ids tried in order."""
    kinds: tuple[tuple[str, str], ...]
    """(backend kind, served model) of each link, for pricing."""

    @property
    def use_case(self) -> str:
        """The pool use case whose chain this is."""
        return USE_CASE_PREFIX + self.id


class Catalogue:
    """The served models and what a call to each may cost at most."""

    def __init__(self, config: PoolConfig, prices: PriceTable) -> None:
        self._prices = prices
        enabled = {
            bid: spec
            for bid, spec in config.backends.items()
            if spec.enabled and spec.kind != COMPOSER and spec.served_model
        }
        fallbacks = tuple(b for b in config.chains.get(DIRECT_CHAIN, ()) if b in enabled)
        serving: dict[str, list[str]] = {}
        for bid, spec in enabled.items():
            serving.setdefault(spec.served_model, []).append(bid)
        self.models: dict[str, Model] = {}
        for name, own in sorted(serving.items()):
            chain = tuple(dict.fromkeys((*own, *fallbacks)))
            kinds = tuple((enabled[b].kind, enabled[b].served_model) for b in chain)
            self.models[name] = Model(id=name, chain=chain, kinds=kinds)

    def chains(self) -> Mapping[str, tuple[str, ...]]:
        """The pool's chains: one per model."""
        return {m.use_case: m.chain for m in self.models.values()}

    def model(self, name: str) -> Model:
        """The model called ``name``; NOT_FOUND (MODEL_NOT_FOUND) when none is served."""
        found = self.models.get(name)
        if found is None:
            raise NotFound(
                f"the model {name[:64]!r} does not exist or is not served here; "
                "GET /v1/models lists those that are",
                reason="MODEL_NOT_FOUND",
                metadata={"param": "model"},
            )
        return found

    def worst_case(self, model: Model, *, input_tokens: int, output_tokens: int) -> money_pb2.Cost:
        """The most a call may cost: the dearest link of its chain (an unpriced link is
        priced at the dearest model of the table), rounded up."""
        table = self._prices.prices
        dearest_in = max((p.input for p in table.values()), default=0)
        dearest_out = max((p.output for p in table.values()), default=0)
        worst = 0
        for kind, served in model.kinds:
            price = table.get(f"{kind}/{served}")
            per_in = price.input if price is not None else dearest_in
            per_out = price.output if price is not None else dearest_out
            worst = max(worst, input_tokens * per_in + output_tokens * per_out)
        return money_pb2.Cost(
            currency_code=self._prices.currency_code, micro_units=-(-worst // PER)
        )
