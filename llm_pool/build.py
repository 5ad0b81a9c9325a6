"""Building the pool a worker uses from the inference configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping

from llm_pool import pricing
from llm_pool.composer import Composer, Template
from llm_pool.config import COMPOSER, PoolConfig
from llm_pool.openai import OpenAIBackend
from llm_pool.pool import Backend, LinkOptions, LLMPool
from llm_pool.tokens import counter_for
from llm_pool.triton import TritonBackend


def build_pool(
    config: PoolConfig,
    *,
    templates: Mapping[str, Template],
    prices: pricing.PriceTable | None = None,
    env: Mapping[str, str] | None = None,
    deadline_margin_s: float = 0.005,
    chains: Mapping[str, tuple[str, ...]] | None = None,
) -> LLMPool:
    """Every enabled backend of ``config`` behind its breaker, chained per use case
    (``chains`` replaces the configuration's: the model API's chains, one per model)."""
    source = os.environ if env is None else env
    backends: list[Backend] = []
    options: dict[str, LinkOptions] = {}
    for backend_id, spec in config.backends.items():
        if not spec.enabled:
            continue
        backend: Backend
        if spec.kind == COMPOSER:
            backend = Composer(templates)
        elif spec.kind == "triton":
            backend = TritonBackend(
                name=backend_id,
                url=spec.url,
                served_model=spec.served_model,
                model_name=spec.model_name,
                prompt_format=spec.prompt_format,
                tokenizer=counter_for(spec.tokenizer_path),
            )
        else:
            backend = OpenAIBackend(
                name=backend_id,
                base_url=spec.url,
                served_model=spec.served_model,
                api_key=source.get(spec.api_key_env, "") if spec.api_key_env else "",
                tool_mode=spec.tool_mode,
                tokenizer=counter_for(spec.tokenizer_path),
            )
        backends.append(backend)
        options[backend_id] = LinkOptions(
            timeout_s=spec.timeout_s, min_attempt_s=spec.min_attempt_s, breaker=spec.breaker
        )
    return LLMPool(
        backends,
        chains if chains is not None else {uc: config.chain(uc) for uc in config.chains},
        default_chain=config.chain(""),
        options=options,
        retry=config.retry,
        prices=prices or pricing.load(),
        deadline_margin_s=deadline_margin_s,
    )
