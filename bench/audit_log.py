"""The audit log: what an append costs the caller, and how long verification of 1M takes.

``python -m bench.audit_log --records 1000000`` measures, in a scratch directory:

- ``append``: the caller's side of ``AuditLog.append`` (serialise + queue) for ``--appends``
  pre-built records sent back to back, while the writer thread syncs groups: p50/p95/p99/max;
- ``turn``: what a turn pays in all, back to back: two pseudonym look-ups (a known customer:
  one SQLite read each), building the record (validation) and ``append``;
- ``paced turn``: the same from coroutines at ``--rate`` turns a second on one event loop,
  the writer syncing in the background (the gateway's situation);
- ``write``: ``--records`` records through the writer over 10 UTC days (10 segments), until
  the last is synced: records a second;
- ``verify``: ``verify`` of those records; ``export``: ``export_parquet`` of them.

Prints a table and one JSON line. Exit 0; 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runtime.audit.export import export_parquet
from runtime.audit.log import AuditLog, AuditLogOptions
from runtime.audit.pseudonyms import PseudonymKeys
from runtime.audit.record import AuditRecord, GuardrailVerdict, ToolCall
from runtime.audit.verify import verify

START = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 10
_TOOLS = (ToolCall("get_order_status", "OK"), ToolCall("get_delivery_eta", "OK"))
_GUARDRAILS = (
    GuardrailVerdict("input_pii", "redact"),
    GuardrailVerdict("injection", "allow"),
    GuardrailVerdict("output_pii", "allow"),
)


def turn_record(n: int, *, at: datetime, user: str, session: str) -> AuditRecord:
    """A tracking turn's record, as the gateway would build it."""
    return AuditRecord(
        time=at,
        request_id=f"req-{n:012d}",
        tenant_id="acme-retail",
        team_id="support",
        principal_id="key-7f3a9c",
        user_pseudonym=user,
        session_pseudonym=session,
        intent="INTENT_TRACKING",
        worker="tracking",
        tools=_TOOLS,
        models=("composer/templates",) if n % 4 else ("triton/llama-8b", "openai/gpt-4o-mini"),
        input_tokens=420 + n % 300,
        output_tokens=85 + n % 40,
        cost_micro_units=1_250 + n % 900,
        currency_code="USD",
        latency_us=180_000 + n % 50_000,
        guardrails=_GUARDRAILS,
        cache_hit=n % 3 == 0,
        budget_state="ok",
        outcome="OK",
    )


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {
        "p50_us": at(0.50),
        "p95_us": at(0.95),
        "p99_us": at(0.99),
        "max_us": ordered[-1] / 1000,
        "mean_us": statistics.fmean(ordered) / 1000,
    }


def _appends(directory: Path, count: int) -> dict[str, float]:
    records = [
        turn_record(n, at=START, user="u_" + "a" * 32, session="s_" + "b" * 32)
        for n in range(count)
    ]
    samples = []
    clock = time.perf_counter_ns
    with AuditLog(directory) as log:
        for record in records:
            began = clock()
            log.append(record)
            samples.append(clock() - began)
    return _percentiles(samples)


def _turns(directory: Path, keys: PseudonymKeys, count: int) -> dict[str, float]:
    customers = [f"cust-{n:05d}" for n in range(500)]
    for customer in customers:
        keys.user("acme-retail", customer)  # known customers: their keys exist
    samples = []
    clock = time.perf_counter_ns
    with AuditLog(directory) as log:
        for n in range(count):
            customer = customers[n % len(customers)]
            began = clock()
            user = keys.user("acme-retail", customer)
            session = keys.session("acme-retail", customer, f"sess-{n // 5}")
            log.append(turn_record(n, at=START, user=user, session=session))
            samples.append(clock() - began)
    return _percentiles(samples)


