"""The caller's HTTP timeout becomes the gateway call's gRPC deadline.

``X-Request-Timeout: <seconds>`` (a decimal number) says how long the caller
will wait; without it the edge's default applies, and larger values are
lowered to the edge's maximum. The gateway gets that time minus a small
margin, so that when it gives up the edge can still answer before the caller does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gateway.edge.errors import invalid_argument

TIMEOUT_HEADER = "x-request-timeout"


def requested_timeout(headers: Mapping[str, str], *, default_s: float, max_s: float) -> float:
    """Seconds the caller allows for the whole call (clamped to ``max_s``)."""
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_s
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise invalid_argument(
            f"X-Request-Timeout must be a positive number of seconds, got {raw!r}",
            reason="INVALID_TIMEOUT",
            field_path="X-Request-Timeout",
        )
    return min(value, max_s)


def grpc_timeout(timeout_s: float, *, margin_s: float) -> float:
    """The deadline handed to the gateway: the caller's time minus the margin (at least 1 ms)."""
    return max(timeout_s - margin_s, 0.001)
