"""Reading the services' Prometheus metrics endpoints, as a Prometheus server would.

One scrape is a GET of ``/metrics`` in the text exposition format, parsed by
prometheus_client's own parser into plain samples. A source that does not answer,
answers with an error or with text that does not parse is reported as such, with
no samples: the ops page then says which source is missing instead of drawing zeros.
Addresses stay here and in the log; what a caller sees is the source's name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("waybill.edge")

SCRAPE_TIMEOUT_S = 5.0
"""Per source: a busy service on shared cores still answers well within it."""
MAX_BYTES = 4 * 1024 * 1024
"""A metrics page above this is refused (ours are a few tens of kilobytes)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of one scrape."""

    source: str
    """The source it came from (a service name)."""
    name: str
    """Sample name, suffix included (``waybill_rpc_duration_seconds_bucket``)."""
    labels: Mapping[str, str]
    """Its labels (``le`` included for buckets)."""
    value: float
    """Its value."""


@dataclass(frozen=True, slots=True)
class Scrape:
    """What one source gave: its samples, or the problem that left it without any."""

    source: str
    """The source's name."""
    samples: list[Sample] = field(default_factory=list)
    """Every sample it exposed."""
    problem: str = ""
    """Empty when the scrape worked; else what went wrong, in words without addresses."""


def parse(text: str, *, source: str) -> list[Sample]:
    """The samples of an exposition text; ValueError when it does not parse."""
    return [
        Sample(source=source, name=s.name, labels=dict(s.labels), value=float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


async def scrape(
    client: httpx.AsyncClient, source: str, address: str, *, timeout_s: float = SCRAPE_TIMEOUT_S
) -> Scrape:
    """GET ``http://address/metrics`` and parse it; never raises for the source's faults."""
    url = f"http://{address}/metrics"
    try:
        response = await client.get(url, timeout=timeout_s)
    except httpx.TimeoutException:
        log.warning("metrics scrape timed out", extra={"source": source, "address": address})
        return Scrape(source, problem="did not answer in time")
    except httpx.HTTPError as exc:
        log.warning(
            "metrics scrape failed",
            extra={"source": source, "address": address, "error": type(exc).__name__},
        )
        return Scrape(source, problem="not reachable")
    if response.status_code != 200:
        log.warning(
            "metrics scrape refused",
            extra={"source": source, "address": address, "status": response.status_code},
        )
        return Scrape(source, problem=f"answered HTTP {response.status_code}")
    if len(response.content) > MAX_BYTES:
        return Scrape(source, problem="sent more metrics than the page reads")
    try:
        return Scrape(source, parse(response.text, source=source))
    except ValueError as exc:
        log.warning("metrics unparsable", extra={"source": source, "error": str(exc)[:200]})
        return Scrape(source, problem="sent metrics that do not parse")


async def scrape_all(
    client: httpx.AsyncClient, sources: Sequence[tuple[str, str]], *, timeout_s: float
) -> list[Scrape]:
    """Every source at once, in the order given."""
    return list(
        await asyncio.gather(
            *(scrape(client, name, address, timeout_s=timeout_s) for name, address in sources)
        )
    )
