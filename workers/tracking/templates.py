"""Composer templates of the tracking worker: fixed wording, facts from tools only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_pool.composer import Template


def _status(f: Mapping[str, Any]) -> str:
    head = f"Your order ({f['title']}, {f['awb']}) "
    status = f["status"]
    if status == "delivered":
        where = f" and was left {f['where']}" if f.get("where") else ""
        photo = " A delivery photo is available if you'd like to see it." if f.get("photo") else ""
        return f"{head}was delivered on {f['delivered']}{where}.{photo}"
    if status == "lost":
        return (
            f"{head}has unfortunately been reported lost by the carrier, and an investigation "
            "is open. I can connect you with our support team to arrange a replacement or refund."
        )
    if status == "returned":
        return f"{head}was returned to the sender ({f['last_event']}) on {f['last_time']}."
    eta = f" It is expected {f['eta']}." if f.get("eta") else ""
    last = f" Latest update: {f['last_event']} at {f['last_location']} on {f['last_time']}."
    phrases = {
        "label_created": "has a shipping label, but the carrier has not collected it yet.",
        "in_transit": "is in transit.",
        "out_for_delivery": "is out for delivery today.",
        "delayed": "is delayed.",
        "attempted": "had a delivery attempt that did not succeed; the carrier will try again.",
    }
    return head + phrases.get(status, "is on its way.") + eta + last


def _eta(f: Mapping[str, Any]) -> str:
    if f.get("delivered"):
        return (
            f"Your order ({f['title']}, {f['awb']}) has already arrived: "
            f"it was delivered {f['window']}."
        )
    sure = {
        "high": "",
        "medium": " The date may still move by a day.",
        "low": " It is running late, so the date may still change.",
    }[f["confidence"]]
    return f"Your order ({f['title']}, {f['awb']}) should arrive {f['window']}.{sure}"


def _photo(f: Mapping[str, Any]) -> str:
    return (
        f"Here is the delivery photo of your order ({f['title']}, {f['awb']}), taken {f['taken']} "
        f"when it was left {f['where']}: {f['photo_ref']}"
    )


def _no_photo(f: Mapping[str, Any]) -> str:
    if f["why"] == "not_delivered":
        return (
            f"There is no delivery photo yet: your order ({f['title']}, {f['awb']}) has not been "
            f"delivered. Its current status: {f['status_text']}."
        )
    return (
        f"No photo was taken when your order ({f['title']}, {f['awb']}) "
        f"was delivered on {f['when']}."
    )


def _no_eta(f: Mapping[str, Any]) -> str:
    return (
        f"I can't give an arrival date for {f['awb']}: the shipment was {f['why']}. "
        "I can connect you with our support team if you'd like."
    )


def _which(f: Mapping[str, Any]) -> str:
    lines = "\n".join(f"{i}. {o}" for i, o in enumerate(f["orders"], start=1))
    return f"You have {len(f['orders'])} active orders. Which one do you mean?\n{lines}"


def _not_found(f: Mapping[str, Any]) -> str:
    return (
        f"I couldn't find a shipment {f['ref']} on your account. Please check the tracking "
        "number (it starts with WB followed by 10 digits)."
    )


def _none(_: Mapping[str, Any]) -> str:
    return (
        "I don't see any active orders on your account. If you have a tracking number "
        "(WB followed by 10 digits), send it and I'll look it up."
    )


TEMPLATES: dict[str, Template] = {
    "tracking.status": _status,
    "tracking.eta": _eta,
    "tracking.photo": _photo,
    "tracking.no_photo": _no_photo,
    "tracking.no_eta": _no_eta,
    "tracking.which_order": _which,
    "tracking.not_found": _not_found,
    "tracking.no_orders": _none,
}
