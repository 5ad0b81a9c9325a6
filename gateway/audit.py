"""Each turn's audit record, gathered from the events the caller was sent.

The gateway sees every event of a turn on its way out, so the record is built there: the
intent and worker, the tools called and how they ended, the models and tokens, the charge
and the budget state (from ``Final``), the input check's verdict, the latency and how the
turn ended. The customer and the session go in only as keyed pseudonyms
(``runtime.audit``); no message text can (the record's fields refuse text).

Auditing never fails a turn: a record that cannot be written is logged and counted in
``waybill_audit_failures_total``, and the turn's answer stands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from types import TracebackType

import grpc
from prometheus_client import Counter
from waybill.common.v1 import intent_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2 as ledger

from runtime import status_codes
from runtime.audit.record import AuditRecord, GuardrailVerdict, ToolCall
from runtime.audit.trail import AuditTrail
from runtime.audit.writer import AuditError
from runtime.errors import DomainError
from runtime.principal import Principal

log = logging.getLogger("waybill.gateway")

AUDIT_FAILURES = Counter(
    "waybill_audit_failures_total",
    "Turns whose audit record could not be written (the turn itself went on).",
)
INPUT_CHECK = "input_injection"


def _budget(state: int) -> str:
    if state == ledger.BUDGET_STATE_UNSPECIFIED:
        return ""
    return ledger.BudgetState.Name(state).removeprefix("BUDGET_STATE_").lower()


def outcome_of(error: BaseException) -> str:
    """How a failed turn ended, as the caller saw it: the status code and its reason."""
    if isinstance(error, DomainError):
        return _ending(_name(error.code), error.reason)
    if isinstance(error, grpc.aio.AioRpcError):
        return _name(error.code())
    if isinstance(error, GeneratorExit | asyncio.CancelledError):
        return "CANCELLED"
    return "INTERNAL"


def _name(code: grpc.StatusCode) -> str:
    return str(code.name)


def _ending(code: str, reason: str) -> str:
    """``CODE`` or ``CODE:REASON`` (``RESOURCE_EXHAUSTED:BUDGET_EXHAUSTED``)."""
    return f"{code}:{reason}" if reason else code


class TurnRecord:
    """What a turn tells its audit record; this base keeps nothing (auditing is off).

    Used as a context manager around the turn: leaving it with an exception records how
    the turn failed, and leaving it either way closes the record, unless the turn handed
    the record on (``hand_off``) to work that goes on after it and closes it there.
    """

    _handed_off = False

    def observe(self, event: pb.TurnEvent) -> None:
        """Take what the record needs from one event the caller is sent."""

    def observe_final(self, final: pb.Final) -> None:
        """Take the turn's ``Final`` (a call that built one without sending it as an event)."""
        self.observe(pb.TurnEvent(final=final))

    def failed(self, error: BaseException) -> None:
        """The turn ended with ``error``."""

    def close(self) -> None:
        """Write the record (once); never raises."""

    def hand_off(self) -> None:
        """Leaving the ``with`` block no longer closes the record: its new owner will."""
        self._handed_off = True

    def __enter__(self) -> TurnRecord:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._handed_off:
            return
        if error is not None:  # refused, failed, or the caller went away
            self.failed(error)
        self.close()


class TurnAudit(TurnRecord):
    """One turn's record in the making; ``close`` appends it once."""

    def __init__(
        self,
        trail: AuditTrail,
        principal: Principal,
        *,
        user_id: str,
        session_id: str,
        request_id: str,
    ) -> None:
        self._trail = trail
        self._principal = principal
        self._user_id = user_id
        self._session_id = session_id
        self._request_id = request_id
        self._at = datetime.now(UTC)
        self._started = time.perf_counter()
        self._tools: list[ToolCall] = []
        self._final: pb.Final | None = None
        self._verdict = "allow"
        self._outcome = ""
        self._closed = False

    def observe(self, event: pb.TurnEvent) -> None:
        """Take what the record needs from one event the caller is sent."""
        kind = event.WhichOneof("kind")
        if kind == "tool_call":
            code = status_codes.from_proto(event.tool_call.outcome)
            self._tools.append(ToolCall(event.tool_call.name, _name(code)))
        elif kind == "final":
            self._final = event.final
            self._outcome = "OK"
        elif kind == "refusal":
            self._verdict = "block"
            self._outcome = "REFUSED"
        elif kind == "error" and not self._outcome:
            code = _name(status_codes.from_proto(event.error.code))
            self._outcome = _ending(code, event.error.reason)

    def failed(self, error: BaseException) -> None:
        """The turn ended with ``error`` (unless an event already said how it ended: a
        caller that goes away after ``Final`` had its answer)."""
        if not self._outcome:
            self._outcome = outcome_of(error)

    def close(self) -> None:
        """Append the record (once); never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            self._trail.append(self._record())
        except (AuditError, ValueError, OSError) as exc:
            AUDIT_FAILURES.inc()
            log.error(
                "turn not audited",
                extra={"request_id": self._request_id, "error": type(exc).__name__},
            )

    def _record(self) -> AuditRecord:
        names = self._trail.pseudonyms(self._principal.tenant_id, self._user_id, self._session_id)
        final = self._final or pb.Final()
        usage = final.usage
        return AuditRecord(
            time=self._at,
            request_id=self._request_id,
            tenant_id=self._principal.tenant_id,
            team_id=self._principal.team_id,
            principal_id=self._principal.principal_id,
            user_pseudonym=names.user,
            session_pseudonym=names.session,
            intent=intent_pb2.Intent.Name(final.intent) if self._final else "",
            worker=intent_pb2.Worker.Name(final.worker) if self._final else "",
            tools=tuple(self._tools),
            models=tuple(f"{g.backend}/{g.model}" for g in usage.generations),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_micro_units=usage.cost.micro_units,
            currency_code=usage.cost.currency_code or "USD",
            latency_us=int((time.perf_counter() - self._started) * 1e6),
            guardrails=(GuardrailVerdict(INPUT_CHECK, self._verdict),),
            cache_hit=final.cache_hit,
            budget_state=_budget(final.budget_state),
            outcome=self._outcome or "UNKNOWN",
        )


class Auditor:
    """Opens a ``TurnAudit`` per turn, or a ``TurnRecord`` that keeps nothing when
    auditing is off."""

    def __init__(self, trail: AuditTrail | None) -> None:
        self._trail = trail

    def turn(
        self, principal: Principal, *, user_id: str, session_id: str, request_id: str
    ) -> TurnRecord:
        """The record of one turn."""
        if self._trail is None:
            return TurnRecord()
        return TurnAudit(
            self._trail,
            principal,
            user_id=user_id,
            session_id=session_id,
            request_id=request_id,
        )

    async def aclose(self) -> None:
        """Write what is queued and close the log."""
        if self._trail is not None:
            await self._trail.aclose()
