"""Recorded ConfirmAction outcomes in Redis: they survive a gateway restart and
every replica sees them.

One key per attempt, ``<prefix>confirm:{<tenant>}:<user>:<session>:<idempotency key>``.
A claim is ``SET NX`` of a running marker with a lease (the attempt's own deadline,
so a crashed replica's claim expires); the record replaces the marker with the
session TTL. A duplicate on another replica polls until the record appears; one
on the same replica waits on the attempt itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as redis

from gateway.outcomes import InFlight, Outcome, OutcomeKey, decode, encode, still_running
from gateway.redis_sessions import reachable

_RUNNING = b"\x01running:"
_POLL_S = 0.05

# Write the record unless another attempt holds the key (our lease ran out and it
# claimed the key): KEYS[1]; ARGV: our marker, record, ttl ms.
_FINISH = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# Delete the claim only if it is still ours: KEYS[1]; ARGV[1] our marker.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisOutcomeStore:
    """ConfirmAction outcomes shared by every gateway replica."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "waybill:",
        ttl_s: float,
        lease_margin_s: float = 1.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._lease_margin_s = lease_margin_s
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)
        self._markers: dict[OutcomeKey, bytes] = {}
        self._in_flight = InFlight()

    def key(self, key: OutcomeKey) -> str:
        """The Redis key of an attempt."""
        return (
            f"{self._prefix}confirm:{{{key.tenant_id}}}:{key.user_id}:"
            f"{key.session_id}:{key.idempotency_key}"
        )

    async def claim(self, key: OutcomeKey, *, wait_s: float) -> Outcome | None:
        """See OutcomeStore.claim."""
        name = self.key(key)
        give_up = time.monotonic() + wait_s
        while True:
            if self._in_flight.running(key) and not await self._in_flight.wait(
                key, give_up - time.monotonic()
            ):
                raise still_running()
            marker = _RUNNING + secrets.token_hex(8).encode()
            lease_ms = max(1, int((wait_s + self._lease_margin_s) * 1000))
            with reachable("outcomes"):
                claimed = await self._redis.set(name, marker, nx=True, px=lease_ms)
            if claimed:
                self._markers[key] = marker
                self._in_flight.start(key)
                return None
            with reachable("outcomes"):
                found = await self._redis.get(name)
            if found is None:
                continue  # released or expired between the two commands: claim again
            blob = found if isinstance(found, bytes) else str(found).encode()
            if not blob.startswith(_RUNNING):
                return decode(blob)
            if time.monotonic() >= give_up:
                raise still_running()
            # Another replica runs it: nothing to wait on here but the record itself.
            await asyncio.sleep(min(_POLL_S, max(give_up - time.monotonic(), 0.0)))

    async def finish(self, key: OutcomeKey, outcome: Outcome) -> None:
        """See OutcomeStore.finish."""
        marker = self._markers.pop(key, b"")
        try:
            with reachable("outcomes"):
                await self._finish(
                    keys=[self.key(key)], args=[marker, encode(outcome), self._ttl_ms]
                )
        finally:
            self._in_flight.end(key)

    async def release(self, key: OutcomeKey) -> None:
        """See OutcomeStore.release."""
        marker = self._markers.pop(key, b"")
        try:
            with reachable("outcomes"):
                await self._release(keys=[self.key(key)], args=[marker])
        finally:
            self._in_flight.end(key)

    async def close(self) -> None:
        """The client is shared with the session store, which closes it."""
