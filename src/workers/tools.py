"""Running a tool call: time it, validate its arguments, record it as an event."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
import protovalidate
from google.protobuf import json_format, message, struct_pb2
from waybill.common.v1 import events_pb2

from runtime.errors import InvalidArgument

T = TypeVar("T")

_validator = protovalidate.Validator()


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

        An invalid payload is never executed. A gRPC failure is recorded and re-raised.
        """
        if self.exhausted:
            raise RuntimeError(f"tool budget of {self.max_calls} calls is spent")
        found = _validator.collect_violations(args)
        arguments = struct_pb2.Struct()
        arguments.update(json_format.MessageToDict(args))
        if found:
            self.calls.append(
                events_pb2.ToolCall(name=name, arguments=arguments, outcome="INVALID_ARGUMENT")
            )
            rule = found[0].proto.rule_id
            raise InvalidArgument(
                f"tool {name} payload violates {rule}",
                reason="TOOL_PAYLOAD_INVALID",
                metadata={"tool": name, "rule_id": rule},
            )
        started = time.perf_counter()
        outcome = "OK"
        try:
            return await fn()
        except grpc.aio.AioRpcError as exc:
            outcome = exc.code().name
            raise
        finally:
            self.calls.append(
                events_pb2.ToolCall(
                    name=name,
                    arguments=arguments,
                    outcome=outcome,
                    duration_us=int((time.perf_counter() - started) * 1e6),
                )
            )


def is_code(exc: BaseException, *codes: grpc.StatusCode) -> bool:
    """Whether ``exc`` is a gRPC error with one of ``codes``."""
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in codes


def reason_of(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call, or ''."""
    from runtime.errors import error_info_of

    info = error_info_of(exc)
    return "" if info is None else str(info.reason)
