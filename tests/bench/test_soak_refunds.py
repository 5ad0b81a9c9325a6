"""The refund soak: its check finds each kind of failure, and a short run through the real
mesh, with dropped replies and kills on both stores, ends clean."""

from __future__ import annotations

import asyncio
import json

import pytest
from waybill.common.v1 import events_pb2, money_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.orders.v1 import orders_pb2

from bench import soak_refunds
from bench.soak_refunds import Case, told, verdict
from tests.support.postgres_server import PG_DSN, fresh_schema


def _case(order_id: str, told_refund: str = "") -> Case:
    return Case("acme-retail", "acme-0001", order_id, 1000, told_refund=told_refund)


def _refund(refund_id: str, minor: int = 1000) -> orders_pb2.Refund:
    return orders_pb2.Refund(
        refund_id=refund_id, amount=money_pb2.Money(currency_code="USD", minor_units=minor)
    )


def test_the_check_finds_duplicates_lost_untold_and_over_refunds() -> None:
    clean = verdict([_case("ORD-1", "REF-A")], {"ORD-1": [_refund("REF-A")]})
    assert clean == {"refunds": 1, "duplicates": 0, "lost": 0, "untold": 0, "over_refunded": 0}
    twice = verdict([_case("ORD-1", "REF-A")], {"ORD-1": [_refund("REF-A"), _refund("REF-B")]})
    assert (twice["duplicates"], twice["untold"], twice["over_refunded"]) == (1, 1, 1)
    lost = verdict([_case("ORD-1", "REF-A")], {"ORD-1": []})
    assert lost["lost"] == 1
    untold = verdict([_case("ORD-1")], {"ORD-1": [_refund("REF-A", 10)]})
    assert (untold["untold"], untold["lost"], untold["over_refunded"]) == (1, 0, 0)
    nothing = verdict([_case("ORD-1")], {"ORD-1": []})
    assert nothing["refunds"] == 0
    assert sum(nothing.values()) == 0


def test_only_a_refund_answer_counts_as_told() -> None:
    def said(text: str) -> list[gw.TurnEvent]:
        return [gw.TurnEvent(delta=events_pb2.TextDelta(text=text))]

    done = "Done: I've refunded $10.00 for order ORD-1 (refund REF-0123456789ABCDEF)."
    assert told(said(done)) == "REF-0123456789ABCDEF"
    assert told(said("There's a refund waiting for your answer (REF-0123456789ABCDEF)")) == ""
    assert told([]) == ""


async def _postgres_answers() -> None:
    async with fresh_schema():
        pass  # skips outside CI, fails in CI, when no PostgreSQL answers


@pytest.mark.mesh
def test_a_short_soak_on_both_stores_ends_clean(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_postgres_answers())
    argv = ["--minutes", "0.25", "--rate", "3", "--store", "both", "--kill-every", "5"]
    argv += ["--customers", "40", "--concurrency", "3", "--drop-rate", "0.2", "--pg-dsn", PG_DSN]
    status = soak_refunds.main(argv)
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert status == 0, out
    assert [r["store"] for r in rows] == ["sqlite", "postgres"]
    for row in rows:
        assert row["refunds"] > 0
        assert (row["duplicates"], row["lost"], row["untold"]) == (0, 0, 0)
        assert sum(row["kills"].values()) >= 1
