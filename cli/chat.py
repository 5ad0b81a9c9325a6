"""``waybill chat``: a terminal client of the gateway.

Picks a customer, shows their active orders, then sends each line typed as a
Converse turn and prints the events as they stream. A confirmation request
is answered with ConfirmAction. The API key is never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf import json_format
from waybill.common.v1 import conversation_pb2, customer_pb2, events_pb2, intent_pb2, money_pb2
from waybill.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc

from cli import discovery
from cli.render import Style, use_color
from runtime import credentials, mesh, status_codes

API_KEY_ENV = "WAYBILL_API_KEY"
DEFAULT_TENANT = "acme-retail"
QUIT = "/quit"
UNARY_TIMEOUT_S = 10.0
# Currencies whose minor unit is not a hundredth (ISO 4217 exponent).
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}


class ChatSetupError(RuntimeError):
    """The chat cannot start: no gateway address or no API key."""


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What ``waybill chat`` was asked to do."""

    run_dir: Path = discovery.DEFAULT_RUN_DIR
    gateway: str | None = None
    """``host:port`` override; else mesh.json, else the mesh table default."""
    api_key: str | None = None
    """Key override; else ``WAYBILL_API_KEY``, else the run's credentials file."""
    tenant: str = DEFAULT_TENANT
    """Tenant whose key is used when none is given."""
    customer: str | None = None
    """User id; else the first customer the gateway lists."""
    timeout_s: float = 120.0
    """Deadline of one streamed turn."""


def new_session_id() -> str:
    """A fresh conversation id (matches ``^[A-Za-z0-9_-]{8,64}$``)."""
    return f"cli-{secrets.token_hex(10)}"


def resolve_gateway(options: ChatOptions) -> str:
    """The gateway address: flag, then mesh.json, then the mesh table."""
    if options.gateway:
        return options.gateway
    info = discovery.load(options.run_dir)
    if "gateway" in info.services:
        return info.services["gateway"].address
    return mesh.spec("gateway").address()


def resolve_api_key(options: ChatOptions, environ: Mapping[str, str] = os.environ) -> str:
    """The API key: flag, then ``WAYBILL_API_KEY``, then the run's credentials file."""
    if options.api_key:
        return options.api_key
    if environ.get(API_KEY_ENV):
        return environ[API_KEY_ENV]
    path = discovery.load(options.run_dir).credentials
    try:
        return credentials.key_for(path, options.tenant)
    except FileNotFoundError:
        raise ChatSetupError(
            f"no credentials file at {path}: start the mesh with `waybill up`,"
            f" or pass --api-key / set {API_KEY_ENV}"
        ) from None
    except KeyError as exc:
        raise ChatSetupError(str(exc.args[0])) from None


def rpc_error_line(error: grpc.RpcError) -> str:
    """``error: <CODE>: <details>`` for a failed call."""
    code = error.code()
    name = code.name if code is not None else "UNKNOWN"
    details = error.details()
    return f"error: {name}: {details}" if details else f"error: {name}"


