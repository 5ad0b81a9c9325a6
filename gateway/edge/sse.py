"""Server-Sent Events framing of gateway turn events.

One SSE event per gateway ``TurnEvent``; the event name is the oneof field
name, except the gateway's ``error`` event, sent as ``turn_error`` so that
``error`` stays free for the stream's own failure (the HTTP error body). Data
is one line of proto3 JSON of the event's message (JSON escapes newlines).
"""

from __future__ import annotations

from collections.abc import Mapping

from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.edge import json_mapping
from gateway.edge.errors import HttpError

STATUS_ERROR_EVENT = "error"
"""The stream failed after it started; data is ``{"error": {...}}``; always the last event."""

EVENT_NAMES: Mapping[str, str] = {
    "delta": "delta",
    "tool_call": "tool_call",
    "confirmation_request": "confirmation_request",
    "escalation": "escalation",
    "citation": "citation",
    "refusal": "refusal",
    "error": "turn_error",
    "final": "final",
}
"""TurnEvent oneof field -> SSE event name."""

COMPLETE_KINDS = frozenset({"final", "refusal"})
"""Last events of a turn that ended as it should."""


def frame(event: str, data: str) -> bytes:
    """One SSE event."""
    return f"event: {event}\ndata: {data}\n\n".encode()


def turn_event(event: pb.TurnEvent) -> tuple[str, bytes] | None:
    """The oneof kind and the SSE frame of a gateway event (None for an empty event)."""
    kind = event.WhichOneof("kind")
    if kind is None:
        return None
    return kind, frame(EVENT_NAMES[kind], json_mapping.to_json(getattr(event, kind)))


def error_frame(error: HttpError) -> bytes:
    """The stream's terminal ``error`` event."""
    return frame(STATUS_ERROR_EVENT, error.json_bytes().decode())
