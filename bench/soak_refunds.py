"""Refunds under faults for minutes on end: none made twice, none lost, every customer
told the truth. ``python -m bench.soak_refunds --minutes 10 --store both``.

For each store (SQLite, the embedded default; PostgreSQL, the fleet's) it starts one
supervised mesh (as ``waybill up`` runs it) with a larger demo data set, and keeps
customers asking for refunds of orders that qualify (``--rate`` new cases a second, at most
``--concurrency`` at once), each in its own conversation: a message that gets a proposal,
then the confirmation. Meanwhile:

- orders drops the reply of ``--drop-rate`` of its refunds after writing them (the
  caller sees UNAVAILABLE: a lost reply);
- every ``--kill-every`` seconds orders or the negotiation worker (in turn) is SIGKILLed
  and the launcher restarts it, mid-flight for whatever was in flight.

A customer whose turn fails retries it as a client would (the same confirmation key,
backoff) and, after a confirmation that never answered, asks "did my refund go
through?" once. At the end every order tried is checked against the store:

- ``duplicates``: refunds beyond the first of one order (must be 0);
- ``lost``: refunds a customer was told about that the store does not hold (must be 0);
- ``untold``: refunds the store holds that the customer was never told about, even
  after asking (must be 0);
- ``retries``: failed turns the retries absorbed; ``kills`` and ``dropped``: faults.

Prints a table, one JSON line per store, and writes an SVG with ``--svg-out``. Exit 0
when every store ends with 0 duplicates, 0 lost and 0 untold; 1 otherwise; 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import grpc
from waybill.common.v1 import conversation_pb2, customer_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from bench import load_limits
from cli.arguments import positive_float, positive_int

if TYPE_CHECKING:
    from cli.launcher import Mesh

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)
MAX_ATTEMPTS = 8
TURN_TIMEOUT_S = 15.0
REFUND_ID = re.compile(r"REF-[0-9A-F]{16}")
# As the mesh's own clients: a restarted gateway peer is reconnected to at once.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak_refunds",
        description="Refunds through the mesh for minutes under dropped replies and kills;"
        " checks none is made twice, none is lost and every customer is told. Exit 0 all"
        " clean, 1 a duplicate, lost or untold refund (or a mesh that did not start), 2 usage.",
    )
    parser.add_argument("--minutes", type=positive_float, default=10.0, help="per store")
    parser.add_argument(
        "--store", choices=("sqlite", "postgres", "both"), default="both", help="default: both"
    )
    parser.add_argument(
        "--rate", type=positive_float, default=5.0, help="refund cases started a second"
    )
    parser.add_argument("--concurrency", type=positive_int, default=8, help="customers at once")
    parser.add_argument(
        "--drop-rate", type=float, default=0.05, help="share of refund replies dropped"
    )
    parser.add_argument(
        "--kill-every", type=positive_float, default=60.0, help="seconds between kills"
    )
    parser.add_argument(
        "--customers", type=positive_int, default=5000, help="demo customers per tenant"
    )
    parser.add_argument("--pg-dsn", default=DEFAULT_PG_DSN, help="PostgreSQL for --store postgres")
    parser.add_argument("--json-out", type=Path, help="append the JSON lines here")
    parser.add_argument("--svg-out", type=Path, help="draw the figures here")
    return parser


# -- the cases ---------------------------------------------------------------------------


@dataclass
class Case:
    """One customer asking for one order's refund."""

    tenant: str
    user_id: str
    order_id: str
    total: int
    session_id: str = ""
    action_id: str = ""
    told_refund: str = ""
    """The refund id the customer was told about ('' none)."""
    asked_after: bool = False
    """The customer asked "did it go through?" after a confirmation without an answer."""
    error: str = ""
    confirm_s: float | None = None


@dataclass
class Tally:
    """What one store's soak saw."""

    store: str
    cases: list[Case] = field(default_factory=list)
    retries: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0


def refundable_orders(customers_per_tenant: int, now: datetime) -> list[Case]:
    """Orders the negotiation worker refunds without a person (the demo data the mesh
    loads today): delivered in the last 20 days, a low fraud score, within the tier's
    limit."""
    from orders import core, seed
    from workers.negotiation.machine import DEFAULT_AUTO_REFUND, Limits

    data = seed.generate(customers_per_tenant=customers_per_tenant)
    shipments = {s.awb: s for s in data.shipments}
    owner = {c.user_id: c for c in data.customers}
    found = []
    for order in data.orders:
        shipment = shipments[order.awb]
        customer = owner[order.user_id]
        if (
            shipment.status == customer_pb2.SHIPMENT_STATUS_DELIVERED
            and shipment.delivered_time.ToDatetime(UTC) > now - timedelta(days=20)
            and core.fraud_score_bp(order, shipment) < Limits().fraud_escalate_bp
            and order.total.minor_units <= DEFAULT_AUTO_REFUND[customer.tier]
        ):
            found.append(
                Case(customer.tenant_id, order.user_id, order.order_id, order.total.minor_units)
            )
    return found


