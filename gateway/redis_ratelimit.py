"""Rate-limit buckets in Redis: shared by every gateway replica, exact across them.

One Lua script (run with EVALSHA) decides a call: it reads every bucket the call touches
(the team's and the user's, requests and tokens), checks them all against Redis's own
clock (``TIME``; replicas' clocks never matter), and takes from all of them or from none.
Redis runs a script atomically, so concurrent calls on any number of replicas see one
order and exactly the allowed number is admitted. Each bucket is one string key holding
its GCRA theoretical arrival time in whole microseconds (a take advances it by at least
one: a limit above 60 million units a minute acts as 60 million for single units), with a
PX expiry at the moment it has drained (an expired bucket and a full one are the same).
The keys of one call share the ``{tenant}`` hash tag, so they sit in one cluster slot.

**When Redis fails** (unreachable, timing out, restarting, loading, read-only after a
failover), rate limits **fail open to a conservative local limiter**: each replica
enforces 1/``replicas`` of every limit in its own memory (``WAYBILL_RATELIMIT_REPLICAS``),
counts each such decision in ``waybill_ratelimit_degraded_total`` and logs one WARNING when
it enters that state. Callers never see an error from it: a dependency of the limiter
must not turn into refused or failed turns (budgets, which protect money, fail closed in
the ledger instead). Redis is tried again at most once per ``probe_interval_s``; the first
answer ends the degraded state (an INFO line) and the shared counters apply again.
A restarted Redis has forgotten the script: the NOSCRIPT reply loads it again and
re-runs the call, once. A Redis restarted without persistence has also forgotten the
buckets: each starts full, which lets at most one extra burst through.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence

import redis.asyncio as redis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.ratelimit import Clock, InProcessBuckets, Take, Verdict
from runtime.metrics import RATELIMIT_DEGRADED

log = logging.getLogger("waybill.gateway")

TIMEOUT_S = 0.25
"""Connect and read timeout: past it, the call is decided locally rather than late."""

# KEYS: the buckets. ARGV, per bucket i (4 values from 4*(i-1)+1): emission interval in
# microseconds, burst (units), units that must fit (0 = no check), units to take.
# Returns {admitted 0/1, wait in microseconds, binding bucket (1-based), bitmask of the
# buckets without room}.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local base = {}
local refused = 0
local wait = 0
local binding = 0
for i = 1, #KEYS do
  local o = 4 * (i - 1)
  local interval = tonumber(ARGV[o + 1])
  local burst = tonumber(ARGV[o + 2])
  local check = tonumber(ARGV[o + 3])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  base[i] = tat
  if check > 0 then
    local allow_at = tat + (check - burst) * interval
    if allow_at > now then
      refused = refused + 2 ^ (i - 1)
      if allow_at - now > wait then
        wait = allow_at - now
        binding = i
      end
    end
  end
end
if refused > 0 then
  return {0, math.ceil(wait), binding, refused}
end
for i = 1, #KEYS do
  local o = 4 * (i - 1)
  local take = tonumber(ARGV[o + 4])
  if take > 0 then
    -- Whole microseconds, at least one per take: an increment below the resolution of
    -- a double near the epoch time would otherwise vanish.
    local tat = base[i] + math.max(1, math.ceil(take * tonumber(ARGV[o + 1])))
    local ttl = math.ceil((tat - now) / 1000)
    redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', ttl)
  end
end
return {1, 0, 0, 0}
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

# What "Redis cannot decide right now" looks like; each is a reason to decide locally.
_REDIS_DOWN = (redis_errors.RedisError, OSError)


def client_for(url: str) -> redis.Redis:
    """A connection pool for the limiter: short timeouts and no client-side retries (a
    slow or absent Redis means a local decision, not a slow call)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


class RedisBuckets:
    """Buckets shared through Redis, with the local fallback described above."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        replicas: int = 2,
        probe_interval_s: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._redis = client
        self._replicas = replicas
        self._probe_interval_s = probe_interval_s
        self._clock = clock
        self._fallback = InProcessBuckets(clock=clock)
        self._degraded = False
        self._retry_at = 0.0

    @property
    def degraded(self) -> bool:
        """Whether calls are being decided locally (Redis failed and has not answered since)."""
        return self._degraded

    async def decide(self, takes: Sequence[Take]) -> Verdict:
        """The shared decision; the local one while Redis cannot answer."""
        if self._degraded and self._clock() < self._retry_at:
            return self._local(takes)
        try:
            verdict = await self._shared(takes)
        except _REDIS_DOWN as exc:
            self._degrade(exc)
            return self._local(takes)
        if self._degraded:
            self._degraded = False
            log.info("rate limits shared again: redis answers")
        return verdict

    async def _shared(self, takes: Sequence[Take]) -> Verdict:
        keys = [t.key for t in takes]
        args: list[float | int] = []
        for t in takes:
            args += [t.rate.interval_s * 1e6, t.rate.burst, t.check, t.apply]
        try:
            reply = await self._redis.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            # A restarted (or flushed) Redis has forgotten the script: load it, run again.
            await self._redis.script_load(SCRIPT)
            reply = await self._redis.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
        admitted, wait_us, binding, mask = (int(x) for x in reply)
        if admitted:
            return Verdict(True)
        refused = frozenset(i for i in range(len(takes)) if mask >> i & 1)
        return Verdict(False, wait_us / 1e6, binding - 1, refused)

    def _degrade(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self._probe_interval_s
        if not self._degraded:
            self._degraded = True
            log.warning(
                "rate limits degraded: redis not answering; each replica enforces a share",
                extra={"replicas": self._replicas, "detail": f"{type(exc).__name__}: {exc}"},
            )

    def _local(self, takes: Sequence[Take]) -> Verdict:
        RATELIMIT_DEGRADED.inc()
        shared = [
            Take(t.key, t.scope, t.limit, t.rate.share(self._replicas), t.check, t.apply)
            for t in takes
        ]
        return self._fallback.decide_now(shared)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
