"""Per-team and per-user rate limits (requests and tokens per minute) with GCRA.

GCRA (the generic cell rate algorithm) keeps one number per bucket: the theoretical
arrival time ``tat``. A limit of ``r`` units a minute with a burst of ``b`` has the
emission interval ``T = 60 / r``; a call costing ``n`` units at ``now`` is admitted when
``max(tat, now) + n*T - b*T <= now`` and then moves ``tat`` to ``max(tat, now) + n*T``.
An idle bucket therefore admits ``b`` units at once and one more every ``T``; a refused
call waits exactly ``max(tat, now) + n*T - b*T - now``, which is what RetryInfo carries.

**Tokens are charged after the fact.** A turn's token count is only known at its end, so
admission checks the request buckets (cost 1) and that the token buckets are not
exhausted (they have room for at least one token; nothing is taken), and ``spend()``
debits the actual tokens of the turn when its Final event passes. A team that burned its
tokens is refused from the next call on, for exactly as long as its debt takes to drain;
one turn may overshoot the remaining tokens (it was admitted with some left), never two
in a row from the same bucket.

Every check-and-take is atomic across the buckets of a call: either every request bucket
takes its unit or none does. Two stores implement it behind :class:`BucketStore`:
:class:`InProcessBuckets` (the embedded default: exact within the process, asyncio-safe
because a decision never awaits) and :class:`gateway.redis_ratelimit.RedisBuckets` (the
fleet: one Lua script, shared and exact across replicas).

A refusal is RESOURCE_EXHAUSTED with ``reason="RATE_LIMITED"``, RetryInfo, and metadata
naming the limit that binds (``scope``: team/user, ``limit``: requests/tokens), nothing
internal. Metrics: ``waybill_ratelimit_decisions_total{scope,limit,decision}`` — no
tenant, team or user labels (unbounded cardinality; who was refused is in the access log).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.ratelimit_config import Policy, Rate, RateLimitSettings
from runtime.errors import ResourceExhausted
from runtime.metrics import RATELIMIT_DECISIONS
from runtime.principal import Principal

Clock = Callable[[], float]
RATE_LIMITED = "RATE_LIMITED"
_SWEEP_EVERY = 4096
"""In-process decisions between two sweeps of drained buckets."""


@dataclass(frozen=True, slots=True)
class Take:
    """One bucket a decision touches."""

    key: str
    """The bucket's identity (a Redis key in the fleet)."""
    scope: str
    """``team`` or ``user``."""
    limit: str
    """``requests`` or ``tokens``."""
    rate: Rate
    """The limit."""
    check: int
    """Units that must fit for the call to be admitted (0: no check)."""
    apply: int
    """Units taken when admitted."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one atomic decision."""

    admitted: bool
    """Whether every checked bucket had room (and every bucket took its units)."""
    wait_s: float = 0.0
    """When refused: seconds until the same call would be admitted."""
    binding: int = -1
    """When refused: index of the take that needs the longest wait."""
    refused: frozenset[int] = frozenset()
    """Indexes of the takes without room."""


def gcra(tat: float, now: float, take: Take) -> tuple[float, float]:
    """``(new_tat, wait)`` for one bucket: ``wait > 0`` means no room (then ``new_tat`` is
    the unchanged ``max(tat, now)``)."""
    interval = take.rate.interval_s
    base = max(tat, now)
    allow_at = base + (take.check - take.rate.burst) * interval
    if take.check and allow_at > now:
        return base, allow_at - now
    return base + take.apply * interval, 0.0


