"""Tool calls: argument contracts, validation, and running a call as an event.

Every tool's arguments are a message in ``waybill/worker/v1/tools.proto``.
That message is the one source of its JSON Schema (``tool_spec``, compiled by
``llm_pool.json_schema``: the guided-decoding guide for Triton, the function
parameters for OpenAI-compatible servers) and of its validation: a payload a
model produced is parsed into the message and checked with protovalidate
(``payload_from_model``) before anything runs, and ``ToolLog.call`` checks
again. An invalid payload is never executed; it is counted in
``waybill_tool_payload_invalid_total`` by tool and rule id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

import grpc
import protovalidate
from google.protobuf import json_format, message, struct_pb2
from opentelemetry import trace
from prometheus_client import Counter
from waybill.common.v1 import events_pb2
from waybill.worker.v1 import tools_pb2

from llm_pool.generation import ToolSpec
from llm_pool.json_schema import schema_for
from runtime import status_codes, telemetry
from runtime.errors import DomainError, InvalidArgument

T = TypeVar("T")

_validator = protovalidate.Validator()

READ_TOOLS: Mapping[str, type[message.Message]] = {
    "get_order_status": tools_pb2.GetOrderStatusArgs,
    "get_order": tools_pb2.GetOrderArgs,
    "get_eta": tools_pb2.GetEtaArgs,
    "get_delivery_photo": tools_pb2.GetDeliveryPhotoArgs,
    "search_policy_kb": tools_pb2.SearchPolicyArgs,
    "check_fraud_score": tools_pb2.CheckFraudScoreArgs,
    "list_refunds": tools_pb2.ListRefundsArgs,
}
"""Read-only tools and their argument messages."""
WRITE_TOOLS: Mapping[str, type[message.Message]] = {
    "initiate_refund": tools_pb2.InitiateRefundArgs,
    "send_notification": tools_pb2.SendNotificationArgs,
    "escalate_to_human": tools_pb2.EscalateArgs,
}
"""Tools that change state, and their argument messages."""
TOOL_ARGS: Mapping[str, type[message.Message]] = {**READ_TOOLS, **WRITE_TOOLS}

INVALID_PAYLOADS = Counter(
    "waybill_tool_payload_invalid_total",
    "Tool payloads refused before execution, by tool and violated rule id.",
    ["tool", "rule_id"],
)
TOOL_CALLS = Counter(
    "waybill_tool_calls_total",
    "Tool calls workers made, by tool and status code (refused payloads as INVALID_ARGUMENT).",
    ["tool", "code"],
)
MALFORMED = "payload.malformed_json"
"""Rule id counted for a payload that is not JSON of the argument message."""


@cache
def tool_spec(name: str) -> ToolSpec:
    """The tool's name and JSON Schema, compiled from its argument message."""
    try:
        args = TOOL_ARGS[name]
    except KeyError:
        raise KeyError(f"unknown tool {name!r}; known: {', '.join(TOOL_ARGS)}") from None
    return ToolSpec(name=name, json_schema=schema_for(args.DESCRIPTOR))


def _refuse(name: str, rule_ids: list[str], detail: str, reason: str) -> InvalidArgument:
    for rule in rule_ids:
        INVALID_PAYLOADS.labels(name, rule).inc()
    return InvalidArgument(
        f"tool {name} payload {detail}",
        reason=reason,
        metadata={"tool": name, "rule_id": rule_ids[0], "rule_ids": ",".join(rule_ids)},
    )


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a payload cannot run: the violated rule ids, in the contract's order."""

    rule_ids: list[str]
    detail: str
    reason: str


def parse_payload(name: str, arguments: str) -> message.Message | Refused:
    """A model's JSON arguments for tool ``name`` as its argument message, or why not
    (malformed JSON, unknown fields, a contract violation). Counts nothing."""
    if name not in TOOL_ARGS:
        return Refused(["tool.unknown"], "names an unknown tool", "UNKNOWN_TOOL")
    args = TOOL_ARGS[name]()
    try:
        document = json.loads(arguments)
        if not isinstance(document, dict):
            raise json_format.ParseError("arguments must be a JSON object")
        json_format.ParseDict(document, args)
    except (ValueError, json_format.ParseError) as exc:
        return Refused([MALFORMED], f"is not valid JSON arguments: {exc}", "TOOL_PAYLOAD_INVALID")
    found = _validator.collect_violations(args)
    if found:
        rules = [v.proto.rule_id for v in found]
        return Refused(rules, f"violates {rules[0]}", "TOOL_PAYLOAD_INVALID")
    return args


def payload_from_model(name: str, arguments: str) -> message.Message:
    """Parse and validate a model's JSON arguments for tool ``name``.

    Raises InvalidArgument (reason ``TOOL_PAYLOAD_INVALID``, the violated rule
    ids in its metadata) for malformed JSON, unknown fields or any contract
    violation; the payload is counted and must not be executed.
    """
    parsed = parse_payload(name, arguments)
    if isinstance(parsed, Refused):
        raise _refuse(name, parsed.rule_ids, parsed.detail, parsed.reason)
    return parsed


@dataclass(slots=True)
class ToolLog:
    """The tool calls of one turn, capped at ``max_calls``."""

    max_calls: int
    calls: list[events_pb2.ToolCall] = field(default_factory=list)

    @property
    def exhausted(self) -> bool:
        """True once the cap is reached."""
        return len(self.calls) >= self.max_calls

    async def call(self, name: str, args: message.Message, fn: Callable[[], Awaitable[T]]) -> T:
        """Validate ``args`` against its contract, run ``fn`` and record the outcome.

        An invalid payload is never executed. A failure (a mapped peer error or a raw
        gRPC one) is recorded with its code and re-raised.
        """
        if self.exhausted:
            raise RuntimeError(f"tool budget of {self.max_calls} calls is spent")
        found = _validator.collect_violations(args)
        arguments = struct_pb2.Struct()
        arguments.update(json_format.MessageToDict(args))
        if found:
            self._record(name, arguments, grpc.StatusCode.INVALID_ARGUMENT)
            rules = [v.proto.rule_id for v in found]
            raise _refuse(name, rules, f"violates {rules[0]}", "TOOL_PAYLOAD_INVALID")
        started = time.perf_counter()
        outcome = grpc.StatusCode.OK
        try:
            return await fn()
        except DomainError as exc:
            outcome = exc.code
            raise
        except grpc.aio.AioRpcError as exc:
            outcome = exc.code()
            raise
        finally:
            self._record(name, arguments, outcome, int((time.perf_counter() - started) * 1e6))

    def _record(
        self,
        name: str,
        arguments: struct_pb2.Struct,
        outcome: grpc.StatusCode,
        duration_us: int = 0,
    ) -> None:
        """One call's outcome in the turn's list, the counter and the worker's span."""
        TOOL_CALLS.labels(name, outcome.name).inc()
        trace.get_current_span().add_event(
            "tool", {telemetry.ATTR_TOOL: name, telemetry.ATTR_TOOL_STATUS: outcome.name}
        )
        self.calls.append(
            events_pb2.ToolCall(
                name=name,
                arguments=arguments,
                outcome=status_codes.to_proto(outcome),
                duration_us=duration_us,
            )
        )
