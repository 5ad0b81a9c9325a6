"""A tool payload from guided decoding on the real Triton server, validated before any tool runs."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from google.protobuf import json_format
from waybill.worker.v1 import tools_pb2

from cli.triton import TritonServer
from llm_pool.composer import Composer
from llm_pool.generation import AnswerPlan, GenerationRequest, Prompt, ToolPayload
from llm_pool.pool import LinkOptions, LLMPool
from llm_pool.triton import TritonBackend
from runtime.errors import InvalidArgument
from workers.tools import ToolLog, payload_from_model, tool_spec


def tool_args(arguments: str) -> tools_pb2.InitiateRefundArgs:
    """Parse without validating (what a careless caller would run)."""
    return json_format.Parse(arguments, tools_pb2.InitiateRefundArgs())


REFUND_FACTS = {
    "order_id": "ORD-20260001",
    "amount": {"currency_code": "USD", "minor_units": 1999},
    "reason_code": "REFUND_REASON_DAMAGED_ITEM",
    "order_total": {"currency_code": "USD", "minor_units": 4999},
}


async def _payload(server: TritonServer, facts: Mapping[str, object]) -> ToolPayload:
    backend = TritonBackend(
        name="triton-large", url=server.address, served_model="waybill-cpu-test"
    )
    pool = LLMPool(
        [backend, Composer({})],
        {"negotiation": ["triton-large", "composer"]},
        options={"triton-large": LinkOptions(timeout_s=10)},
    )
    request = GenerationRequest(
        use_case="negotiation",
        prompt=Prompt(instructions="refund agent", context_block="[CONTEXT v1]", message="refund"),
        plan=AnswerPlan("negotiation.refund_args", facts),
        tool=tool_spec("initiate_refund"),
    )
    try:
        events = [e async for e in pool.stream(request)]
    finally:
        await pool.close()
    payloads = [e for e in events if isinstance(e, ToolPayload)]
    assert len(payloads) == 1
    return payloads[0]


async def test_guided_payload_validates_against_the_contract(triton_server: TritonServer) -> None:
    payload = await _payload(triton_server, REFUND_FACTS)
    args = payload_from_model(payload.tool, payload.arguments)
    assert args.order_id == "ORD-20260001"  # type: ignore[attr-defined]
    assert json.loads(payload.arguments)["reason_code"] == "REFUND_REASON_DAMAGED_ITEM"


async def test_a_schema_valid_payload_that_breaks_a_contract_rule_never_runs(
    triton_server: TritonServer,
) -> None:
    """Guided decoding keeps the JSON Schema; the CEL rule (refund <= total) still refuses it."""
    over = {**REFUND_FACTS, "amount": {"currency_code": "USD", "minor_units": 9999}}
    payload = await _payload(triton_server, over)
    ran: list[bool] = []

    async def refund() -> None:
        ran.append(True)

    with pytest.raises(InvalidArgument) as caught:
        payload_from_model(payload.tool, payload.arguments)
    assert caught.value.metadata["rule_id"] == "refund.amount_lte_order_total"
    # The same payload handed straight to a tool call is refused there too.
    args = tool_args(payload.arguments)
    with pytest.raises(InvalidArgument):
        await ToolLog(max_calls=1).call(payload.tool, args, refund)
    assert ran == []
