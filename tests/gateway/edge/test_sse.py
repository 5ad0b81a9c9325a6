"""SSE framing of gateway events: one event per TurnEvent, one line of proto3 JSON."""

from __future__ import annotations

import json

from waybill.common.v1 import events_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from gateway.edge import sse
from gateway.edge.errors import HttpError


def test_every_turn_event_kind_has_an_event_name() -> None:
    kinds = {f.name for f in pb.TurnEvent.DESCRIPTOR.oneofs_by_name["kind"].fields}
    assert set(sse.EVENT_NAMES) == kinds
    # `error` is kept for the stream's own failure.
    assert sse.STATUS_ERROR_EVENT not in sse.EVENT_NAMES.values()


def test_delta_with_newlines_stays_one_data_line() -> None:
    framed = sse.turn_event(pb.TurnEvent(delta=events_pb2.TextDelta(text="line one\nline two")))
    assert framed is not None
    kind, data = framed
    assert kind == "delta"
    text = data.decode()
    assert text.endswith("\n\n")
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "event: delta"
    assert len(lines) == 2
    assert json.loads(lines[1].removeprefix("data: ")) == {"text": "line one\nline two"}


def test_gateway_error_event_is_turn_error_with_defaults_printed() -> None:
    framed = sse.turn_event(
        pb.TurnEvent(error=events_pb2.TurnError(code=events_pb2.STATUS_CODE_UNAVAILABLE))
    )
    assert framed is not None
    kind, data = framed
    assert kind == "error"
    assert data.startswith(b"event: turn_error\n")
    payload = json.loads(data.decode().split("data: ", 1)[1])
    # The contract's StatusCode enum, by name, as the proto3 JSON mapping writes it.
    assert payload == {
        "code": "STATUS_CODE_UNAVAILABLE",
        "reason": "",
        "message": "",
        "retryable": False,
    }


def test_empty_event_is_skipped() -> None:
    assert sse.turn_event(pb.TurnEvent()) is None


def test_error_frame_carries_the_error_body() -> None:
    data = sse.error_frame(HttpError(503, "UNAVAILABLE", "down", [{"@type": "x"}]))
    name, payload = data.decode().rstrip("\n").split("\n")
    assert name == "event: error"
    assert json.loads(payload.removeprefix("data: ")) == {
        "error": {
            "code": 503,
            "message": "down",
            "status": "UNAVAILABLE",
            "details": [{"@type": "x"}],
        }
    }
