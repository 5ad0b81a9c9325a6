"""One "gateway replica" for the Redis exactness test: its own process, its own connection
pool and limiter, firing concurrent admissions at one team.

``python -m tests.gateway.ratelimit_hammer URL PREFIX CALLS USER...`` connects, prints
``ready``, waits for a line on stdin, then sends ``CALLS`` admissions per user at once and prints
``{"admitted": {"user": count, ...}, "local_decisions": n}`` as JSON. Its timeouts are long:
the test is about the script's exactness, not about a loaded machine's latency.
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as redis
from prometheus_client import REGISTRY

from gateway.ratelimit import RateLimiter
from gateway.ratelimit_config import Policy, Rate, RateLimitSettings, ScopeLimits
from gateway.redis_ratelimit import RedisBuckets
from runtime.errors import ResourceExhausted
from runtime.principal import Principal

TEAM = Principal("acme-retail", "hammer", "service")
# 1 a minute: within the test's few seconds nothing refills, so the burst is the count.
POLICY = Policy(
    team=ScopeLimits(requests=Rate(1, 50), tokens=Rate(0, 1)),
    user=ScopeLimits(requests=Rate(1, 20), tokens=Rate(0, 1)),
)


async def _run(url: str, prefix: str, calls: int, users: list[str]) -> object:
    client = redis.Redis.from_url(url, socket_timeout=10.0, socket_connect_timeout=10.0)
    buckets = RedisBuckets(client)
    limiter = RateLimiter(RateLimitSettings(defaults=POLICY), buckets, prefix=prefix)
    await limiter.admit(Principal("acme-retail", "warmup", "service"), "")  # connect first
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)

    async def one(user: str) -> str | None:
        try:
            await limiter.admit(TEAM, user)
        except ResourceExhausted:
            return None
        return user

    try:
        results = await asyncio.gather(*(one(u) for _ in range(calls) for u in users))
    finally:
        await limiter.close()
    admitted = {u: sum(1 for r in results if r == u) for u in users}
    local = REGISTRY.get_sample_value("waybill_ratelimit_degraded_total") or 0.0
    return {"admitted": admitted, "local_decisions": local}


def main() -> None:
    url, prefix, calls, *users = sys.argv[1:]
    counts = asyncio.run(_run(url, prefix, int(calls), users))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
