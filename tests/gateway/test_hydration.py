from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2

from gateway.hydration import hydrated, render_block


def _orders() -> list[customer_pb2.OrderBrief]:
    eta = timestamp_pb2.Timestamp(seconds=1_800_000_000)
    return [
        customer_pb2.OrderBrief(
            order_id="ORD-20260002",
            awb="WB2222222222",
            title="Laptop stand",
            status=customer_pb2.SHIPMENT_STATUS_IN_TRANSIT,
            eta=eta,
        ),
        customer_pb2.OrderBrief(
            order_id="ORD-20260001",
            awb="WB1111111111",
            title="Running shoes",
            status=customer_pb2.SHIPMENT_STATUS_DELIVERED,
            eta=eta,
        ),
    ]


def test_identical_state_gives_byte_identical_blocks() -> None:
    a = render_block(customer_pb2.CUSTOMER_TIER_GOLD, "US-NY", _orders())
    b = render_block(customer_pb2.CUSTOMER_TIER_GOLD, "US-NY", list(_orders()))
    assert a.encode() == b.encode()
    assert hydrated(customer_pb2.CUSTOMER_TIER_GOLD, "US-NY", _orders()).block == a


def test_fixed_format() -> None:
    block = render_block(customer_pb2.CUSTOMER_TIER_GOLD, "US-NY", _orders())
    assert block.splitlines() == [
        "[CONTEXT v1]",
        "Tier: Gold",
        "Region: US-NY",
        "Active orders:",
        "- ORD-20260002 | AWB WB2222222222 | Laptop stand | In transit | ETA 2027-01-15",
        "- ORD-20260001 | AWB WB1111111111 | Running shoes | Delivered | Delivered 2027-01-15",
        "[/CONTEXT]",
    ]
    assert "none" in render_block(customer_pb2.CUSTOMER_TIER_STANDARD, "", [])


def test_state_change_changes_the_block() -> None:
    changed = _orders()
    changed[0].status = customer_pb2.SHIPMENT_STATUS_DELAYED
    assert render_block(3, "US-NY", changed) != render_block(3, "US-NY", _orders())  # type: ignore[arg-type]
