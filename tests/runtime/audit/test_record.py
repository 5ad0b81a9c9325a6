"""What a record may hold, and its canonical bytes."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from runtime.audit.record import (
    AuditRecord,
    GuardrailVerdict,
    RecordError,
    ToolCall,
    canonical,
    decode,
)
from tests.runtime.audit.logs import DAY0, record


def test_canonical_bytes_are_sorted_compact_ascii_and_round_trip() -> None:
    turn = record(3, user="u_" + "a" * 32, session="s_" + "b" * 32)
    data = canonical(turn)
    document = json.loads(data)
    assert data == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document["v"] == 1
    assert document["time"] == "2026-11-01T09:00:03.000000Z"
    assert document["tools"] == [
        {"name": "get_order_status", "status": "OK"},
        {"name": "get_eta", "status": "NOT_FOUND"},
    ]
    assert decode(data) == turn


def test_time_is_stored_in_utc() -> None:
    east = DAY0.astimezone(timezone(timedelta(hours=5)))
    assert canonical(record(0, at=east)) == canonical(record(0))


def test_the_record_type_has_no_field_for_text() -> None:
    names = {f.name for f in dataclasses.fields(AuditRecord)}
    assert not names & {"text", "message", "answer", "prompt", "content", "query", "user_id"}
    with pytest.raises(TypeError):
        AuditRecord(time=DAY0, request_id="r", tenant_id="t", text="hello")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "overrides",
    [
        {"intent": "where is my parcel"},
        {"outcome": "refused: the customer said their card is 4111 1111 1111 1111"},
        {"principal_id": "jane.doe@example.com"},
        {"user_pseudonym": "cust-0042"},
        {"session_pseudonym": "sess-1"},
        {"models": ("gpt 4o",)},
        {"input_tokens": -1},
        {"latency_us": 1.5},
        {"cache_hit": 1},
        {"request_id": ""},
        {"time": datetime(2026, 11, 1)},
    ],
)
def test_text_raw_ids_and_bad_values_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(RecordError):
        dataclasses.replace(record(1), **overrides)


def test_tools_and_guardrail_verdicts_hold_codes_only() -> None:
    with pytest.raises(RecordError):
        ToolCall("get_order", "ok, shipped to 12 Main Street")
    with pytest.raises(RecordError):
        GuardrailVerdict("pii", "redacted 'Jane Doe'")
    with pytest.raises(RecordError):
        dataclasses.replace(record(1), tools=("get_order",))  # type: ignore[arg-type]


def test_decode_refuses_unknown_and_missing_keys_and_other_versions() -> None:
    document = json.loads(canonical(record(1)))
    for changed in (
        {**document, "message": "hi"},
        {k: v for k, v in document.items() if k != "worker"},
        {**document, "v": 2},
    ):
        with pytest.raises(RecordError):
            decode(json.dumps(changed, sort_keys=True, separators=(",", ":")).encode())


def test_decode_refuses_non_canonical_bytes() -> None:
    data = canonical(record(1))
    with pytest.raises(RecordError, match="canonical"):
        decode(json.dumps(json.loads(data), sort_keys=True).encode())
