"""Deadline helpers: every outgoing call gets the remaining time minus a margin.

Python gRPC does not propagate deadlines by itself; the server interceptor
records the inbound deadline in a contextvar and the client interceptor derives
each outgoing timeout from it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from runtime import context
from runtime.errors import DeadlineExceeded

log = logging.getLogger("waybill.deadline")


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """How outgoing timeouts are derived."""

    margin_s: float = 0.005
    """Kept back so the caller can still answer after the callee gives up."""
    min_s: float = 0.002
    """Below this the call is not attempted."""
    default_s: float = 10.0
    """Timeout when the inbound call carried no deadline."""


def time_remaining() -> float | None:
    """Seconds left on the inbound call, or None if it had no deadline."""
    absolute = context.deadline.get()
    if absolute is None:
        return None
    return absolute - time.monotonic()


def outgoing_timeout(
    policy: DeadlinePolicy, *, budget_s: float | None = None, target: str = ""
) -> float:
    """The timeout for a downstream call: min(budget, remaining - margin).

    Raises DeadlineExceeded when less than ``policy.min_s`` would remain, so a
    call that cannot finish is never started; ``target`` (the method) is logged,
    not put in the error.
    """
    remaining = time_remaining()
    timeout = policy.default_s if remaining is None else remaining - policy.margin_s
    if budget_s is not None:
        timeout = min(timeout, budget_s)
    if timeout < policy.min_s:
        left_ms = f"{max(timeout, 0) * 1000:.1f}"
        # The target names an internal method: it goes to the log (under the trace
        # id), never into the status a caller may see.
        log.warning(
            "too little time left for a downstream call",
            extra={"target": target or "-", "remaining_ms": left_ms},
        )
        raise DeadlineExceeded(
            f"too little time was left to finish the request ({left_ms} ms)",
            reason="DEADLINE_TOO_SHORT",
            metadata={"remaining_ms": left_ms},
        )
    return timeout
