"""Run one turn: stream its events, confirm or decline a proposed action, explain failures.

Exit codes: 0 the turn ended (answer, refusal or hand-over); 1 a call failed (its
ErrorInfo reason, RetryInfo delay and field violations are printed) or the request
breaks the contract's rules (``--validate-locally``); 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from waybill.common.v1 import conversation_pb2
from waybill.gateway.v1 import gateway_service_pb2 as gw
from waybill.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from .rich_errors import RichError, read_error

API_KEY_ENV = "WAYBILL_API_KEY"
"""The tenant's service key, sent as ``x-api-key`` (kept out of argv and shell history)."""
BEARER_ENV = "WAYBILL_BEARER_TOKEN"
"""An end-user token, sent as ``authorization: Bearer <token>`` when set."""
RETRYABLE = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
"""Codes worth another attempt when the call produced nothing yet."""
UNAVAILABLE_BACKOFF_S = 0.5
"""Wait before retrying UNAVAILABLE when the server named no delay."""


@dataclass(frozen=True, slots=True)
class Options:
    """How the client talks to the gateway."""

    target: str
    """The gateway's ``host:port``."""
    metadata: tuple[tuple[str, str], ...]
    """Credentials sent with every call."""
    timeout_s: float
    """Deadline of each call."""
    attempts: int
    """Tries per call for RESOURCE_EXHAUSTED (after its RetryInfo delay) and UNAVAILABLE."""
    max_wait_s: float
    """Longest RetryInfo delay the client waits for; a longer one ends the run."""


class CallFailed(Exception):
    """A call failed for good; carries what its status said."""

    def __init__(self, error: RichError) -> None:
        super().__init__(error.message)
        self.error = error


class Printer:
    """Writes a turn's events as they arrive: answer text inline, the rest one a line."""

    def __init__(self, out: Any = None) -> None:
        self._out = out if out is not None else sys.stdout
        self._open_line = False
        self.pending: conversation_pb2.PendingAction | None = None
        """The action the turn proposed, if any."""

    def _line(self, text: str) -> None:
        if self._open_line:
            self._out.write("\n")
            self._open_line = False
        self._out.write(text + "\n")
        self._out.flush()

    def show(self, event: gw.TurnEvent) -> None:
        kind = event.WhichOneof("kind")
        if kind == "delta":
            self._out.write(event.delta.text)
            self._out.flush()
            self._open_line = True
        elif kind == "tool_call":
            self._line(f"[tool] {event.tool_call.name}")
        elif kind == "citation":
            self._line(f"[cite] {event.citation.chunk_id}")
        elif kind == "confirmation_request":
            action = event.confirmation_request.action
            self.pending = action
            self._line(f"[proposed] {action.action_id} {action.order_id}: {action.summary}")
        elif kind == "escalation":
            self._line(f"[escalated] {event.escalation.ticket_id} ({event.escalation.queue})")
        elif kind == "refusal":
            self._line(f"[refused] {event.refusal.message}")
        elif kind == "error":
            e = event.error
            self._line(f"[turn error] {e.reason}: {e.message} (retryable={e.retryable})")
        elif kind == "final":
            self._line(f"[final] {event.final.answer}")
            self._line(f"[request] {event.final.request_id}")


def stream_with_retries(
    call: Callable[[], Iterable[Any]], printer: Printer, options: Options
) -> None:
    """Run a streaming call, showing each event. Before any event arrives, a retryable
    failure is tried again after the server's RetryInfo delay; after that, never (the
    turn has started: retrying could repeat it)."""
    for attempt in range(1, options.attempts + 1):
        started = False
        try:
            for response in call():
                started = True
                printer.show(response.event)
            return
        except grpc.RpcError as raised:
            error = read_error(raised)
            delay = error.retry_delay_s
            if delay is None and error.code == grpc.StatusCode.UNAVAILABLE:
                delay = UNAVAILABLE_BACKOFF_S
            retry = (
                not started
                and error.code in RETRYABLE
                and delay is not None
                and delay <= options.max_wait_s
                and attempt < options.attempts
            )
            if not retry:
                raise CallFailed(error) from raised
            for line in error.lines():
                print(line, file=sys.stderr)
            print(f"[retry] attempt {attempt + 1} in {delay:g}s", file=sys.stderr, flush=True)
            time.sleep(delay or 0.0)


