"""The gateway's rate limits for a mesh a benchmark starts.

A load generator sends hundreds of turns a second through a few dozen demo customers:
the production limits (20 requests a minute per customer) would refuse most of them and
the figures would measure refusals. These raise every limit far above any bench rate
while keeping them on, so each turn still pays for its admission and token debit.

The answer cache is off in these meshes: a scenario repeats a small corpus of questions,
so with the cache on the policy scenario would measure cache hits instead of retrieval
and composition. The cache has its own scenario (``--scenario cache``).
"""

from __future__ import annotations

_HIGH = str(10**9)

GATEWAY_ENV: dict[str, str] = {
    f"WAYBILL_RATELIMIT_{scope}_{kind}{suffix}": _HIGH
    for scope in ("TEAM", "USER")
    for kind in ("RPM", "TPM")
    for suffix in ("", "_BURST")
} | {"WAYBILL_CACHE": "off"}
"""Environment of the gateway in a bench's own mesh."""
