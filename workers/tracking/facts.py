"""What a tracking answer says about a shipment, an ETA or a delivery photo.

Pure functions from the order system's records to template facts (words the
customer reads); the templates in ``templates.py`` turn facts into sentences.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2
from waybill.orders.v1 import orders_pb2

from orders.core import expects_arrival

Status = customer_pb2.ShipmentStatus
STATUS_WORDS = {
    Status.SHIPMENT_STATUS_LABEL_CREATED: "label_created",
    Status.SHIPMENT_STATUS_IN_TRANSIT: "in_transit",
    Status.SHIPMENT_STATUS_OUT_FOR_DELIVERY: "out_for_delivery",
    Status.SHIPMENT_STATUS_DELIVERED: "delivered",
    Status.SHIPMENT_STATUS_DELAYED: "delayed",
    Status.SHIPMENT_STATUS_DELIVERY_ATTEMPTED: "attempted",
    Status.SHIPMENT_STATUS_LOST: "lost",
    Status.SHIPMENT_STATUS_RETURNED: "returned",
}
"""The status word templates branch on."""
WHERE = {
    orders_pb2.DELIVERY_LOCATION_IN_PERSON: "with you in person",
    orders_pb2.DELIVERY_LOCATION_FRONT_DOOR: "at your front door",
    orders_pb2.DELIVERY_LOCATION_BUILDING_RECEPTION: "with your building's reception",
    orders_pb2.DELIVERY_LOCATION_NEIGHBOUR: "with a neighbour",
    orders_pb2.DELIVERY_LOCATION_PARCEL_LOCKER: "in a parcel locker",
}
"""Where a parcel was left, as the end of "it was left ..."."""
CONFIDENCE = {
    orders_pb2.ETA_CONFIDENCE_HIGH: "high",
    orders_pb2.ETA_CONFIDENCE_MEDIUM: "medium",
    orders_pb2.ETA_CONFIDENCE_LOW: "low",
}
"""ETA confidence as the word the ETA template branches on."""


def day(ts: timestamp_pb2.Timestamp) -> str:
    """``Tue 03 Mar``."""
    return ts.ToDatetime(UTC).strftime("%a %d %b")


def moment(ts: timestamp_pb2.Timestamp) -> str:
    """``Tue 03 Mar 14:05 UTC``."""
    return ts.ToDatetime(UTC).strftime("%a %d %b %H:%M UTC")


def window(start: timestamp_pb2.Timestamp, end: timestamp_pb2.Timestamp) -> str:
    """An arrival window in words: one moment, hours of one day, or a span of days."""
    a, b = start.ToDatetime(UTC), end.ToDatetime(UTC)
    if a == b:
        return f"on {moment(start)}"
    if a.date() == b.date():
        return f"on {a:%a %d %b} between {a:%H:%M} and {b:%H:%M} UTC"
    return f"between {a:%a %d %b} and {b:%a %d %b}"


def status_word(shipment: orders_pb2.Shipment) -> str:
    """The shipment's status word (an unknown status reads as in transit)."""
    return STATUS_WORDS.get(shipment.status, "in_transit")


def status_facts(shipment: orders_pb2.Shipment, title: str) -> dict[str, Any]:
    """Facts of a status answer, from the shipment alone."""
    last = shipment.events[-1] if shipment.events else None
    facts: dict[str, Any] = {
        "awb": shipment.awb,
        "title": title or "order",
        "status": status_word(shipment),
        "last_event": last.description if last else "",
        "last_location": last.location if last else "",
        "last_time": moment(last.event_time) if last else "",
    }
    if shipment.status == Status.SHIPMENT_STATUS_DELIVERED:
        facts["delivered"] = moment(shipment.delivered_time)
        facts["where"] = WHERE.get(shipment.delivery_location, "")
        facts["photo"] = shipment.has_delivery_photo
    elif shipment.HasField("promised_time") and expects_arrival(shipment.status):
        facts["eta"] = f"by {day(shipment.promised_time)}"
    return facts


def eta_facts(eta: orders_pb2.Eta, *, awb: str, title: str) -> dict[str, Any]:
    """Facts of an ETA answer."""
    return {
        "awb": awb,
        "title": title,
        "delivered": eta.delivered,
        "window": window(eta.window_start_time, eta.window_end_time),
        "confidence": CONFIDENCE.get(eta.confidence, "medium"),
    }


def photo_facts(photo: orders_pb2.DeliveryPhoto, *, awb: str, title: str) -> dict[str, Any]:
    """Facts of a delivery-photo answer."""
    return {
        "awb": awb,
        "title": title,
        "taken": moment(photo.capture_time),
        "where": WHERE.get(photo.location, "at the address"),
        "photo_ref": photo.photo_ref,
    }
