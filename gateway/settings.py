"""Gateway settings from the environment; bad values fail at start, not at the first turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from gateway.cache.settings import CacheSettings
from gateway.ratelimit_config import RateLimitSettings
from gateway.tokens import TokenSettings
from runtime.settings import (
    ServiceSettings,
    SettingsError,
    env_bool,
    env_float,
    env_int,
    env_str,
)

API_KEYS_ENV = "WAYBILL_API_KEYS_FILE"
DEFAULT_API_KEYS = ".waybill/api_keys.json"
JWKS_ENV = "WAYBILL_JWT_JWKS_FILE"
ISSUER_ENV = "WAYBILL_JWT_ISSUER"
AUDIENCE_ENV = "WAYBILL_JWT_AUDIENCE"
MODEL_API_ENV = "WAYBILL_MODEL_API_ADDRESS"
MAX_ACTIVE_ORDERS = 50
"""What orders' ListActiveOrders accepts."""
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What the gateway reads at start."""

    service: ServiceSettings
    """Address, logging, grace and the default per-call deadline policy."""
    api_keys_file: Path = Path(DEFAULT_API_KEYS)
    """The hashed API key store (``WAYBILL_API_KEYS_FILE``); never plaintext keys."""
    keys_refresh_s: float = 2.0
    """At most this long after a change to the key store (a revocation, a rotation)
    or to the JWKS file, every replica acts on it (``WAYBILL_KEYS_REFRESH_S``)."""
    tokens: TokenSettings | None = None
    """End users' bearer tokens: trusted issuer, audience and keys
    (``WAYBILL_JWT_JWKS_FILE``, ``WAYBILL_JWT_ISSUER``, ``WAYBILL_JWT_AUDIENCE``,
    ``WAYBILL_JWT_LEEWAY_S``); None: bearer tokens are refused."""
    session_ttl_s: float = 1800.0
    """Sliding lifetime of a session and of recorded ConfirmAction outcomes
    (``WAYBILL_SESSION_TTL_S``)."""
    session_turns: int = 10
    """Exchanges kept per session (``WAYBILL_SESSION_TURNS``)."""
    redis_url: str = ""
    """Redis for sessions shared by the fleet (``WAYBILL_REDIS_URL``); empty = in-process."""
    redis_prefix: str = "waybill:"
    """Prefix of every Redis key the gateway writes (``WAYBILL_REDIS_PREFIX``)."""
    hydration_ttl_s: float = 5.0
    """How long a customer's hydrated context is reused (``WAYBILL_HYDRATION_TTL_S``; 0 = never)."""
    turn_budget_s: float = 30.0
    """The one deadline of a Converse/ConfirmAction that arrived without one
    (``WAYBILL_TURN_BUDGET_S``); every downstream hop derives its timeout from it."""
    active_orders: int = 10
    """Active orders hydrated into the context block (``WAYBILL_HYDRATION_ORDERS``)."""
    audit: bool = True
    """Whether every turn's metadata goes to the hash-chained audit log (``WAYBILL_AUDIT``)."""
    audit_dir: Path | None = None
    """This replica's audit log (``WAYBILL_AUDIT_DIR``; default ``$WAYBILL_DATA_DIR/audit``).
    One writer per directory: each replica needs its own."""
    budgets: bool = True
    """Whether every turn reserves its worst case in the ledger and commits its usage
    (``WAYBILL_BUDGETS``; off only to measure or test other parts without a ledger)."""
    turn_generations: int = 4
    """Generations one turn may make at most, for its reservation
    (``WAYBILL_TURN_MAX_GENERATIONS``)."""
    turn_input_tokens: int = 4096
    """Prompt tokens of one generation at most (``WAYBILL_TURN_MAX_INPUT_TOKENS``)."""
    turn_output_tokens: int = 512
    """Completion tokens of one generation at most (``WAYBILL_TURN_MAX_OUTPUT_TOKENS``)."""
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    """Per-team and per-user limits (``WAYBILL_RATELIMIT_*``, ``WAYBILL_LIMITS_FILE``); shared
    through ``redis_url`` when set."""
    cache: CacheSettings = field(default_factory=CacheSettings)
    """The answer cache (``WAYBILL_CACHE*``; docs/caches.md): in Redis when ``redis_url`` is
    set, else in-process."""
    model_api_address: str = ""
    """``host:port`` of the OpenAI-compatible model API (``WAYBILL_MODEL_API_ADDRESS``;
    docs/model-api.md); empty: not served."""
    model_api_guardrails: bool = True
    """Whether a model call's last user message goes through the input guardrail
    (``WAYBILL_MODEL_API_GUARDRAILS``)."""
    model_api_max_tokens: int = 1024
    """Completion tokens of a model call that names no ``max_tokens``: what its reservation
    assumes and what the model is allowed (``WAYBILL_MODEL_API_MAX_TOKENS``)."""

    @classmethod
    def from_env(cls) -> GatewaySettings:
        """Settings from ``WAYBILL_*`` variables."""
        redis_url = env_str("WAYBILL_REDIS_URL", "").strip()
        if redis_url and urlparse(redis_url).scheme not in _REDIS_SCHEMES:
            raise SettingsError(
                "WAYBILL_REDIS_URL must be a redis://, rediss:// or unix:// URL"
            )  # the value may hold a password: never echo it
        prefix = env_str("WAYBILL_REDIS_PREFIX", "waybill:")
        if not prefix or any(c in prefix for c in " {}\n"):
            raise SettingsError(
                f"WAYBILL_REDIS_PREFIX={prefix!r} must be non-empty, without spaces or braces"
            )
        active_orders = env_int("WAYBILL_HYDRATION_ORDERS", 10, minimum=1)
        if active_orders > MAX_ACTIVE_ORDERS:
            raise SettingsError(
                f"WAYBILL_HYDRATION_ORDERS={active_orders} is above the maximum {MAX_ACTIVE_ORDERS}"
            )
        return cls(
            service=ServiceSettings.from_env("gateway"),
            api_keys_file=Path(env_str(API_KEYS_ENV, DEFAULT_API_KEYS)),
            keys_refresh_s=env_float("WAYBILL_KEYS_REFRESH_S", 2.0, minimum=0.0),
            tokens=_tokens(),
            session_ttl_s=env_float("WAYBILL_SESSION_TTL_S", 1800.0, minimum=1.0),
            session_turns=env_int("WAYBILL_SESSION_TURNS", 10, minimum=1),
            redis_url=redis_url,
            redis_prefix=prefix,
            hydration_ttl_s=env_float("WAYBILL_HYDRATION_TTL_S", 5.0),
            turn_budget_s=env_float("WAYBILL_TURN_BUDGET_S", 30.0, minimum=0.1),
            active_orders=active_orders,
            audit=env_bool("WAYBILL_AUDIT", True),
            audit_dir=Path(audit_dir) if (audit_dir := env_str("WAYBILL_AUDIT_DIR", "")) else None,
            budgets=env_bool("WAYBILL_BUDGETS", True),
            turn_generations=env_int("WAYBILL_TURN_MAX_GENERATIONS", 4, minimum=1),
            turn_input_tokens=env_int("WAYBILL_TURN_MAX_INPUT_TOKENS", 4096, minimum=1),
            turn_output_tokens=env_int("WAYBILL_TURN_MAX_OUTPUT_TOKENS", 512, minimum=1),
            rate_limits=RateLimitSettings.from_env(),
            cache=CacheSettings.from_env(),
            model_api_address=_address(MODEL_API_ENV),
            model_api_guardrails=env_bool("WAYBILL_MODEL_API_GUARDRAILS", True),
            model_api_max_tokens=env_int("WAYBILL_MODEL_API_MAX_TOKENS", 1024, minimum=1),
        )


def _address(name: str) -> str:
    value = env_str(name, "").strip()
    if not value:
        return ""
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}={value!r} must be host:port")
    return value


def _tokens() -> TokenSettings | None:
    jwks = env_str(JWKS_ENV, "").strip()
    issuer = env_str(ISSUER_ENV, "").strip()
    audience = env_str(AUDIENCE_ENV, "").strip()
    if not jwks:
        if issuer or audience:
            raise SettingsError(f"{ISSUER_ENV} and {AUDIENCE_ENV} need {JWKS_ENV}")
        return None
    if not issuer or not audience:
        # A token checked without its issuer or audience would be one minted for anyone.
        raise SettingsError(f"{JWKS_ENV} is set: {ISSUER_ENV} and {AUDIENCE_ENV} must be too")
    leeway = env_float("WAYBILL_JWT_LEEWAY_S", 30.0)
    if leeway > 300:
        raise SettingsError(f"WAYBILL_JWT_LEEWAY_S={leeway} is above 300 (a small clock skew)")
    return TokenSettings(jwks_file=Path(jwks), issuer=issuer, audience=audience, leeway_s=leeway)