class Customer:
    """Talks to the gateway as the customers of the cases do, retrying like a client."""

    def __init__(self, channel: grpc.aio.Channel, keys: dict[str, str], tally: Tally) -> None:
        self._stub = gw_grpc.GatewayServiceStub(channel)
        self._keys = keys
        self._tally = tally

    def _md(self, case: Case) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self._keys[case.tenant]),)

    async def _retried(self, case: Case, what: str, start: Any) -> list[gw.TurnEvent] | None:
        """``start()``'s stream, started again after a retryable failure (backoff, at most
        MAX_ATTEMPTS tries); None when it never answered."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return [r.event async for r in start()]
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt == MAX_ATTEMPTS - 1:
                    case.error = f"{what}:{exc.code().name}"
                    return None
                self._tally.retries += 1
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        return None

    async def say(self, case: Case, text: str) -> list[gw.TurnEvent] | None:
        """A message, retried on a retryable failure."""
        request = gw.ConverseRequest(session_id=case.session_id, user_id=case.user_id, message=text)
        return await self._retried(
            case,
            "say",
            lambda: self._stub.Converse(request, metadata=self._md(case), timeout=TURN_TIMEOUT_S),
        )

    async def confirm(self, case: Case) -> list[gw.TurnEvent] | None:
        """The confirmation, retried with its one key."""
        request = gw.ConfirmActionRequest(
            session_id=case.session_id,
            user_id=case.user_id,
            action_id=case.action_id,
            decision=conversation_pb2.DECISION_CONFIRM,
            idempotency_key=f"soak-{secrets.token_hex(12)}",
        )
        return await self._retried(
            case,
            "confirm",
            lambda: self._stub.ConfirmAction(
                request, metadata=self._md(case), timeout=TURN_TIMEOUT_S
            ),
        )

    async def run(self, case: Case) -> None:
        case.session_id = f"soak-{secrets.token_hex(8)}"
        events = await self.say(case, f"Order {case.order_id} never arrived, please refund it")
        actions = [
            e.confirmation_request.action
            for e in events or []
            if e.WhichOneof("kind") == "confirmation_request"
        ]
        if not actions:
            case.error = case.error or "no proposal"
            return
        case.action_id = actions[0].action_id
        started = time.perf_counter()
        done = await self.confirm(case)
        case.confirm_s = time.perf_counter() - started
        if done is None:
            # The confirmation never answered: the customer asks, as people do.
            case.asked_after = True
            done = await self.say(case, "Did my refund go through?")
        case.told_refund = told(done or [])


def told(events: Sequence[gw.TurnEvent]) -> str:
    """The refund id a turn told the customer was made ('' none)."""
    text = "".join(e.delta.text for e in events if e.WhichOneof("kind") == "delta")
    if "Done: I've refunded" not in text:
        return ""
    found = REFUND_ID.search(text)
    return found.group(0) if found else ""


# -- the check ---------------------------------------------------------------------------


def verdict(cases: Sequence[Case], stored: dict[str, list[orders_pb2.Refund]]) -> dict[str, int]:
    """Duplicates, lost and untold refunds, and over-refunded orders, from what each case
    was told and what the store holds per order."""
    duplicates = lost = untold = over = made = 0
    for case in cases:
        refunds = stored.get(case.order_id, [])
        made += len(refunds)
        duplicates += max(0, len(refunds) - 1)
        over += sum(r.amount.minor_units for r in refunds) > case.total
        ids = {r.refund_id for r in refunds}
        if case.told_refund and case.told_refund not in ids:
            lost += 1
        untold += sum(1 for r in refunds if r.refund_id != case.told_refund)
    return {
        "refunds": made,
        "duplicates": duplicates,
        "lost": lost,
        "untold": untold,
        "over_refunded": over,
    }


async def stored_refunds(address: str, cases: Sequence[Case]) -> dict[str, list[orders_pb2.Refund]]:
    """What the store holds for every order tried."""
    found: dict[str, list[orders_pb2.Refund]] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = orders_grpc.OrdersServiceStub(channel)
        for case in cases:
            response = await stub.ListRefunds(
                orders.ListRefundsRequest(
                    tenant_id=case.tenant, user_id=case.user_id, order_id=case.order_id
                ),
                timeout=10,
            )
            found[case.order_id] = list(response.refunds)
    return found


# -- one store ---------------------------------------------------------------------------


async def _chaos(m: Mesh, tally: Tally, every_s: float, until: float) -> None:
    victims = ("orders", "negotiation")
    n = 0
    while time.monotonic() + every_s < until:
        await asyncio.sleep(every_s)
        victim = victims[n % 2]
        n += 1
        await asyncio.to_thread(m.kill, victim)
        tally.kills[victim] = tally.kills.get(victim, 0) + 1


async def _progress(tally: Tally, until: float, err: TextIO) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(30)
        told_ = sum(1 for c in tally.cases if c.told_refund)
        left = max(0.0, until - time.monotonic())
        print(
            f"soak[{tally.store}]: {len(tally.cases)} cases, {told_} refunds told,"
            f" {tally.retries} retries, kills {sum(tally.kills.values())}, {left:.0f} s left",
            file=err,
            flush=True,
        )


async def soak(
    m: Mesh, cases: list[Case], args: argparse.Namespace, store: str, err: TextIO
) -> Tally:
    from runtime import credentials

    tally = Tally(store)
    keys = {c.tenant: credentials.key_for(m.credentials_path, c.tenant) for c in cases}
    queue: asyncio.Queue[Case] = asyncio.Queue()
    for case in cases:
        queue.put_nowait(case)
    tally.started = time.monotonic()
    until = tally.started + args.minutes * 60
    async with grpc.aio.insecure_channel(
        m.addresses["gateway"], options=CHANNEL_OPTIONS
    ) as channel:
        customer = Customer(channel, keys, tally)

        async def work() -> None:
            # Cases start on a schedule of --rate a second, so the data lasts the run.
            while not queue.empty():
                due = tally.started + len(tally.cases) / args.rate
                if due >= until:
                    return
                case = queue.get_nowait()
                tally.cases.append(case)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await customer.run(case)

        side = [
            asyncio.create_task(_chaos(m, tally, args.kill_every, until)),
            asyncio.create_task(_progress(tally, until, err)),
        ]
        await asyncio.gather(*(work() for _ in range(args.concurrency)))
        for task in side:
            task.cancel()
    tally.ended = time.monotonic()
    return tally


def summary(
    tally: Tally, stored: dict[str, list[orders_pb2.Refund]], dropped: int
) -> dict[str, Any]:
    """One store's figures."""
    seconds = tally.ended - tally.started
    confirms = sorted(c.confirm_s for c in tally.cases if c.confirm_s is not None)
    p95 = confirms[min(len(confirms) - 1, int(0.95 * len(confirms)))] if confirms else None
    errors: dict[str, int] = {}
    for case in tally.cases:
        if case.error:
            errors[case.error] = errors.get(case.error, 0) + 1
    return {
        "store": tally.store,
        "seconds": round(seconds, 1),
        "cases": len(tally.cases),
        **verdict(tally.cases, stored),
        "refunds_per_min": round(sum(len(v) for v in stored.values()) / seconds * 60, 1),
        "retries": tally.retries,
        "asked_after": sum(c.asked_after for c in tally.cases),
        "dropped": dropped,
        "kills": dict(tally.kills),
        "confirm_p50_ms": round(statistics.median(confirms) * 1000, 1) if confirms else None,
        "confirm_p95_ms": round(p95 * 1000, 1) if p95 is not None else None,
        "errors": errors,
    }


