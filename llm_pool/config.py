"""The pool's configuration: backends, fallback chains per use case, retry policy.

The versioned default lives next to this module (``inference.json``). The
environment overrides it, so one image serves a laptop and the GPU fleet:

- ``WAYBILL_LLM_CONFIG``: path of another file with the same shape;
- ``WAYBILL_LLM_<BACKEND>_URL``: a backend's endpoint (``triton-small`` reads
  ``WAYBILL_LLM_TRITON_SMALL_URL``: ``host:port`` for Triton gRPC, the base URL
  ending in ``/v1`` for an OpenAI-compatible server);
- ``WAYBILL_LLM_<BACKEND>_MODEL``, ``_PROMPT_FORMAT``, ``_TOKENIZER``: the
  served model's name (as priced), prompt layout and ``tokenizer.json``;
- ``WAYBILL_LLM_CHAIN_<USE_CASE>``: a chain, e.g. ``triton-small,composer``.

A backend without an endpoint is left out of every chain, so the embedded
default (no URLs) is the composer alone. The composer is always the last link:
it is appended when a chain omits it and a chain that puts it elsewhere is
refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_pool.breaker import BreakerPolicy
from llm_pool.retry import RetryPolicy

DEFAULT_FILE = Path(__file__).with_name("inference.json")
COMPOSER = "composer"
KINDS = ("triton", "openai", "composer")
PROMPT_FORMATS = ("plain", "llama3")
SUPPORTED_VERSION = 1


class ConfigError(ValueError):
    """The inference configuration cannot be used."""


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One configured backend."""

    id: str
    """Name used in chains, metrics and breakers (``triton-small``)."""
    kind: str
    """``triton``, ``openai`` or ``composer``."""
    url: str = ""
    """Endpoint; empty leaves the backend out of every chain (except the composer)."""
    served_model: str = ""
    """Model name for pricing and for the OpenAI ``model`` field."""
    model_name: str = "ensemble"
    """Triton model to call (the TensorRT-LLM ensemble)."""
    prompt_format: str = "plain"
    """How the prompt is laid out for a raw-text model: ``plain`` or ``llama3``."""
    timeout_s: float = 30.0
    """Longest one attempt may take (the caller's deadline may cut it shorter)."""
    min_attempt_s: float = 0.05
    """An attempt is not started with less time than this left."""
    tokenizer_path: str = ""
    """``tokenizer.json`` of the served model, to count tokens the server does not report."""
    api_key_env: str = ""
    """Environment variable holding the API key (OpenAI-compatible servers)."""
    tool_mode: str = "tools"
    """How an OpenAI-compatible server gets a tool schema: ``tools`` or ``response_format``."""
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    """Its circuit breaker."""

    @property
    def enabled(self) -> bool:
        """Whether it can serve: the composer always, others once they have an endpoint."""
        return self.kind == COMPOSER or bool(self.url)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Backends, chains and the retry policy."""

    version: int
    backends: Mapping[str, BackendConfig]
    chains: Mapping[str, tuple[str, ...]]
    retry: RetryPolicy
    default_chain: tuple[str, ...] = (COMPOSER,)

    def chain(self, use_case: str) -> tuple[str, ...]:
        """The enabled backends tried for ``use_case``, in order."""
        names = self.chains.get(use_case, self.default_chain)
        return tuple(n for n in names if self.backends[n].enabled)


def _env_key(name: str) -> str:
    return name.upper().replace("-", "_")


def _breaker(raw: Mapping[str, Any], where: str) -> BreakerPolicy:
    try:
        return BreakerPolicy(
            failure_threshold=int(raw.get("failure_threshold", 3)),
            recovery_s=float(raw.get("recovery_s", 60.0)),
            probe_successes=int(raw.get("probe_successes", 1)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.breaker: {exc}") from None


def _backend(backend_id: str, raw: Mapping[str, Any], env: Mapping[str, str]) -> BackendConfig:
    where = f"backends.{backend_id}"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    key = _env_key(backend_id)
    prompt_format = env.get(f"WAYBILL_LLM_{key}_PROMPT_FORMAT") or str(
        raw.get("prompt_format", "plain")
    )
    if prompt_format not in PROMPT_FORMATS:
        raise ConfigError(f"{where}.prompt_format must be one of {', '.join(PROMPT_FORMATS)}")
    tool_mode = str(raw.get("tool_mode", "tools"))
    if tool_mode not in ("tools", "response_format"):
        raise ConfigError(f"{where}.tool_mode must be tools or response_format")
    try:
        timeout_s = float(raw.get("timeout_s", 30.0))
        min_attempt_s = float(raw.get("min_attempt_s", 0.05))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: timeout_s and min_attempt_s must be numbers") from None
    if timeout_s <= 0 or min_attempt_s < 0:
        raise ConfigError(f"{where}: timeout_s must be > 0 and min_attempt_s >= 0")
    return BackendConfig(
        id=backend_id,
        kind=kind,
        url=env.get(f"WAYBILL_LLM_{key}_URL") or str(raw.get("url", "")),
        served_model=env.get(f"WAYBILL_LLM_{key}_MODEL")
        or str(raw.get("served_model", COMPOSER + "-v1" if kind == COMPOSER else "")),
        model_name=str(raw.get("model_name", "ensemble")),
        prompt_format=prompt_format,
        timeout_s=timeout_s,
        min_attempt_s=min_attempt_s,
        tokenizer_path=env.get(f"WAYBILL_LLM_{key}_TOKENIZER")
        or str(raw.get("tokenizer_path", "")),
        api_key_env=str(raw.get("api_key_env", "")),
        tool_mode=tool_mode,
        breaker=_breaker(raw.get("breaker", {}), where),
    )


def _chain(use_case: str, names: Any, backends: Mapping[str, BackendConfig]) -> tuple[str, ...]:
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"chains.{use_case} must be a list of backend names")
    unknown = [n for n in names if n not in backends]
    if unknown:
        raise ConfigError(f"chains.{use_case} names unknown backends: {', '.join(unknown)}")
    chain = tuple(names)
    if COMPOSER in chain[:-1]:
        raise ConfigError(f"chains.{use_case}: the composer must be the last link")
    if COMPOSER not in chain:
        chain = (*chain, COMPOSER)
    return chain


def parse(raw: Mapping[str, Any], env: Mapping[str, str]) -> PoolConfig:
    """Validate a configuration document and apply the environment overrides."""
    version = raw.get("version")
    if version != SUPPORTED_VERSION:
        raise ConfigError(f"version must be {SUPPORTED_VERSION}, got {version!r}")
    raw_backends = raw.get("backends") or {}
    backends = {bid: _backend(bid, spec, env) for bid, spec in raw_backends.items()}
    if COMPOSER not in backends or backends[COMPOSER].kind != COMPOSER:
        raise ConfigError("backends must define 'composer' (kind composer)")
    chains = {uc: _chain(uc, names, backends) for uc, names in (raw.get("chains") or {}).items()}
    prefix = "WAYBILL_LLM_CHAIN_"
    for key, value in env.items():
        if key.startswith(prefix) and value:
            use_case = key[len(prefix) :].lower()
            names = [n.strip() for n in value.split(",") if n.strip()]
            chains[use_case] = _chain(use_case, names, backends)
    retry_raw = raw.get("retry") or {}
    try:
        retry = RetryPolicy(**{k: retry_raw[k] for k in retry_raw})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"retry: {exc}") from None
    return PoolConfig(version=version, backends=backends, chains=chains, retry=retry)


def with_chain(config: PoolConfig, use_case: str, names: tuple[str, ...]) -> PoolConfig:
    """``config`` with one more chain (a shadow candidate's); every backend it names must
    be known and have an endpoint, or a candidate would silently be the composer."""
    chain = _chain(use_case, list(names), config.backends)
    idle = [n for n in chain if not config.backends[n].enabled]
    if idle:
        raise ConfigError(
            f"chains.{use_case}: {', '.join(idle)} has no endpoint "
            f"(WAYBILL_LLM_{_env_key(idle[0])}_URL)"
        )
    return dataclasses.replace(config, chains={**config.chains, use_case: chain})


def load(env: Mapping[str, str] | None = None) -> PoolConfig:
    """The configuration from ``WAYBILL_LLM_CONFIG`` (or the default file) and the environment."""
    source = os.environ if env is None else env
    path = Path(source.get("WAYBILL_LLM_CONFIG") or DEFAULT_FILE)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"inference configuration {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return parse(raw, source)
