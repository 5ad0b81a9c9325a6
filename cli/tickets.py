"""``waybill tickets list|claim|resolve``: the agents' queue of hand-over tickets.

The gateway serves the queue (``ListTickets``, ``ClaimTicket``, ``ResolveTicket``) for the
tenant of the API key; an agent names themselves with ``--agent``. Exit statuses: 0 done,
1 the call failed (gateway unreachable, a ticket another agent has, one already resolved,
one that does not exist), 2 usage error (no key, a malformed id).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

import grpc
from google.protobuf import json_format
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from waybill.orders.v1 import orders_pb2

from cli import discovery, render
from cli.arguments import positive_float
from cli.chat import (
    DEFAULT_TENANT,
    ChatOptions,
    ChatSetupError,
    resolve_api_key,
    resolve_gateway,
    rpc_error_line,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
STATES = {
    "open": orders_pb2.TICKET_STATE_OPEN,
    "claimed": orders_pb2.TICKET_STATE_CLAIMED,
    "resolved": orders_pb2.TICKET_STATE_RESOLVED,
    "all": orders_pb2.TICKET_STATE_UNSPECIFIED,
}
"""--state choices -> TicketState values."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``tickets`` and its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--run-dir", type=Path, default=Path(".waybill"), help="run directory (default: .waybill)"
    )
    common.add_argument("--gateway", metavar="HOST:PORT", help="gateway address override")
    common.add_argument(
        "--api-key", help="API key (default: $WAYBILL_API_KEY, else the run's credentials)"
    )
    common.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant whose key is used")
    common.add_argument("--json", action="store_true", help="print the tickets as JSON")
    common.add_argument("--timeout", type=positive_float, default=10.0, help="seconds per call")
    tickets = sub.add_parser(
        "tickets",
        help="the agents' queue: list, claim and resolve hand-over tickets",
        description="The queue of conversations handed over to a person. Exit 0 done, 1 the"
        " call failed or was refused, 2 usage error.",
    )
    commands = tickets.add_subparsers(dest="tickets_command", metavar="COMMAND", required=True)
    listing = commands.add_parser(
        "list",
        parents=[common],
        help="tickets, most urgent first",
        description="List the tenant's tickets, most urgent (priority, then age) first.",
    )
    listing.add_argument(
        "--state", choices=sorted(STATES), default="open", help="which tickets (default: open)"
    )
    listing.add_argument("--limit", type=int, default=20, help="at most this many (1..100)")
    claim = commands.add_parser(
        "claim",
        parents=[common],
        help="take a ticket: the conversation is handed over to you",
        description="Claim TICKET as AGENT and print its summary; the assistant stops"
        " answering the conversation until the ticket is resolved.",
    )
    claim.add_argument("ticket_id", metavar="TICKET")
    claim.add_argument("--agent", required=True, help="your agent id, e.g. agent-ana")
    resolve = commands.add_parser(
        "resolve",
        parents=[common],
        help="close a ticket you claimed",
        description="Resolve TICKET (claimed by AGENT) with a note; the assistant answers"
        " the conversation again.",
    )
    resolve.add_argument("ticket_id", metavar="TICKET")
    resolve.add_argument("--agent", required=True, help="the agent who claimed it")
    resolve.add_argument("--note", required=True, help="what was done (no personal data)")


def _when(ticket: orders_pb2.EscalationTicket) -> str:
    return ticket.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M")


def _state(ticket: orders_pb2.EscalationTicket) -> str:
    return orders_pb2.TicketState.Name(ticket.state).removeprefix("TICKET_STATE_").lower()


def _rows(tickets: list[orders_pb2.EscalationTicket]) -> str:
    return render.table(
        ("TICKET", "PRIORITY", "QUEUE", "STATE", "AGENT", "OPENED", "CUSTOMER", "ORDER"),
        [
            (
                t.ticket_id,
                str(t.priority),
                t.queue,
                _state(t),
                t.agent_id or "-",
                _when(t),
                t.user_id,
                t.order_id or "-",
            )
            for t in tickets
        ],
    )


def _detail(ticket: orders_pb2.EscalationTicket) -> str:
    lines = [
        f"{ticket.ticket_id}  {_state(ticket)}"
        + (f" by {ticket.agent_id}" if ticket.agent_id else ""),
        f"queue {ticket.queue}, priority {ticket.priority}, opened {_when(ticket)}",
        f"customer {ticket.user_id}, session {ticket.session_id}"
        + (f", order {ticket.order_id}" if ticket.order_id else ""),
        "",
        ticket.summary,
    ]
    if ticket.resolution:
        lines += ["", f"resolution: {ticket.resolution}"]
    return "\n".join(lines)


def _dump(tickets: list[orders_pb2.EscalationTicket]) -> str:
    return json.dumps([json_format.MessageToDict(t) for t in tickets], indent=2)


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run ``tickets COMMAND``; the exit status."""
    options = ChatOptions(
        run_dir=args.run_dir, gateway=args.gateway, api_key=args.api_key, tenant=args.tenant
    )
    if args.tickets_command == "list" and not 1 <= args.limit <= 100:
        err.write("error: --limit must be in 1..100\n")
        return EXIT_USAGE
    try:
        target = resolve_gateway(options)
        metadata = (("x-api-key", resolve_api_key(options)),)
    except (ChatSetupError, discovery.DiscoveryError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GatewayServiceStub(channel)
        try:
            tickets = _call(stub, args, metadata)
        except grpc.RpcError as exc:
            err.write(rpc_error_line(exc) + "\n")
            code = exc.code()
            return EXIT_USAGE if code == grpc.StatusCode.INVALID_ARGUMENT else EXIT_FAILURE
    if args.json:
        out.write(_dump(tickets) + "\n")
    elif args.tickets_command == "list":
        out.write((_rows(tickets) if tickets else "no tickets") + "\n")
    else:
        out.write(_detail(tickets[0]) + "\n")
    return EXIT_OK


def _call(
    stub: pb_grpc.GatewayServiceStub, args: argparse.Namespace, metadata: tuple[tuple[str, str]]
) -> list[orders_pb2.EscalationTicket]:
    timeout = args.timeout
    if args.tickets_command == "list":
        found: list[orders_pb2.EscalationTicket] = []
        token = ""
        while len(found) < args.limit:
            page = stub.ListTickets(
                pb.ListTicketsRequest(
                    state=STATES[args.state],
                    page_size=min(100, args.limit - len(found)),
                    page_token=token,
                ),
                metadata=metadata,
                timeout=timeout,
            )
            found.extend(page.tickets)
            token = page.next_page_token
            if not token:
                break
        return found
    if args.tickets_command == "claim":
        claimed = stub.ClaimTicket(
            pb.ClaimTicketRequest(ticket_id=args.ticket_id, agent_id=args.agent),
            metadata=metadata,
            timeout=timeout,
        )
        return [claimed.ticket]
    resolved = stub.ResolveTicket(
        pb.ResolveTicketRequest(
            ticket_id=args.ticket_id, agent_id=args.agent, resolution=args.note
        ),
        metadata=metadata,
        timeout=timeout,
    )
    return [resolved.ticket]