def run_turn(
    stub: gw_grpc.GatewayServiceStub,
    request: gw.ConverseRequest,
    options: Options,
    *,
    decision: conversation_pb2.Decision,
) -> None:
    """One turn, and the decision on the action it proposes (if one is given)."""
    printer = Printer()
    md = list(options.metadata)
    stream_with_retries(
        lambda: stub.Converse(request, metadata=md, timeout=options.timeout_s), printer, options
    )
    action = printer.pending
    if action is None or decision == conversation_pb2.DECISION_UNSPECIFIED:
        return
    # One key for every attempt of this decision: a retry replays the first outcome
    # instead of acting twice.
    confirm = gw.ConfirmActionRequest(
        session_id=request.session_id,
        user_id=request.user_id,
        action_id=action.action_id,
        decision=decision,
        idempotency_key=uuid.uuid4().hex,
    )
    verb = "confirm" if decision == conversation_pb2.DECISION_CONFIRM else "decline"
    print(f"[{verb}] {action.action_id} idempotency_key={confirm.idempotency_key}", flush=True)
    stream_with_retries(
        lambda: stub.ConfirmAction(confirm, metadata=md, timeout=options.timeout_s),
        printer,
        options,
    )


def local_violations(request: gw.ConverseRequest) -> list[str]:
    """The contract's rules ``request`` breaks, checked here with protovalidate (the
    ``validate`` extra); the gateway checks the same rules."""
    import protovalidate

    found = []
    for v in protovalidate.Validator().collect_violations(request):
        elements = v.proto.field.elements if v.proto.field else ()
        path = ".".join(e.field_name for e in elements)
        found.append(f"[invalid] {path or '(message)'} [{v.proto.rule_id}]: {v.proto.message}")
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="order_status_client", description=__doc__)
    parser.add_argument("message", help="what the customer says")
    parser.add_argument("--target", default="127.0.0.1:50060", help="gateway host:port")
    parser.add_argument("--user", required=True, help="the end customer's id")
    parser.add_argument(
        "--session", default="", help="conversation id (default: a new one per run)"
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--confirm", action="store_true", help="confirm a proposed action")
    choice.add_argument("--decline", action="store_true", help="decline a proposed action")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per call")
    parser.add_argument("--attempts", type=int, default=3, help="tries per call (>= 1)")
    parser.add_argument(
        "--max-wait", type=float, default=30.0, help="longest RetryInfo delay to wait for"
    )
    parser.add_argument(
        "--validate-locally",
        action="store_true",
        help="check the request against the contract's rules before sending it",
    )
    args = parser.parse_args(argv)
    if args.attempts < 1:
        parser.error("--attempts must be at least 1")
    if not os.environ.get(API_KEY_ENV) and not os.environ.get(BEARER_ENV):
        parser.error(f"set {API_KEY_ENV} (the tenant's key) or {BEARER_ENV}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    metadata: list[tuple[str, str]] = []
    if key := os.environ.get(API_KEY_ENV):
        metadata.append(("x-api-key", key))
    if token := os.environ.get(BEARER_ENV):
        metadata.append(("authorization", f"Bearer {token}"))
    options = Options(
        target=args.target,
        metadata=tuple(metadata),
        timeout_s=args.timeout,
        attempts=args.attempts,
        max_wait_s=args.max_wait,
    )
    request = gw.ConverseRequest(
        session_id=args.session or f"session-{uuid.uuid4().hex[:16]}",
        user_id=args.user,
        message=args.message,
    )
    if args.validate_locally:
        problems = local_violations(request)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
    decision = conversation_pb2.DECISION_UNSPECIFIED
    if args.confirm:
        decision = conversation_pb2.DECISION_CONFIRM
    elif args.decline:
        decision = conversation_pb2.DECISION_DECLINE
    with grpc.insecure_channel(options.target) as channel:
        stub = gw_grpc.GatewayServiceStub(channel)
        try:
            run_turn(stub, request, options, decision=decision)
        except CallFailed as failed:
            print("\n".join(failed.error.lines()), file=sys.stderr)
            return 1
    return 0
