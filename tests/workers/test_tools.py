"""Tool payloads: schemas compiled from the contracts, validation before execution."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY
from waybill.common.v1 import events_pb2
from waybill.worker.v1 import tools_pb2

from runtime.errors import InvalidArgument
from workers.tools import (
    MALFORMED,
    TOOL_ARGS,
    WRITE_TOOLS,
    ToolLog,
    payload_from_model,
    tool_spec,
)

REFUND = {
    "order_id": "ORD-20260001",
    "amount": {"currency_code": "USD", "minor_units": 1999},
    "reason_code": "REFUND_REASON_DAMAGED_ITEM",
    "order_total": {"currency_code": "USD", "minor_units": 4999},
}


def _invalid_count(tool: str, rule: str) -> float:
    value = REGISTRY.get_sample_value(
        "waybill_tool_payload_invalid_total", {"tool": tool, "rule_id": rule}
    )
    return value or 0.0


def test_every_write_tool_has_a_schema_from_its_contract() -> None:
    assert set(WRITE_TOOLS) == {"initiate_refund", "send_notification", "escalate_to_human"}
    for name in TOOL_ARGS:
        schema = tool_spec(name).json_schema
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        fields = {f.name for f in TOOL_ARGS[name].DESCRIPTOR.fields}
        assert set(schema["properties"]) == fields


def test_refund_schema_maps_rules_enums_and_required_fields() -> None:
    schema = tool_spec("initiate_refund").json_schema
    props = schema["properties"]
    assert props["order_id"] == {"type": "string", "pattern": "^ORD-[0-9]{8}$"}
    assert props["reason_code"]["enum"] == [
        "REFUND_REASON_DELIVERY_FAILED",
        "REFUND_REASON_WRONG_ITEM",
        "REFUND_REASON_DELIVERY_DISPUTE",
        "REFUND_REASON_CUSTOMER_REQUEST",
        "REFUND_REASON_DAMAGED_ITEM",
    ]  # UNSPECIFIED is excluded by not_in: [0]
    assert props["amount"]["properties"]["currency_code"]["pattern"] == "^[A-Z]{3}$"
    assert props["amount"]["properties"]["minor_units"] == {"type": "integer"}
    assert schema["required"] == ["order_id", "amount", "reason_code", "order_total"]
    # CEL rules cannot be JSON Schema; they are named for the model and checked later.
    assert "refund.amount_lte_order_total" in schema["description"]


def test_escalation_schema_has_length_bounds_and_optional_fields_stay_optional() -> None:
    escalate = tool_spec("escalate_to_human").json_schema
    assert escalate["properties"]["summary"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 2000,
    }
    eta = tool_spec("get_eta").json_schema
    assert eta["required"] == ["awb"]  # region accepts "" so it may be left out


def test_a_valid_payload_parses_into_the_contract_message() -> None:
    args = payload_from_model("initiate_refund", json.dumps(REFUND))
    assert isinstance(args, tools_pb2.InitiateRefundArgs)
    assert args.amount.minor_units == 1999


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"order_id": "ORD-1"}, "string.pattern"),
        ({"reason_code": "REFUND_REASON_UNSPECIFIED"}, "enum.not_in"),
        (
            {"amount": {"currency_code": "USD", "minor_units": 9999}},
            "refund.amount_lte_order_total",
        ),
        ({"amount": {"currency_code": "USD", "minor_units": 0}}, "refund.amount_positive"),
    ],
)
def test_schema_violations_are_refused_and_counted(change: dict[str, object], rule: str) -> None:
    before = _invalid_count("initiate_refund", rule)
    with pytest.raises(InvalidArgument) as caught:
        payload_from_model("initiate_refund", json.dumps({**REFUND, **change}))
    assert caught.value.reason == "TOOL_PAYLOAD_INVALID"
    assert rule in caught.value.metadata["rule_ids"].split(",")
    assert _invalid_count("initiate_refund", rule) == before + 1


@pytest.mark.parametrize(
    "payload",
    ['{"order_id": ', '{"order_id": "ORD-20260001", "amount_usd": 5}', "[]"],
)
def test_malformed_json_and_unknown_fields_are_refused(payload: str) -> None:
    before = _invalid_count("initiate_refund", MALFORMED)
    with pytest.raises(InvalidArgument) as caught:
        payload_from_model("initiate_refund", payload)
    assert caught.value.metadata["rule_id"] == MALFORMED
    assert _invalid_count("initiate_refund", MALFORMED) == before + 1


def test_unknown_tool_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        payload_from_model("wire_money", "{}")
    assert caught.value.reason == "UNKNOWN_TOOL"


async def test_tool_log_never_runs_an_invalid_payload() -> None:
    ran = []

    async def refund() -> str:
        ran.append(True)
        return "refunded"

    log = ToolLog(max_calls=2)
    bad = tools_pb2.InitiateRefundArgs()
    bad.MergeFromString(
        payload_from_model("initiate_refund", json.dumps(REFUND)).SerializeToString()
    )
    bad.amount.minor_units = 10_000
    before = _invalid_count("initiate_refund", "refund.amount_lte_order_total")
    with pytest.raises(InvalidArgument):
        await log.call("initiate_refund", bad, refund)
    assert ran == []
    assert log.calls[-1].outcome == events_pb2.STATUS_CODE_INVALID_ARGUMENT
    assert _invalid_count("initiate_refund", "refund.amount_lte_order_total") == before + 1
    good = payload_from_model("initiate_refund", json.dumps(REFUND))
    assert await log.call("initiate_refund", good, refund) == "refunded"
    assert ran == [True]