def _dropped(m: Mesh) -> int:
    """Refund replies orders dropped (its log names each injected fault)."""
    text = Path(m.log_path("orders")).read_text(errors="replace")
    return text.count("FAULT_INJECTED")


def run_store(store: str, args: argparse.Namespace, err: TextIO) -> dict[str, Any]:
    """Start a mesh on ``store``, soak it, check it, stop it."""
    from cli.launcher import Mesh, RestartPolicy
    from cli.ports import free_base_port
    from runtime import mesh as mesh_table

    orders_env = {
        "WAYBILL_ORDERS_DEMO_CUSTOMERS": str(args.customers),
        "WAYBILL_FAULT_METHODS": "CreateRefund",
        "WAYBILL_FAULT_AFTER": "1",
        "WAYBILL_FAULT_STATUS": "UNAVAILABLE",
        "WAYBILL_FAULT_RATE": str(args.drop_rate),
    }
    schema = ""
    if store == "postgres":
        schema = f"soak_{secrets.token_hex(6)}"
        orders_env |= {"WAYBILL_ORDERS_PG_DSN": args.pg_dsn, "WAYBILL_ORDERS_PG_SCHEMA": schema}
    cases = refundable_orders(args.customers, datetime.now(UTC))
    needed = int(args.rate * args.minutes * 60)
    print(
        f"soak[{store}]: {len(cases)} refundable orders for {needed} cases; starting the mesh",
        file=err,
    )
    if len(cases) < needed:
        print(f"soak[{store}]: the data runs out early: raise --customers", file=err)
    with tempfile.TemporaryDirectory(prefix=f"soak-{store}-") as run_dir:
        m = Mesh(
            run_dir=Path(run_dir),
            base_port=free_base_port(len(mesh_table.SERVICES)),
            restart=RestartPolicy(),
            per_service_env={
                "orders": orders_env,
                # The soak refunds many orders of one customer: no refund-count hand-over.
                "negotiation": {"WAYBILL_NEGOTIATION_REFUNDS_PER_PERIOD": "1000000"},
                "gateway": load_limits.GATEWAY_ENV,
            },
        )
        try:
            m.start()
            tally = asyncio.run(soak(m, cases, args, store, err))
            m.wait_serving("orders", 60)
            stored = asyncio.run(stored_refunds(m.addresses["orders"], tally.cases))
            figures = summary(tally, stored, _dropped(m))
        finally:
            m.stop()
            if schema:
                _drop_schema(args.pg_dsn, schema)
    return figures


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- output ------------------------------------------------------------------------------

