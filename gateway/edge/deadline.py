"""The caller's HTTP timeout becomes the gateway call's gRPC deadline.

``X-Request-Timeout: <seconds>`` (decimal seconds) says how long the caller
will wait; without it the edge's default applies. A value the edge cannot
honour is a 400 naming the header, never a call that fails later for want of
time: not decimal seconds, below ``MIN_TIMEOUT_S`` (no turn, not even a read,
finishes in less), or above ``MAX_ACCEPTED_TIMEOUT_S`` (no caller means it). Values
between the edge's configured maximum and that ceiling are lowered to the
maximum, as proxies clamp ``grpc-timeout``. The gateway gets the time minus a
small margin, so that when it gives up the edge can still answer before the
caller does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from gateway.edge.errors import EdgeError, invalid_argument

TIMEOUT_HEADER = "x-request-timeout"
HEADER_NAME = "X-Request-Timeout"
MIN_TIMEOUT_S = 0.1
"""The shortest timeout accepted: below it even a read cannot cross the mesh."""
MAX_ACCEPTED_TIMEOUT_S = 99_999.999
"""The longest accepted (about a day); above the configured maximum, values are lowered."""
TIMEOUT_PATTERN = r"^(?:0\.[1-9][0-9]{0,2}|[1-9][0-9]{0,4}(?:\.[0-9]{1,3})?)$"
"""Decimal seconds, 0.1 to 99999.999, at most three decimals: the one rule, served in
the OpenAPI document as the header's pattern and enforced here. No exponent, sign,
``nan`` or ``inf`` (which Python's float() would read), no precision finer than 1 ms."""
_TIMEOUT = re.compile(TIMEOUT_PATTERN)
_SHOWN_CHARS = 32


def _refuse(raw: str) -> EdgeError:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        why = "is not a positive number of seconds"
    elif value < MIN_TIMEOUT_S:
        why = "is too short to be used"
    elif value > MAX_ACCEPTED_TIMEOUT_S:
        why = "is too long"
    else:
        why = "is not written as decimal seconds (like 2 or 0.25)"
    shown = raw if len(raw) <= _SHOWN_CHARS else raw[:_SHOWN_CHARS] + "..."
    return invalid_argument(
        f"{HEADER_NAME} must be decimal seconds from {MIN_TIMEOUT_S:g} to"
        f" {MAX_ACCEPTED_TIMEOUT_S:g}; {shown!r} {why}",
        reason="INVALID_TIMEOUT",
        field_path=HEADER_NAME,
        metadata={"header": HEADER_NAME, "pattern": TIMEOUT_PATTERN},
    )


def requested_timeout(headers: Mapping[str, str], *, default_s: float, max_s: float) -> float:
    """Seconds the caller allows for the whole call (lowered to ``max_s``)."""
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_s
    # HTTP servers drop the spaces and tabs around a header value; so does the edge.
    text = raw.strip(" \t")
    if not _TIMEOUT.fullmatch(text):
        raise _refuse(text)
    return min(float(text), max_s)


def grpc_timeout(timeout_s: float, *, margin_s: float) -> float:
    """The deadline handed to the gateway: the caller's time minus the margin (at least 1 ms)."""
    return max(timeout_s - margin_s, 0.001)
