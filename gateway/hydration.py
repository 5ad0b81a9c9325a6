"""The context block: fixed format, fixed position, byte-identical for identical state.

No relative dates ("tomorrow"), no clock reads, no dict ordering: the block is a
pure function of the customer's tier, region and active orders, so a serving
engine's prefix cache keeps hitting across turns and customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from waybill.common.v1 import customer_pb2

_TIER = {
    customer_pb2.CUSTOMER_TIER_STANDARD: "Standard",
    customer_pb2.CUSTOMER_TIER_SILVER: "Silver",
    customer_pb2.CUSTOMER_TIER_GOLD: "Gold",
    customer_pb2.CUSTOMER_TIER_PLATINUM: "Platinum",
}
_STATUS = {
    customer_pb2.SHIPMENT_STATUS_LABEL_CREATED: "Label created",
    customer_pb2.SHIPMENT_STATUS_IN_TRANSIT: "In transit",
    customer_pb2.SHIPMENT_STATUS_OUT_FOR_DELIVERY: "Out for delivery",
    customer_pb2.SHIPMENT_STATUS_DELIVERED: "Delivered",
    customer_pb2.SHIPMENT_STATUS_DELAYED: "Delayed",
    customer_pb2.SHIPMENT_STATUS_DELIVERY_ATTEMPTED: "Delivery attempted",
    customer_pb2.SHIPMENT_STATUS_LOST: "Lost",
    customer_pb2.SHIPMENT_STATUS_RETURNED: "Returned",
}


def render_block(
    tier: customer_pb2.CustomerTier, region: str, orders: Sequence[customer_pb2.OrderBrief]
) -> str:
    """The context block text."""
    lines = [
        "[CONTEXT v1]",
        f"Tier: {_TIER.get(tier, 'Unknown')}",
        f"Region: {region or 'Unknown'}",
        "Active orders:" if orders else "Active orders: none",
    ]
    for o in orders:
        status = _STATUS.get(o.status, "Unknown")
        when = ""
        if o.HasField("eta"):
            label = "Delivered" if o.status == customer_pb2.SHIPMENT_STATUS_DELIVERED else "ETA"
            when = f" | {label} {o.eta.ToDatetime(UTC):%Y-%m-%d}"
        lines.append(f"- {o.order_id} | AWB {o.awb} | {o.title} | {status}{when}")
        if o.delivery_note:
            lines.append(f"  Delivery note: {' '.join(o.delivery_note.split())}")
    lines.append("[/CONTEXT]")
    return "\n".join(lines)


def hydrated(
    tier: customer_pb2.CustomerTier, region: str, orders: Sequence[customer_pb2.OrderBrief]
) -> customer_pb2.HydratedContext:
    """The HydratedContext message, block included."""
    return customer_pb2.HydratedContext(
        tier=tier, region=region, active_orders=orders, block=render_block(tier, region, orders)
    )
