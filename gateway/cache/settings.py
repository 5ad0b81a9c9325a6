"""Answer cache settings from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.cache.core import UseCase
from retrieval.settings import default_kb_dir
from runtime.settings import SettingsError, env_bool, env_float, env_int, env_str

MODES = ("auto", "memory", "redis", "off")
USE_CASES: dict[str, UseCase] = {
    "policy": UseCase("policy", ttl_s=3600.0, threshold=0.95),
    # Deterministic direct model calls (temperature 0), matched byte for byte.
    "direct": UseCase("direct", ttl_s=600.0, threshold=1.01, normalise=False),
}
"""Cached use cases and their defaults; each reads ``WAYBILL_CACHE_<NAME>_TTL_S`` and
``WAYBILL_CACHE_<NAME>_THRESHOLD``."""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """How answers are cached."""

    mode: str = "auto"
    """``auto`` (Redis when ``WAYBILL_REDIS_URL`` is set, else in-process), ``memory``,
    ``redis`` or ``off`` (``WAYBILL_CACHE``)."""
    semantic: bool = True
    """Whether near-duplicate questions may match (``WAYBILL_CACHE_SEMANTIC``); off: exact
    matches only, and no embedding model is loaded."""
    quantized: bool = True
    """Embed with the int8-weight model (``WAYBILL_CACHE_QUANTIZED``), as the router does:
    a policy turn's lookup then takes the vector the router classified the message with
    and runs no model (another variant would embed every question again, ~4 ms in fp32).
    Every replica must agree (the model is part of the partition)."""
    entries: int = 10_000
    """Entries kept per partition (``WAYBILL_CACHE_ENTRIES``), the oldest out first."""
    partitions: int = 1_000
    """Partitions kept in one process's memory (``WAYBILL_CACHE_PARTITIONS``)."""
    kb_dir: Path = field(default_factory=default_kb_dir)
    """The published knowledge base whose version partitions policy answers
    (``WAYBILL_KB_DIR``, as retrieval reads it)."""
    version_poll_s: float = 1.0
    """How often the published version is re-read (``WAYBILL_CACHE_VERSION_POLL_S``)."""
    use_cases: dict[str, UseCase] = field(default_factory=lambda: dict(USE_CASES))
    """Per use case TTL and threshold."""

    @classmethod
    def from_env(cls) -> CacheSettings:
        """Settings from ``WAYBILL_CACHE*`` variables."""
        mode = env_str("WAYBILL_CACHE", "auto").strip().lower() or "auto"
        if mode not in MODES:
            raise SettingsError(f"WAYBILL_CACHE={mode!r} must be one of {', '.join(MODES)}")
        use_cases = {}
        for name, default in USE_CASES.items():
            upper = name.upper()
            ttl = env_float(f"WAYBILL_CACHE_{upper}_TTL_S", default.ttl_s, minimum=1.0)
            threshold = env_float(f"WAYBILL_CACHE_{upper}_THRESHOLD", default.threshold)
            if not 0.5 <= threshold <= 1.01:
                raise SettingsError(
                    f"WAYBILL_CACHE_{upper}_THRESHOLD={threshold} must be in 0.5..1.01 "
                    "(a cosine; above 1: exact matches only)"
                )
            use_cases[name] = UseCase(
                name, ttl_s=ttl, threshold=threshold, normalise=default.normalise
            )
        return cls(
            mode=mode,
            semantic=env_bool("WAYBILL_CACHE_SEMANTIC", True),
            quantized=env_bool("WAYBILL_CACHE_QUANTIZED", True),
            entries=env_int("WAYBILL_CACHE_ENTRIES", 10_000, minimum=1),
            partitions=env_int("WAYBILL_CACHE_PARTITIONS", 1_000, minimum=1),
            kb_dir=default_kb_dir(),
            version_poll_s=env_float("WAYBILL_CACHE_VERSION_POLL_S", 1.0),
            use_cases=use_cases,
        )

    def backend_kind(self, redis_url: str) -> str:
        """``memory``, ``redis`` or ``off`` for a gateway with this Redis URL."""
        if self.mode == "auto":
            return "redis" if redis_url else "memory"
        if self.mode == "redis" and not redis_url:
            raise SettingsError("WAYBILL_CACHE=redis needs WAYBILL_REDIS_URL")
        return self.mode