COLUMNS = (
    ("store", "store"),
    ("minutes", "seconds"),
    ("cases", "cases"),
    ("refunds", "refunds"),
    ("per min", "refunds_per_min"),
    ("retries", "retries"),
    ("dropped", "dropped"),
    ("kills", "kills"),
    ("dup", "duplicates"),
    ("lost", "lost"),
    ("untold", "untold"),
    ("confirm p50/p95 ms", "confirm_p50_ms"),
)


def render(rows: Sequence[dict[str, Any]]) -> str:
    from cli.render import table

    body = []
    for r in rows:
        body.append(
            [
                r["store"],
                f"{r['seconds'] / 60:.1f}",
                str(r["cases"]),
                str(r["refunds"]),
                str(r["refunds_per_min"]),
                str(r["retries"]),
                str(r["dropped"]),
                str(sum(r["kills"].values())),
                str(r["duplicates"]),
                str(r["lost"]),
                str(r["untold"]),
                f"{r['confirm_p50_ms']}/{r['confirm_p95_ms']}",
            ]
        )
    return table([c[0] for c in COLUMNS], body)


def svg(rows: Sequence[dict[str, Any]]) -> str:
    """Bars per store: refunds, retries absorbed, faults, and the three that must be 0."""
    metrics = ("refunds", "retries", "dropped", "duplicates", "lost", "untold")
    colors = ("#1b6ac9", "#e07b26", "#3a9d5d", "#8a5cc2")
    width, row_h, pad = 720, 22, 140
    height = 50 + len(metrics) * (row_h * len(rows) + 12)
    top = max([1] + [int(r[m]) for r in rows for m in metrics])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        ' font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="20" font-size="14">Refunds under dropped replies and kills'
        " (duplicates, lost and untold must be 0)</text>",
    ]
    y = 40
    for metric in metrics:
        parts.append(f'<text x="10" y="{y + 15}">{escape(metric)}</text>')
        for i, r in enumerate(rows):
            value = int(r[metric])
            w = (width - pad - 150) * value / top
            parts.append(
                f'<rect x="{pad}" y="{y}" width="{w:.1f}" height="{row_h - 4}"'
                f' fill="{colors[i % len(colors)]}"/>'
            )
            parts.append(
                f'<text x="{pad + w + 6:.1f}" y="{y + 14}">{escape(r["store"])}: {value}</text>'
            )
            y += row_h
        y += 12
    parts.append("</svg>")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    if not 0.0 <= args.drop_rate <= 1.0:
        print("error: --drop-rate must be in 0..1", file=err)
        return 2
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    rows = []
    from cli.launcher import MeshError

    for store in stores:
        try:
            rows.append(run_store(store, args, err))
        except MeshError as exc:
            print(f"soak[{store}]: the mesh did not start: {exc}", file=err)
            return 1
    print(render(rows), file=out)
    lines = [json.dumps(r, separators=(",", ":")) for r in rows]
    for line in lines:
        print(line, file=out, flush=True)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        with args.json_out.open("a") as fh:
            fh.writelines(line + "\n" for line in lines)
    if args.svg_out is not None:
        args.svg_out.parent.mkdir(parents=True, exist_ok=True)
        args.svg_out.write_text(svg(rows))
    bad = [r["store"] for r in rows if r["duplicates"] or r["lost"] or r["untold"]]
    if bad:
        print(f"soak: refunds made twice, lost or untold on {', '.join(bad)}", file=err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
