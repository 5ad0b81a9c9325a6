"""The pool: one streaming interface over fallback chains of backends.

For each generation the pool walks the use case's chain. Each backend sits
behind its circuit breaker and is retried (exponential backoff with jitter,
at most 3 attempts, never past the caller's deadline, never on a rate limit)
while nothing has been streamed yet. Once a delta has reached the caller the
stream is committed to that backend: a later failure ends it with
StreamFailed (``after_first_delta``), never with a silent switch to another
backend and never as if complete. The composer is the last link of every
chain, so a turn degrades to a plain answer rather than failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from llm_pool import metrics
from llm_pool.breaker import BreakerPolicy, BreakerState, CircuitBreaker, Permit
from llm_pool.errors import BackendError, ErrorKind, kind_for_code
from llm_pool.generation import (
    Finished,
    GenerationEvent,
    GenerationRequest,
    StreamFailed,
    TextDelta,
    ToolCallDelta,
    ToolPayload,
)
from llm_pool.pricing import PriceTable
from llm_pool.retry import RetryPolicy
from runtime.deadlines import time_remaining

log = logging.getLogger("waybill.llm_pool")


class Backend(Protocol):
    """A generation backend: yields deltas and one end event, or raises BackendError."""

    name: str
    """The backend's id in chains (``triton-small``)."""

    def stream(
        self, request: GenerationRequest, *, timeout_s: float | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Stream one generation; ``timeout_s`` bounds the whole attempt."""
        ...


@runtime_checkable
class ReadinessProbe(Protocol):
    """A backend that can tell whether its model is loaded (Triton ``ModelReady``)."""

    async def ready(self, timeout_s: float) -> bool:
        """Whether the model can take requests now."""
        ...


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How the pool treats one backend."""

    timeout_s: float | None = None
    """Longest one attempt may take; None: only the caller's deadline bounds it."""
    min_attempt_s: float = 0.0
    """An attempt is not started with less time left than this."""
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    """Its circuit breaker."""


@dataclass(slots=True)
class Link:
    """A backend in the pool with its breaker and readiness."""

    backend: Backend
    options: LinkOptions
    breaker: CircuitBreaker
    ready: bool = True
    """False while the readiness watcher sees the model not ready: the link is skipped."""

    @property
    def id(self) -> str:
        """The backend's id."""
        return self.backend.name


UsageListener = Callable[[str, StreamFailed | Finished], None]
"""Called with (use case, end event) for every attempt that ended, failed ones included."""


class LLMPool:
    """One streaming interface over the configured backends."""

    def __init__(
        self,
        backends: Sequence[Backend],
        chains: Mapping[str, Sequence[str]] | None = None,
        *,
        default_chain: Sequence[str] | None = None,
        options: Mapping[str, LinkOptions] | None = None,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        deadline_margin_s: float = 0.005,
        on_usage: UsageListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        opts = dict(options or {})
        self._links = {
            b.name: Link(
                backend=b,
                options=opts.get(b.name, LinkOptions()),
                breaker=CircuitBreaker(
                    b.name,
                    opts.get(b.name, LinkOptions()).breaker,
                    clock=clock,
                    on_change=_breaker_changed,
                ),
            )
            for b in backends
        }
        for link in self._links.values():
            metrics.BREAKER_STATE.labels(link.id).set(0)
        self._chains = {k: tuple(v) for k, v in (chains or {}).items()}
        self._default = tuple(default_chain) if default_chain is not None else tuple(self._links)
        self._retry = retry or RetryPolicy()
        self._prices = prices
        self._margin = deadline_margin_s
        self._on_usage = on_usage
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._chain_cache: dict[str, tuple[Link, ...]] = {}

    # -- routing ------------------------------------------------------------------

    def chain(self, use_case: str) -> tuple[str, ...]:
        """The backends tried for ``use_case``, in order (only those configured)."""
        return tuple(link.id for link in self.links(use_case))

    def links(self, use_case: str) -> tuple[Link, ...]:
        """The links of ``use_case``'s chain, in order."""
        found = self._chain_cache.get(use_case)
        if found is None:
            names = self._chains.get(use_case, self._default)
            found = tuple(self._links[n] for n in names if n in self._links)
            self._chain_cache[use_case] = found
        return found

    def breaker(self, backend_id: str) -> CircuitBreaker:
        """The breaker of one backend."""
        return self._links[backend_id].breaker

    def set_ready(self, backend_id: str, ready: bool) -> None:
        """Record a readiness probe result; a link that is not ready is skipped."""
        link = self._links[backend_id]
        if link.ready != ready:
            log.warning("backend readiness changed", extra={"backend": backend_id, "ready": ready})
        link.ready = ready
        metrics.BACKEND_READY.labels(backend_id).set(1 if ready else 0)

    async def probe_ready(self, timeout_s: float = 1.0) -> dict[str, bool]:
        """Ask every backend that can tell whether its model is ready; record the answers."""
        results: dict[str, bool] = {}
        for link in self._links.values():
            if isinstance(link.backend, ReadinessProbe):
                try:
                    ready = await link.backend.ready(timeout_s)
                except Exception:  # a probe must never take the worker down
                    log.exception("readiness probe failed", extra={"backend": link.id})
                    ready = False
                self.set_ready(link.id, ready)
                results[link.id] = ready
        return results

    async def watch_readiness(self, interval_s: float = 5.0, timeout_s: float = 1.0) -> None:
        """Probe readiness every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            await self.probe_ready(timeout_s)

    async def close(self) -> None:
        """Close every backend that holds connections."""
        for link in self._links.values():
            closer = getattr(link.backend, "close", None)
            if closer is not None:
                await closer()

    # -- streaming ----------------------------------------------------------------

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Stream one generation through the use case's chain."""
        chain = self.links(request.use_case)
        if not chain:
            yield StreamFailed(
                backend="",
                code="FAILED_PRECONDITION",
                reason="NO_BACKEND",
                message=f"no backend configured for use case {request.use_case!r}",
            )
            return
        turn = _Turn(request=request, started=time.perf_counter())
        for link in chain:
            attempt = 0
            while True:
                remaining = time_remaining()
                if remaining is not None and remaining - self._margin <= 0:
                    yield self._deadline_failed(link, request.use_case)
                    return
                permit = self._admit(link, request.use_case, remaining)
                if permit is None:
                    break
                attempt += 1
                turn.attempts += 1
                # aclosing: if our caller closes this stream mid-attempt, the attempt
                # is closed at once (permit released, backend request cancelled).
                async with contextlib.aclosing(
                    self._attempt(link, permit, turn, remaining)
                ) as attempt_events:
                    async for event in attempt_events:
                        yield event
                if turn.ended:
                    return
                if not await self._retry_after(turn.last, link, request.use_case, attempt):
                    break
        yield self._exhausted(turn.last, chain[-1])

    def _admit(self, link: Link, use_case: str, remaining: float | None) -> Permit | None:
        """A permit for one attempt on ``link``, or None (and a counted fallback)."""
        if not link.ready:
            self._fell_back(use_case, link, "not_ready")
            return None
        if remaining is not None and remaining - self._margin < link.options.min_attempt_s:
            self._fell_back(use_case, link, "deadline")
            return None
        permit = link.breaker.try_acquire()
        if permit is None:
            self._fell_back(use_case, link, "breaker_open")
        return permit

    async def _attempt(
        self, link: Link, permit: Permit, turn: _Turn, remaining: float | None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """One attempt: relay its events; on failure record it in ``turn``.

        Sets ``turn.ended`` once an end event was yielded (finished, a failure
        after the first delta, or the caller's deadline).
        """
        timeout, caller_bound = self._attempt_timeout(link, remaining)
        first_at = 0.0
        error: BackendError
        events = link.backend.stream(turn.request, timeout_s=timeout)
        try:
            async for event in events:
                if isinstance(event, TextDelta | ToolPayload | ToolCallDelta):
                    if not first_at:
                        first_at = time.perf_counter()
                    yield event
                elif isinstance(event, Finished):
                    permit.success()
                    turn.ended = True
                    yield self._finished(event, turn, link=link, first_at=first_at)
                    return
                else:
                    raise _error_of(event)
            raise BackendError(
                f"{link.id} ended its stream without a final event",
                code="UNAVAILABLE",
                reason="BACKEND_STREAM_INCOMPLETE",
                kind=ErrorKind.PROVIDER,
            )
        except BackendError as exc:
            error = _caller_deadline(exc) if caller_bound else exc
            if error.counts_for_breaker:
                permit.failure()
            else:
                permit.release()
        except Exception as exc:
            # A bug in a backend (or its client library) must not take the turn
            # down while another link can still answer.
            log.exception("backend raised", extra={"backend": link.id})
            error = BackendError(
                f"{link.id} failed: {type(exc).__name__}",
                code="INTERNAL",
                reason="BACKEND_ERROR",
                kind=ErrorKind.PROVIDER,
            )
            permit.failure()
        finally:
            # Cancellation, or the caller closing this stream, lands here: the
            # permit says nothing about the backend, and closing the backend's
            # stream cancels its request.
            permit.release()
            await events.aclose()
        turn.last = error
        failed = self._failed(error, link, turn.request.use_case, after_first=bool(first_at))
        if first_at or error.kind is ErrorKind.DEADLINE:
            # Something reached the caller (or time is up): never switch backends.
            turn.ended = True
            yield failed

    async def _retry_after(
        self, error: BackendError | None, link: Link, use_case: str, attempt: int
    ) -> bool:
        """Back off and say True when ``link`` deserves another attempt."""
        if error is not None and error.retryable:
            delay = self._retry.delay_s(attempt, self._rng)
            if self._retry.should_retry(
                attempt=attempt,
                delay_s=delay,
                remaining_s=_left(time_remaining(), self._margin),
                min_attempt_s=link.options.min_attempt_s,
            ):
                metrics.RETRIES.labels(use_case, link.id).inc()
                await self._sleep(delay)
                return True
        self._fell_back(use_case, link, error.kind.value if error else "unknown")
        return False

    # -- helpers ------------------------------------------------------------------

    def _attempt_timeout(self, link: Link, remaining: float | None) -> tuple[float | None, bool]:
        """The attempt's timeout, and whether the caller's deadline (not ours) sets it."""
        own = link.options.timeout_s
        if remaining is None:
            return own, False
        caller = remaining - self._margin
        if own is None or caller < own:
            return caller, True
        return own, False

    def _finished(self, event: Finished, turn: _Turn, *, link: Link, first_at: float) -> Finished:
        started, request, attempts = turn.started, turn.request, turn.attempts
        ttft_us = int((first_at - started) * 1e6) if first_at else event.time_to_first_token_us
        charge = event.charge
        if charge is None and self._prices is not None:
            charge = self._prices.charge(
                event.backend,
                event.model,
                input_tokens=event.input_tokens,
                output_tokens=event.output_tokens,
            )
        done = dataclasses.replace(
            event,
            time_to_first_token_us=max(ttft_us, 1),
            charge=charge,
            backend_id=link.id,
            attempts=attempts,
        )
        metrics.observe_finished(request.use_case, done)
        if self._on_usage is not None:
            self._on_usage(request.use_case, done)
        return done

    def _failed(
        self, error: BackendError, link: Link, use_case: str, *, after_first: bool
    ) -> StreamFailed:
        model = getattr(link.backend, "model", "")
        kind = getattr(link.backend, "kind", link.id)
        charge = None
        if self._prices is not None and (error.input_tokens or error.output_tokens) and model:
            charge = self._prices.charge(
                kind, model, input_tokens=error.input_tokens, output_tokens=error.output_tokens
            )
        failed = StreamFailed(
            backend=kind,
            code=error.code,
            reason=(
                "BACKEND_STREAM_BROKEN"
                if after_first and error.kind is ErrorKind.PROVIDER
                else error.reason
            ),
            message=error.message,
            model=model,
            input_tokens=error.input_tokens,
            output_tokens=error.output_tokens,
            usage_source=error.usage_source,
            charge=charge,
            after_first_delta=after_first,
            backend_id=link.id,
        )
        metrics.observe_failed(use_case, failed, error.kind.value)
        if self._on_usage is not None:
            self._on_usage(use_case, failed)
        return failed

    def _deadline_failed(self, link: Link, use_case: str) -> StreamFailed:
        error = BackendError(
            "the deadline ran out before the answer could be generated",
            code="DEADLINE_EXCEEDED",
            reason="DEADLINE_EXCEEDED",
            kind=ErrorKind.DEADLINE,
        )
        return self._failed(error, link, use_case, after_first=False)

    def _exhausted(self, last: BackendError | None, link: Link) -> StreamFailed:
        if last is None:
            return StreamFailed(
                backend="",
                code="UNAVAILABLE",
                reason="NO_BACKEND_AVAILABLE",
                message="every backend of the chain is open, not ready or out of time",
            )
        return StreamFailed(
            backend=getattr(link.backend, "kind", link.id),
            code=last.code,
            reason=last.reason,
            message=f"every backend of the chain failed; last: {last.message}",
            backend_id=link.id,
        )

    def _fell_back(self, use_case: str, link: Link, reason: str) -> None:
        metrics.FALLBACKS.labels(use_case, link.id, reason).inc()


@dataclass(slots=True)
class _Turn:
    """One generation's progress across attempts."""

    request: GenerationRequest
    started: float
    attempts: int = 0
    last: BackendError | None = None
    ended: bool = False


def _left(remaining: float | None, margin: float) -> float | None:
    return None if remaining is None else remaining - margin


def _error_of(event: StreamFailed) -> BackendError:
    """A StreamFailed a backend yielded, as the error the pool handles."""
    return BackendError(
        event.message,
        code=event.code,
        reason=event.reason,
        kind=kind_for_code(event.code),
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        usage_source=event.usage_source,
    )


def _caller_deadline(error: BackendError) -> BackendError:
    """A timeout set by the caller's deadline is ours, not the provider's."""
    if error.code != "DEADLINE_EXCEEDED":
        return error
    return BackendError(
        error.message,
        code="DEADLINE_EXCEEDED",
        reason="DEADLINE_EXCEEDED",
        kind=ErrorKind.DEADLINE,
        input_tokens=error.input_tokens,
        output_tokens=error.output_tokens,
        usage_source=error.usage_source,
    )


_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def _breaker_changed(name: str, old: BreakerState, new: BreakerState) -> None:
    metrics.BREAKER_STATE.labels(name).set(_STATE_VALUE[new])
    metrics.BREAKER_TRANSITIONS.labels(name, new.value).inc()
    log.warning("circuit breaker changed", extra={"backend": name, "from": old, "to": new})
