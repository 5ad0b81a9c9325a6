"""Recorded ConfirmAction outcomes, so a retried or double-clicked confirmation
replays what happened instead of acting twice.

An attempt first claims its key (tenant, customer, session, idempotency key).
The one that gets it runs the action and records the events and the final status;
a duplicate that arrives meanwhile waits for that record, one that arrives later
replays it. An attempt that ends with a retryable failure (or is cancelled)
releases its claim instead, so the same key can try again. Records live as long
as a session; the Redis store keeps them across gateway restarts and replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from runtime.errors import DeadlineExceeded, DomainError, status_for
from runtime.peer_errors import PeerError

DOMAIN = "gateway.waybill"


@dataclass(frozen=True, slots=True)
class OutcomeKey:
    """Who asked what: a key is never shared across customers or tenants."""

    tenant_id: str
    user_id: str
    session_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt answered."""

    fingerprint: str
    """The request the key was first used for (action and decision)."""
    events: tuple[pb.TurnEvent, ...]
    """Every event streamed, in order."""
    error: DomainError | None = None
    """The status the call ended with; None for OK."""


def encode(outcome: Outcome) -> bytes:
    """The stored form: the fingerprint, NUL, a google.rpc.Status with the events packed
    before its ErrorInfo/RetryInfo details."""
    if outcome.error is None:
        status = status_pb2.Status(code=0)
    else:
        status = status_for(outcome.error, default_domain=DOMAIN)
    events = []
    for event in outcome.events:
        packed = any_pb2.Any()
        packed.Pack(event)
        events.append(packed)
    details = list(status.details)
    del status.details[:]
    status.details.extend([*events, *details])
    return outcome.fingerprint.encode() + b"\x00" + bytes(status.SerializeToString())


def decode(blob: bytes) -> Outcome:
    """The outcome ``encode`` stored."""
    fingerprint, _, raw = blob.partition(b"\x00")
    status = status_pb2.Status.FromString(raw)
    events: list[pb.TurnEvent] = []
    info = error_details_pb2.ErrorInfo()
    retry_after: float | None = None
    for detail in status.details:
        if detail.Is(pb.TurnEvent.DESCRIPTOR):
            event = pb.TurnEvent()
            detail.Unpack(event)
            events.append(event)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    error: DomainError | None = None
    if status.code != 0:
        error = PeerError(
            _CODES.get(status.code, grpc.StatusCode.INTERNAL),
            status.message,
            reason=info.reason,
            domain=info.domain,
            metadata=dict(info.metadata),
            retry_after_s=retry_after,
        )
    return Outcome(fingerprint.decode(), tuple(events), error)


_CODES: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


class OutcomeStore(Protocol):
    """Claims and records of ConfirmAction attempts."""

    async def claim(self, key: OutcomeKey, *, wait_s: float) -> Outcome | None:
        """None when the caller now holds ``key`` (it must ``finish`` or ``release``
        it); else the recorded outcome, waiting up to ``wait_s`` while another attempt
        holds the key (then DEADLINE_EXCEEDED)."""
        ...

    async def finish(self, key: OutcomeKey, outcome: Outcome) -> None:
        """Record the outcome and wake the attempts waiting for it."""
        ...

    async def release(self, key: OutcomeKey) -> None:
        """Give the key up without a record (retryable failure, cancellation)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def still_running() -> DeadlineExceeded:
    """The error of a duplicate that ran out of time waiting for the first attempt."""
    return DeadlineExceeded(
        "the first request with this idempotency key is still running; try again",
        reason="CONFIRMATION_IN_PROGRESS",
    )


class InFlight:
    """Attempts running in this process, so local duplicates wait without polling."""

    def __init__(self) -> None:
        self._running: dict[OutcomeKey, asyncio.Future[None]] = {}

    def start(self, key: OutcomeKey) -> None:
        """Mark ``key`` as running here."""
        self._running[key] = asyncio.get_running_loop().create_future()

    def end(self, key: OutcomeKey) -> None:
        """Wake whoever waits for ``key``."""
        future = self._running.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)

    def running(self, key: OutcomeKey) -> bool:
        """Whether ``key`` runs in this process."""
        return key in self._running

    async def wait(self, key: OutcomeKey, timeout_s: float) -> bool:
        """Wait until ``key`` ends here; False on timeout. Not running: True at once."""
        future = self._running.get(key)
        if future is None:
            return True
        try:
            # shield: a waiter that gives up must not cancel the future others wait on.
            await asyncio.wait_for(asyncio.shield(future), max(timeout_s, 0.0))
        except TimeoutError:
            return False
        return True


class InMemoryOutcomeStore:
    """Process-local records for the embedded default (lost on restart, like its sessions)."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._done: dict[OutcomeKey, tuple[float, bytes]] = {}
        self._in_flight = InFlight()

    def _recorded(self, key: OutcomeKey) -> bytes | None:
        entry = self._done.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._done[key]
            return None
        return entry[1]

    async def claim(self, key: OutcomeKey, *, wait_s: float) -> Outcome | None:
        """See OutcomeStore.claim."""
        give_up = time.monotonic() + wait_s
        while True:
            blob = self._recorded(key)
            if blob is not None:
                return decode(blob)
            if not self._in_flight.running(key):
                self._in_flight.start(key)
                return None
            if not await self._in_flight.wait(key, give_up - time.monotonic()):
                raise still_running()

    async def finish(self, key: OutcomeKey, outcome: Outcome) -> None:
        """See OutcomeStore.finish."""
        if key not in self._done and len(self._done) >= self._max:
            self._done.pop(next(iter(self._done)))
        self._done[key] = (self._clock() + self._ttl_s, encode(outcome))
        self._in_flight.end(key)

    async def release(self, key: OutcomeKey) -> None:
        """See OutcomeStore.release."""
        self._in_flight.end(key)

    async def close(self) -> None:
        """Nothing to release."""
