"""Decisions of the orders service that do not touch storage: ETAs and fraud scores.

The rule "a lost or returned shipment has no arrival estimate" lives here
once (:func:`expects_arrival`); GetEta, the active-order briefs and the
tracking worker's status answers all ask it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2
from waybill.orders.v1 import orders_pb2

from runtime.errors import FailedPrecondition

Status = customer_pb2.ShipmentStatus
Confidence = orders_pb2.EtaConfidence

FRAUD_MODEL_VERSION = "rules-v1"

NO_ARRIVAL: dict[customer_pb2.ShipmentStatus, str] = {
    Status.SHIPMENT_STATUS_LOST: "SHIPMENT_LOST",
    Status.SHIPMENT_STATUS_RETURNED: "SHIPMENT_RETURNED",
}
"""Statuses of shipments that will not arrive, with the reason GetEta refuses them."""


def expects_arrival(status: customer_pb2.ShipmentStatus) -> bool:
    """Whether a shipment in ``status`` will still arrive (so an ETA means something)."""
    return status not in NO_ARRIVAL


def brief_eta(shipment: orders_pb2.Shipment) -> timestamp_pb2.Timestamp | None:
    """The one time an order brief shows: delivered at, promised for, or none at all."""
    if shipment.status == Status.SHIPMENT_STATUS_DELIVERED:
        return shipment.delivered_time
    if not expects_arrival(shipment.status) or not shipment.HasField("promised_time"):
        return None
    return shipment.promised_time


def _ts(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def estimate_arrival(shipment: orders_pb2.Shipment, *, region: str = "") -> orders_pb2.Eta:
    """The arrival window of a shipment.

    Delivered: the delivery time. Moving: the promised time, widened by a day
    when it is delayed or bound for another country than the one asked about.
    Lost or returned shipments have no ETA (FAILED_PRECONDITION).
    """
    if not expects_arrival(shipment.status):
        raise FailedPrecondition(
            "this shipment has no arrival estimate",
            reason=NO_ARRIVAL[shipment.status],
            metadata={"awb": shipment.awb},
        )
    if shipment.status == Status.SHIPMENT_STATUS_DELIVERED:
        return orders_pb2.Eta(
            awb=shipment.awb,
            window_start_time=shipment.delivered_time,
            window_end_time=shipment.delivered_time,
            confidence=Confidence.ETA_CONFIDENCE_HIGH,
            delivered=True,
        )
    promised = shipment.promised_time.ToDatetime(UTC)
    start, end, confidence = promised - timedelta(hours=4), promised, Confidence.ETA_CONFIDENCE_HIGH
    if shipment.status in (
        Status.SHIPMENT_STATUS_DELAYED,
        Status.SHIPMENT_STATUS_DELIVERY_ATTEMPTED,
    ):
        end, confidence = promised + timedelta(days=1), Confidence.ETA_CONFIDENCE_LOW
    elif shipment.status == Status.SHIPMENT_STATUS_LABEL_CREATED:
        end, confidence = promised + timedelta(days=1), Confidence.ETA_CONFIDENCE_MEDIUM
    if region and region[:2] != shipment.destination_region[:2]:
        end += timedelta(days=1)
        confidence = max(confidence, Confidence.ETA_CONFIDENCE_MEDIUM)
    return orders_pb2.Eta(
        awb=shipment.awb,
        window_start_time=_ts(start),
        window_end_time=_ts(end),
        confidence=confidence,
        delivered=False,
    )


def fraud_score_bp(order: orders_pb2.Order, shipment: orders_pb2.Shipment) -> int:
    """A deterministic rules score in basis points (stands in for the fraud API).

    Higher for large orders and for disputes on parcels handed over in person;
    a stable per-order jitter keeps the distribution realistic.
    """
    score = 300
    if order.total.minor_units > 20_000:
        score += 1500
    if shipment.delivery_location == orders_pb2.DELIVERY_LOCATION_IN_PERSON:
        score += 4000
    jitter = int.from_bytes(hashlib.sha256(order.order_id.encode()).digest()[:2], "big") % 700
    return min(score + jitter, 10_000)