async def _paced(directory: Path, keys: PseudonymKeys, count: int, rate: float) -> dict[str, float]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    log = AuditLog(directory)

    async def turn(n: int) -> None:
        customer = f"cust-{n % 500:05d}"
        began = clock()
        user = keys.user("acme-retail", customer)
        session = keys.session("acme-retail", customer, f"sess-{n // 5}")
        log.append(turn_record(n, at=START, user=user, session=session))
        samples.append(clock() - began)

    loop = asyncio.get_running_loop()
    began = loop.time()
    tasks = []
    for n in range(count):
        await asyncio.sleep(max(0.0, began + n / rate - loop.time()))
        tasks.append(asyncio.create_task(turn(n)))
    await asyncio.gather(*tasks)
    await log.aclose()
    return _percentiles(samples)


def _fill(directory: Path, count: int) -> float:
    per_day = -(-count // DAYS)
    pools = [
        [
            turn_record(n, at=START + timedelta(days=day, seconds=n), user="", session="")
            for n in range(min(1000, per_day))
        ]
        for day in range(DAYS)
    ]
    began = time.perf_counter()
    with AuditLog(directory, options=AuditLogOptions(max_backlog=count + 1)) as log:
        for n in range(count):
            pool = pools[n // per_day]
            log.append(pool[n % len(pool)])
    return time.perf_counter() - began


def run(*, records: int, appends: int, rate: float) -> dict[str, Any]:
    """Measure; the figures."""
    figures: dict[str, Any] = {"records": records, "appends": appends, "rate": rate}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        figures["append"] = _appends(root / "append", appends)
        with PseudonymKeys(root / "keys" / "keys.sqlite3") as keys:
            figures["turn"] = _turns(root / "turn", keys, appends)
            paced_count = min(appends, int(rate * 10))
            figures["paced_turn"] = asyncio.run(_paced(root / "paced", keys, paced_count, rate))
        figures["write_s"] = _fill(root / "big", records)
        figures["segment_bytes"] = sum(p.stat().st_size for p in (root / "big").glob("*.jsonl"))
        began = time.perf_counter()
        result = verify(root / "big")
        figures["verify_s"] = time.perf_counter() - began
        if not result.ok or result.records != records:
            raise AssertionError(f"verification failed: {result}")
        began = time.perf_counter()
        out = root / "audit.parquet"
        export_parquet(root / "big", out)
        figures["export_s"] = time.perf_counter() - began
        figures["parquet_bytes"] = out.stat().st_size
    return figures


def _line(label: str, f: dict[str, float]) -> str:
    return (
        f"  {label:<22} p50 {f['p50_us']:7.1f} us  p95 {f['p95_us']:7.1f} us"
        f"  p99 {f['p99_us']:7.1f} us  max {f['max_us']:8.1f} us"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, measure, print; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.audit_log", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000, help="records to verify")
    parser.add_argument("--appends", type=int, default=50_000, help="appends timed (50000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced turns a second")
    args = parser.parse_args(argv)
    if args.records < DAYS or args.appends < 1 or not args.rate > 0:
        parser.error(f"--records >= {DAYS}, --appends >= 1 and --rate > 0")
    figures = run(records=args.records, appends=args.appends, rate=args.rate)
    print(f"audit log: {args.appends:,} timed appends, {args.records:,} records verified")
    print("caller side, per call:")
    print(_line("append", figures["append"]))
    print(_line("turn (keys+record+append)", figures["turn"]))
    print(_line(f"paced turn @{args.rate:g}/s", figures["paced_turn"]))
    records = figures["records"]
    print(
        f"  write {records:,} records     {figures['write_s']:7.2f} s"
        f"  ({records / figures['write_s']:,.0f}/s, {figures['segment_bytes'] / 1e6:.0f} MB)"
    )
    print(
        f"  verify                   {figures['verify_s']:7.2f} s"
        f"  ({records / figures['verify_s']:,.0f}/s)"
    )
    print(
        f"  export to Parquet        {figures['export_s']:7.2f} s"
        f"  ({figures['parquet_bytes'] / 1e6:.1f} MB)"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
