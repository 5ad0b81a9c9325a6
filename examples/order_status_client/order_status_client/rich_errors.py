"""What a failed call says beyond its code: the google.rpc.Status in its trailers.

Waybill attaches exactly one ``ErrorInfo`` (the reason to branch on), plus ``RetryInfo``
when the call may be retried after a delay and ``BadRequest`` listing every violated
validation rule. Branch on the reason and the rule ids, never on the message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True, slots=True)
class Violation:
    """One violated validation rule of the request."""

    field: str
    """Dotted path of the field (``session_id``), empty for message-level rules."""
    rule_id: str
    """The rule's id (``string.pattern``), stable across releases."""
    description: str
    """Human-readable description."""


@dataclass(frozen=True, slots=True)
class RichError:
    """A failed call as a client acts on it."""

    code: grpc.StatusCode
    """The status code."""
    message: str
    """The status message (for people; do not parse it)."""
    reason: str = ""
    """ErrorInfo reason, e.g. ``VALIDATION_FAILED``; empty when none was attached."""
    domain: str = ""
    """ErrorInfo domain, e.g. ``gateway.waybill``."""
    metadata: dict[str, str] = field(default_factory=dict)
    """ErrorInfo metadata."""
    retry_delay_s: float | None = None
    """RetryInfo delay: when to try again; None when the server gave none."""
    violations: tuple[Violation, ...] = ()
    """BadRequest field violations, for INVALID_ARGUMENT."""

    def lines(self) -> list[str]:
        """What the client prints about it, one fact a line."""
        found = [f"[error] {self.code.name}: {self.message}"]
        if self.reason:
            found.append(f"[error] reason={self.reason} domain={self.domain}")
        found.extend(f"[error] metadata {k}={v}" for k, v in sorted(self.metadata.items()))
        found.extend(
            f"[error] violation {v.field or '(message)'} [{v.rule_id}]: {v.description}"
            for v in self.violations
        )
        if self.retry_delay_s is not None:
            found.append(f"[error] retry after {self.retry_delay_s:g}s")
        return found


def read_error(error: grpc.RpcError) -> RichError:
    """The code, message and details of a failed call (a ``grpc.Call``)."""
    call: Any = error
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    try:
        status = rpc_status.from_call(call)
    except ValueError:
        # The details disagree with the call's own code or message: trust neither.
        status = None
    if status is None:
        return RichError(code=code, message=message)
    info: Any = None
    retry_delay_s: float | None = None
    violations: list[Violation] = []
    for detail in status.details:
        if info is None and detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_delay_s = retry.retry_delay.ToNanoseconds() / 1e9
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(
                Violation(field=v.field, rule_id=v.reason, description=v.description)
                for v in bad.field_violations
            )
    return RichError(
        code=code,
        message=message,
        reason=info.reason if info is not None else "",
        domain=info.domain if info is not None else "",
        metadata=dict(info.metadata) if info is not None else {},
        retry_delay_s=retry_delay_s,
        violations=tuple(violations),
    )