class BucketStore(Protocol):
    """Where the buckets live."""

    async def decide(self, takes: Sequence[Take]) -> Verdict:
        """Check every take, then take all of them or none, atomically."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class InProcessBuckets:
    """Buckets in this process's memory: exact here, per replica in a fleet."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._decisions = 0

    def __len__(self) -> int:
        return len(self._tat)

    async def decide(self, takes: Sequence[Take]) -> Verdict:
        """See :class:`BucketStore` (no await inside: atomic under asyncio)."""
        return self.decide_now(takes)

    def decide_now(self, takes: Sequence[Take]) -> Verdict:
        """The decision, synchronously."""
        now = self._clock()
        self._decisions += 1
        if self._decisions % _SWEEP_EVERY == 0:
            self._sweep(now)
        planned: list[float] = []
        refused: set[int] = set()
        wait = 0.0
        binding = -1
        for i, take in enumerate(takes):
            new_tat, need = gcra(self._tat.get(take.key, now), now, take)
            planned.append(new_tat)
            if need > 0:
                refused.add(i)
                if need > wait:
                    wait, binding = need, i
        if refused:
            return Verdict(False, wait, binding, frozenset(refused))
        for take, new_tat in zip(takes, planned, strict=True):
            if take.apply:
                self._tat[take.key] = new_tat
        return Verdict(True)

    def _sweep(self, now: float) -> None:
        # A bucket whose tat has passed is indistinguishable from an absent one.
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    async def close(self) -> None:
        """Nothing to release."""


class RateLimiter:
    """Admission and token debits for the gateway's turns."""

    def __init__(
        self, settings: RateLimitSettings, store: BucketStore, *, prefix: str = ""
    ) -> None:
        self._settings = settings
        self._store = store
        self._prefix = prefix

    @property
    def store(self) -> BucketStore:
        """Where the buckets live."""
        return self._store

    def _takes(
        self, principal: Principal, user_id: str, *, requests: int, tokens: int, check: int
    ) -> list[Take]:
        policy: Policy = self._settings.policy(principal.tenant_id, principal.team_id)
        # The hash tag keeps a tenant's buckets in one cluster slot: one script touches them.
        base = f"{self._prefix}ratelimit:{{{principal.tenant_id}}}"
        scopes = [("team", f"team:{principal.team_id}", policy.team)]
        user = _user_of(principal, user_id)
        if user:
            scopes.append(("user", f"user:{user}", policy.user))
        takes: list[Take] = []
        for scope, who, limits in scopes:
            if limits.requests.limited and (requests or check):
                takes.append(
                    Take(
                        f"{base}:{who}:requests",
                        scope,
                        "requests",
                        limits.requests,
                        check,
                        requests,
                    )
                )
            if limits.tokens.limited and (tokens or check):
                takes.append(
                    Take(f"{base}:{who}:tokens", scope, "tokens", limits.tokens, check, tokens)
                )
        return takes

    async def admit(self, principal: Principal, user_id: str) -> None:
        """Take one request from the team's and the user's buckets, or raise
        ResourceExhausted (RATE_LIMITED, RetryInfo) naming the limit that binds."""
        takes = self._takes(principal, user_id, requests=1, tokens=0, check=1)
        if not takes:
            return
        verdict = await self._store.decide(takes)
        for i, take in enumerate(takes):
            decision = "refused" if i in verdict.refused else "admitted"
            RATELIMIT_DECISIONS.labels(take.scope, take.limit, decision).inc()
        if verdict.admitted:
            return
        bound = takes[verdict.binding]
        raise refusal(scope=bound.scope, limit=bound.limit, wait_s=verdict.wait_s)

    async def spend(self, principal: Principal, user_id: str, tokens: int) -> None:
        """Debit a finished turn's tokens from the team's and the user's token buckets."""
        if tokens <= 0:
            return
        takes = self._takes(principal, user_id, requests=0, tokens=tokens, check=0)
        if takes:
            await self._store.decide(takes)

    async def close(self) -> None:
        """Release the store."""
        await self._store.close()


def _user_of(principal: Principal, user_id: str) -> str:
    """The customer a call is for: the one the credential is bound to, else the request's."""
    return principal.user_id or user_id


_WHO = {"team": "this team", "user": "this customer"}


def refusal(*, scope: str, limit: str, wait_s: float) -> ResourceExhausted:
    """The error of a refused call (nothing internal: no keys, no replica, no counts)."""
    return ResourceExhausted(
        f"rate limit reached: too many {limit} for {_WHO[scope]}; retry in {wait_s:.3g} s",
        reason=RATE_LIMITED,
        metadata={"scope": scope, "limit": limit},
        retry_after_s=wait_s,
    )


def tokens_of(event: pb.TurnEvent) -> int:
    """The tokens a turn's Final event reports (input + output)."""
    usage = event.final.usage
    return usage.input_tokens + usage.output_tokens
