"""Rate-limit configuration: defaults from the environment, per-team overrides from a file.

Four limits apply to each Converse and ConfirmAction call, each a rate per minute with a
burst (what an idle bucket admits at once):

- the **team**'s requests and tokens (every caller of a tenant's team together);
- the **user**'s requests and tokens (one customer of the tenant).

Defaults come from ``WAYBILL_RATELIMIT_{TEAM,USER}_{RPM,TPM}`` and their ``_BURST``
twins. A per-minute rate of 0 switches that limit off.

``WAYBILL_LIMITS_FILE`` (YAML, or JSON: a ``.json`` name) overrides them per team; every
field is optional and an omitted one keeps the default. The file is read and validated at
start: an unknown key, a wrong type or a bad value stops the gateway with an error that
names the file and the field::

    teams:
      acme-retail/support:          # <tenant_id>/<team_id>
        team:                       # the team's shared limits
          requests_per_minute: 6000
          requests_burst: 600
          tokens_per_minute: 2000000
          tokens_burst: 200000
        user:                       # each customer the team serves
          requests_per_minute: 30
          requests_burst: 60
          tokens_per_minute: 60000
          tokens_burst: 60000

While the shared counters (Redis) cannot be reached, each gateway replica enforces
1/``WAYBILL_RATELIMIT_REPLICAS`` of every limit on its own (see
:mod:`gateway.redis_ratelimit`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from runtime.settings import SettingsError, env_int, env_str

LIMITS_FILE_ENV = "WAYBILL_LIMITS_FILE"
_SCOPES = ("team", "user")
_FIELDS = ("requests_per_minute", "requests_burst", "tokens_per_minute", "tokens_burst")


@dataclass(frozen=True, slots=True)
class Rate:
    """A GCRA limit: ``per_minute`` units spread evenly, ``burst`` of them at once."""

    per_minute: int
    """Sustained units per minute; 0 = no limit."""
    burst: int
    """Units an idle bucket admits at once (at least 1 when limited)."""

    @property
    def limited(self) -> bool:
        """Whether the limit applies at all."""
        return self.per_minute > 0

    @property
    def interval_s(self) -> float:
        """Seconds one unit occupies (GCRA's emission interval)."""
        return 60.0 / self.per_minute

    def share(self, divisor: int) -> Rate:
        """This limit split ``divisor`` ways (never below one unit a minute and a burst of 1)."""
        if not self.limited or divisor <= 1:
            return self
        return Rate(
            per_minute=max(1, self.per_minute // divisor),
            burst=max(1, math.floor(self.burst / divisor)),
        )


@dataclass(frozen=True, slots=True)
class ScopeLimits:
    """The limits of one scope (the team, or one user)."""

    requests: Rate
    """Calls per minute."""
    tokens: Rate
    """LLM tokens (input + output) per minute."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Every limit that applies to a call of one team."""

    team: ScopeLimits
    """Shared by the whole team."""
    user: ScopeLimits
    """Per customer."""


DEFAULT_POLICY = Policy(
    # A tenant's support team carries the whole tenant (peaks of hundreds of turns a second).
    team=ScopeLimits(requests=Rate(30_000, 1_000), tokens=Rate(6_000_000, 600_000)),
    # A person chatting: 20 RPM with a burst of 40 (seed 001), and tokens to match.
    user=ScopeLimits(requests=Rate(20, 40), tokens=Rate(40_000, 40_000)),
)


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Rate limits as the gateway reads them at start."""

    defaults: Policy = DEFAULT_POLICY
    """Limits of every team without an override."""
    teams: Mapping[tuple[str, str], Policy] = field(default_factory=dict)
    """Per ``(tenant_id, team_id)`` overrides, complete (defaults filled in)."""
    replicas: int = 2
    """Gateway replicas sharing the limits (``WAYBILL_RATELIMIT_REPLICAS``): while Redis is
    unreachable each replica enforces 1/replicas of every limit by itself."""
    source: str = ""
    """The overrides file, for messages; empty when there is none."""

    def policy(self, tenant_id: str, team_id: str) -> Policy:
        """The limits of one team."""
        return self.teams.get((tenant_id, team_id), self.defaults)

    @classmethod
    def from_env(cls) -> RateLimitSettings:
        """Defaults from ``WAYBILL_RATELIMIT_*``, overrides from ``WAYBILL_LIMITS_FILE``."""
        defaults = Policy(
            team=_scope_from_env("TEAM", DEFAULT_POLICY.team),
            user=_scope_from_env("USER", DEFAULT_POLICY.user),
        )
        replicas = env_int("WAYBILL_RATELIMIT_REPLICAS", 2, minimum=1)
        path = env_str(LIMITS_FILE_ENV, "").strip()
        if not path:
            return cls(defaults=defaults, replicas=replicas)
        return cls(
            defaults=defaults,
            teams=load_overrides(Path(path), defaults),
            replicas=replicas,
            source=path,
        )


def _rate_from_env(name: str, default: Rate) -> Rate:
    per_minute = env_int(f"WAYBILL_RATELIMIT_{name}", default.per_minute, minimum=0)
    burst = env_int(f"WAYBILL_RATELIMIT_{name}_BURST", default.burst, minimum=1)
    return Rate(per_minute, burst)


def _scope_from_env(scope: str, default: ScopeLimits) -> ScopeLimits:
    return ScopeLimits(
        requests=_rate_from_env(f"{scope}_RPM", default.requests),
        tokens=_rate_from_env(f"{scope}_TPM", default.tokens),
    )


def _fail(path: Path, where: str, problem: str) -> SettingsError:
    return SettingsError(f"{LIMITS_FILE_ENV}={path}: {where}: {problem}")


def _parse(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError(
            f"{LIMITS_FILE_ENV}={path} cannot be read ({exc.strerror or exc})"
        ) from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise SettingsError(f"{LIMITS_FILE_ENV}={path} is not valid {kind}: {exc}") from None


def _count(path: Path, where: str, value: object, *, minimum: int) -> int:
    # bool is an int in Python; `true` for a rate is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, where, f"must be an integer, got {value!r}")
    if value < minimum:
        raise _fail(path, where, f"must be at least {minimum}, got {value}")
    return value


def _scope(path: Path, where: str, raw: object, default: ScopeLimits) -> ScopeLimits:
    if not isinstance(raw, dict):
        raise _fail(path, where, "must be a mapping of limits")
    unknown = sorted(str(k) for k in raw if k not in _FIELDS)
    if unknown:
        raise _fail(path, f"{where}.{unknown[0]}", f"unknown field (known: {', '.join(_FIELDS)})")

    def rate(kind: str, base: Rate) -> Rate:
        per_minute = base.per_minute
        burst = base.burst
        if f"{kind}_per_minute" in raw:
            per_minute = _count(
                path, f"{where}.{kind}_per_minute", raw[f"{kind}_per_minute"], minimum=0
            )
        if f"{kind}_burst" in raw:
            burst = _count(path, f"{where}.{kind}_burst", raw[f"{kind}_burst"], minimum=1)
        return Rate(per_minute, burst)

    return ScopeLimits(
        requests=rate("requests", default.requests), tokens=rate("tokens", default.tokens)
    )


def load_overrides(path: Path, defaults: Policy) -> dict[tuple[str, str], Policy]:
    """The per-team policies of a limits file (see the module docstring); SettingsError
    naming the field when anything in it is wrong."""
    data = _parse(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "must be a mapping with a 'teams' key")
    unknown = sorted(str(k) for k in data if k != "teams")
    if unknown:
        raise _fail(path, unknown[0], "unknown field (known: teams)")
    teams = data.get("teams") or {}
    if not isinstance(teams, dict):
        raise _fail(path, "teams", "must be a mapping of '<tenant_id>/<team_id>' to limits")
    policies: dict[tuple[str, str], Policy] = {}
    for name, given in teams.items():
        where = f"teams.{name}"
        raw = {} if given is None else given
        tenant, sep, team = str(name).partition("/")
        if not sep or not tenant or not team or "/" in team:
            raise _fail(path, where, "a team is named '<tenant_id>/<team_id>'")
        if not isinstance(raw, dict):
            raise _fail(path, where, "must be a mapping with 'team' and/or 'user'")
        extra = sorted(str(k) for k in raw if k not in _SCOPES)
        if extra:
            raise _fail(path, f"{where}.{extra[0]}", "unknown field (known: team, user)")
        policy = defaults
        if "team" in raw:
            policy = replace(policy, team=_scope(path, f"{where}.team", raw["team"], defaults.team))
        if "user" in raw:
            policy = replace(policy, user=_scope(path, f"{where}.user", raw["user"], defaults.user))
        policies[(tenant, team)] = policy
    return policies