def _enum(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name without its type prefix (``IN_TRANSIT``)."""
    try:
        name = str(enum.Name(value))
    except ValueError:
        return str(value)
    return name.removeprefix(prefix)


def money(amount: money_pb2.Money) -> str:
    """``12.34 USD`` from minor units."""
    exponent = _EXPONENTS.get(amount.currency_code, 2)
    major = amount.minor_units / (10**exponent)
    return f"{major:.{exponent}f} {amount.currency_code}"


class TurnPrinter:
    """Prints the events of one turn; remembers what the caller must act on."""

    def __init__(self, out: TextIO, style: Style) -> None:
        self._out = out
        self._style = style
        self._line_open = False
        self.streamed_text = False
        self.pending: conversation_pb2.PendingAction | None = None
        self.failed_code: str | None = None
        """Code of the error event shown, if the turn ended with one."""

    def _line(self, text: str) -> None:
        """Print ``text`` on a line of its own, closing a streamed line first."""
        if self._line_open:
            self._out.write("\n")
            self._line_open = False
        self._out.write(text + "\n")
        self._out.flush()

    def finish(self) -> None:
        """End the turn on a fresh line."""
        if self._line_open:
            self._out.write("\n")
            self._line_open = False
        self._out.flush()

    def event(self, event: gateway_service_pb2.TurnEvent) -> None:
        """Print one event."""
        kind = event.WhichOneof("kind")
        if kind == "delta":
            self._out.write(event.delta.text)
            self._out.flush()
            self.streamed_text = True
            self._line_open = not event.delta.text.endswith("\n")
        elif kind == "tool_call":
            self._tool_call(event.tool_call)
        elif kind == "confirmation_request":
            self._confirmation(event.confirmation_request.action)
        elif kind == "escalation":
            e = event.escalation
            self._line(
                self._style.warn(f"handed to a human: ticket {e.ticket_id} in queue {e.queue}")
                + (f" ({e.reason})" if e.reason else "")
            )
        elif kind == "refusal":
            reason = _enum(events_pb2.RefusalReason, event.refusal.reason, "REFUSAL_REASON_")
            self._line(self._style.warn(f"refused ({reason}): {event.refusal.message}"))
        elif kind == "error":
            self._error(event.error)
        elif kind == "final":
            self._final(event.final)

    def _tool_call(self, call: events_pb2.ToolCall) -> None:
        args = json.dumps(json_format.MessageToDict(call.arguments), separators=(",", ":"))
        ms = call.duration_us / 1000
        outcome = status_codes.short_name(call.outcome)
        self._line(self._style.dim(f"  [tool] {call.name} {args} -> {outcome} ({ms:.1f} ms)"))

    def _confirmation(self, action: conversation_pb2.PendingAction) -> None:
        kind = _enum(conversation_pb2.ActionKind, action.kind, "ACTION_KIND_").lower()
        amount = f", {money(action.amount)}" if action.HasField("amount") else ""
        self._line(self._style.warn(f"confirmation needed: {kind} of {action.order_id}{amount}"))
        if action.summary:
            self._line(f"  {action.summary}")
        self.pending = action

    def _error(self, error: events_pb2.TurnError) -> None:
        self.failed_code = status_codes.short_name(error.code)
        retry = " (retryable)" if error.retryable else ""
        reason = f" {error.reason}" if error.reason else ""
        self._line(
            self._style.error(f"turn failed: {self.failed_code}{reason}: {error.message}{retry}")
        )

    def _final(self, final: gateway_service_pb2.Final) -> None:
        if not self.streamed_text and final.answer:
            self._line(final.answer)
        intent = _enum(intent_pb2.Intent, final.intent, "INTENT_").lower()
        worker = _enum(intent_pb2.Worker, final.worker, "WORKER_").lower()
        usage = final.usage
        parts = [f"{intent} via {worker}", f"{usage.input_tokens}+{usage.output_tokens} tokens"]
        if usage.HasField("cost"):
            parts.append(f"{usage.cost.micro_units / 1_000_000:.6f} {usage.cost.currency_code}")
        if final.cache_hit:
            parts.append("cache hit")
        self._line(self._style.dim(f"  [{', '.join(parts)}]"))


class Chat:
    """One conversation with one customer through the gateway."""

    def __init__(
        self,
        stub: gateway_service_pb2_grpc.GatewayServiceStub,
        api_key: str,
        *,
        out: TextIO,
        err: TextIO,
        read_line: Callable[[str], str],
        timeout_s: float = 120.0,
    ) -> None:
        self._stub = stub
        self._metadata = (("x-api-key", api_key),)
        self._out = out
        self._err = err
        self._read_line = read_line
        self._timeout_s = timeout_s
        self._style = Style(use_color(out))
        self.session_id = new_session_id()
        self.user_id = ""

    def pick_customer(self, customer: str | None) -> str:
        """``customer``, or the first customer the gateway lists for the key's tenant."""
        if customer:
            self.user_id = customer
            return customer
        page = self._stub.ListCustomers(
            gateway_service_pb2.ListCustomersRequest(page_size=1),
            metadata=self._metadata,
            timeout=UNARY_TIMEOUT_S,
        )
        if not page.customers:
            raise ChatSetupError("the gateway lists no customers for this tenant")
        first = page.customers[0]
        self.user_id = str(first.user_id)
        tier = _enum(customer_pb2.CustomerTier, first.tier, "CUSTOMER_TIER_").lower()
        self._out.write(f"customer: {first.user_id} ({first.display_name}, {tier})\n")
        return self.user_id

    def show_context(self) -> None:
        """Print the customer's tier, region and active orders."""
        response = self._stub.GetCustomerContext(
            gateway_service_pb2.GetCustomerContextRequest(user_id=self.user_id),
            metadata=self._metadata,
            timeout=UNARY_TIMEOUT_S,
        )
        ctx = response.context
        tier = _enum(customer_pb2.CustomerTier, ctx.tier, "CUSTOMER_TIER_").lower()
        self._out.write(
            self._style.bold(f"{self.user_id}: {tier} tier, region {ctx.region}") + "\n"
        )
        if not ctx.active_orders:
            self._out.write("no active orders\n")
        for order in ctx.active_orders:
            status = _enum(customer_pb2.ShipmentStatus, order.status, "SHIPMENT_STATUS_").lower()
            eta = order.eta.ToDatetime().date().isoformat() if order.HasField("eta") else "-"
            self._out.write(
                f"  {order.order_id}  {order.awb}  {status:<18} eta {eta}  {order.title}\n"
            )
        self._out.flush()

    def _stream(self, call: Iterable[Any]) -> conversation_pb2.PendingAction | None:
        """Print a turn's events; the pending action if one was requested."""
        printer = TurnPrinter(self._out, self._style)
        try:
            for response in call:
                printer.event(response.event)
        except KeyboardInterrupt:
            # Ctrl-C ends the turn, not the chat.
            cancel = getattr(call, "cancel", None)
            if cancel is not None:
                cancel()
            self._err.write("(turn cancelled)\n")
            return None
        except grpc.RpcError as error:
            # A stream that ended with an error event may then close with the
            # same status: the event already said it in customer-facing words.
            code = error.code()
            if printer.failed_code is None or code is None or code.name != printer.failed_code:
                raise
            return None
        finally:
            printer.finish()
        return printer.pending

    def send(self, message: str) -> None:
        """Run one turn, then any confirmation it asks for."""
        call = self._stub.Converse(
            gateway_service_pb2.ConverseRequest(
                session_id=self.session_id, user_id=self.user_id, message=message
            ),
            metadata=self._metadata,
            timeout=self._timeout_s,
        )
        pending = self._stream(call)
        while pending is not None:
            pending = self._stream(self._confirm(pending))

    def _confirm(self, action: conversation_pb2.PendingAction) -> Iterable[Any]:
        try:
            answer = self._read_line("Confirm? [y/N] ")
        except EOFError:
            answer = ""  # no answer declines: the write action must be explicit
        confirmed = answer.strip().lower() in {"y", "yes"}
        decision = (
            conversation_pb2.DECISION_CONFIRM if confirmed else conversation_pb2.DECISION_DECLINE
        )
        result: Iterable[Any] = self._stub.ConfirmAction(
            gateway_service_pb2.ConfirmActionRequest(
                session_id=self.session_id,
                user_id=self.user_id,
                action_id=action.action_id,
                decision=decision,
                idempotency_key=secrets.token_hex(16),
            ),
            metadata=self._metadata,
            timeout=self._timeout_s,
        )
        return result

    def repl(self) -> int:
        """Read lines until ``/quit`` or EOF (exit 0) or Ctrl-C at the prompt (130)."""
        self._out.write(f"session {self.session_id}; type {QUIT} or Ctrl-D to leave\n")
        while True:
            try:
                line = self._read_line("you> ")
            except EOFError:
                self._out.write("\n")
                return 0
            except KeyboardInterrupt:
                self._out.write("\n")
                return 130
            message = line.strip()
            if not message:
                continue
            if message == QUIT:
                return 0
            try:
                self.send(message)
            except KeyboardInterrupt:
                # Ctrl-C at the confirmation prompt: nothing was decided, keep chatting.
                self._err.write("\n(cancelled)\n")
            except grpc.RpcError as error:
                self._err.write(rpc_error_line(error) + "\n")
                self._err.flush()


def run(
    options: ChatOptions,
    *,
    read_line: Callable[[str], str] = input,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The whole chat; the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        gateway = resolve_gateway(options)
        api_key = resolve_api_key(options)
    except (ChatSetupError, discovery.DiscoveryError) as exc:
        err.write(f"error: {exc}\n")
        return 1
    with grpc.insecure_channel(gateway) as channel:
        chat = Chat(
            gateway_service_pb2_grpc.GatewayServiceStub(channel),
            api_key,
            out=out,
            err=err,
            read_line=read_line,
            timeout_s=options.timeout_s,
        )
        try:
            chat.pick_customer(options.customer)
            chat.show_context()
        except grpc.RpcError as error:
            err.write(f"{rpc_error_line(error)} (gateway {gateway})\n")
            return 1
        except ChatSetupError as exc:
            err.write(f"error: {exc}\n")
            return 1
        return chat.repl()
