"""``waybill``: argument parsing and dispatch to the subcommands.

Exit statuses: 0 success, 1 failure (a service not SERVING, a start that
failed, an unreachable gateway), 2 usage error (argparse's own), 130 Ctrl-C
at the chat prompt; ``router add-exemplars`` also 3 (not authorised), ``kb ingest``
3 (documents rejected); ``tickets`` 1 also for a refused claim or resolution; ``costs``
1 for anomalies found with ``--fail-on-anomaly``; ``audit`` 1 when the chain is broken;
``report weekly`` 1 for anomalies found with ``--fail-on-anomaly``;
``keys`` 1 for a refused change (no such key, already revoked).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cli import (
    audit,
    costs,
    eval_guardrails,
    eval_retrieval,
    eval_router,
    kb,
    keys,
    report,
    router_admin,
    shadow_report,
    tickets,
)
from cli.arguments import positive_float, positive_int
from runtime import mesh

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _base_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    # One port per gRPC service, then one for the REST edge.
    highest = 65535 - len(mesh.SERVICES)
    if not 1024 <= value <= highest:
        raise argparse.ArgumentTypeError(f"{value} must be in 1024..{highest}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    run_dir = argparse.ArgumentParser(add_help=False)
    run_dir.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".waybill"),
        help="directory of credentials, logs, data and mesh.json (default: .waybill)",
    )
    parser = argparse.ArgumentParser(
        prog="waybill", description="Run, probe and talk to the Waybill service mesh."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser(
        "up",
        parents=[run_dir],
        help="start every service and wait; Ctrl-C stops them",
        description="Start every service in dependency order, each SERVING before the next,"
        " then supervise them (a service that exits is restarted with backoff) until"
        " Ctrl-C or SIGTERM, and stop them all.",
    )
    up.add_argument(
        "--base-port",
        type=_base_port,
        default=None,
        help="service i of the mesh table listens on BASE+i (default: the table's ports)",
    )
    up.add_argument(
        "--timeout", type=positive_float, default=60.0, help="seconds for the whole start"
    )
    up.add_argument(
        "--no-edge",
        action="store_true",
        help="do not start the REST edge and chat page (default: start it, on"
        f" {mesh.EDGE.address()} or BASE+{len(mesh.SERVICES)})",
    )
    up.add_argument(
        "--no-restart",
        action="store_true",
        help="do not restart a service that exits; stop the whole mesh instead (exit 1)."
        " Default: restart it with exponential backoff (0.1 s doubling to 5 s)",
    )
    up.add_argument(
        "--triton",
        action="store_true",
        help="also start the CPU test Triton server (nvidia-pytriton) at the head of the"
        " tracking chain (needs `make up-triton` once for its environment)",
    )

    health = sub.add_parser(
        "health",
        parents=[run_dir],
        help="health of every service (exit 0 only if all SERVING)",
        description="Check grpc.health.v1 of every process and each gRPC service it serves.",
    )
    health.add_argument("--timeout", type=positive_float, default=3.0, help="seconds per process")
    health.add_argument(
        "--watch",
        type=positive_float,
        nargs="?",
        const=2.0,
        metavar="SECONDS",
        help="check again every SECONDS (2) until Ctrl-C: redrawn on a terminal, only the"
        " changes when piped; the exit status is the last check's",
    )
    health.add_argument(
        "--count", type=positive_int, help="with --watch: stop after this many checks"
    )

    services = sub.add_parser(
        "services",
        parents=[run_dir],
        help="services and methods of every process, through reflection",
        description="List what each process serves, through gRPC server reflection.",
    )
    services.add_argument("--json", action="store_true", help="print JSON")
    services.add_argument("--timeout", type=positive_float, default=3.0, help="seconds per process")

    chat = sub.add_parser(
        "chat",
        parents=[run_dir],
        help="chat with the gateway as one customer",
        description="Pick a customer, show their active orders, then send each line as a"
        " Converse turn. /quit or Ctrl-D leaves.",
    )
    chat.add_argument("--gateway", metavar="HOST:PORT", help="gateway address override")
    chat.add_argument(
        "--api-key", help="API key (default: $WAYBILL_API_KEY, else the run's credentials)"
    )
    chat.add_argument("--tenant", default="acme-retail", help="tenant whose key is used")
    chat.add_argument("--customer", metavar="USER_ID", help="default: the first customer listed")
    chat.add_argument(
        "--timeout", type=positive_float, default=120.0, help="seconds per streamed turn"
    )
    eval_router.add_parser(sub)
    eval_guardrails.add_parser(sub)
    eval_retrieval.add_parser(sub)
    router_admin.add_parser(sub)
    kb.add_parser(sub)
    tickets.add_parser(sub)
    keys.add_parser(sub)
    shadow_report.add_parser(sub)
    costs.add_parser(sub)
    audit.add_parser(sub)
    report.add_parser(sub)
    return parser


def _up(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from cli import up
    from cli.launcher import Mesh, RestartPolicy

    triton = None
    env: dict[str, str] = {}
    if args.triton:
        from cli.triton import TritonServer, TritonStartError, chain_env

        triton = TritonServer(run_dir=args.run_dir)
        out.write(f"starting Triton (CPU test model) on {triton.address}\n")
        try:
            triton.start()
        except TritonStartError as exc:
            err.write(f"error: {exc}\n")
            return EXIT_FAILURE
        env = chain_env(triton)
    try:
        return up.run(
            Mesh(
                run_dir=args.run_dir,
                base_port=args.base_port,
                edge=not args.no_edge,
                env=env,
                restart=None if args.no_restart else RestartPolicy(),
            ),
            timeout_s=args.timeout,
            out=out,
            err=err,
        )
    finally:
        if triton is not None:
            triton.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    # Imports per command: `waybill health` need not load the chat client's protos.
    if args.command == "up":
        return _up(args, out=out, err=err)
    if args.command == "health":
        from cli import health

        if args.watch is not None:
            return health.watch(
                args.run_dir,
                timeout_s=args.timeout,
                interval_s=args.watch,
                count=args.count,
                out=out,
                err=err,
            )
        if args.count is not None:
            parser.error("--count goes with --watch")
        return health.run(args.run_dir, timeout_s=args.timeout, out=out, err=err)
    if args.command == "services":
        from cli import services

        return services.run(
            args.run_dir, timeout_s=args.timeout, as_json=args.json, out=out, err=err
        )
    if args.command == "chat":
        from cli import chat

        if sys.stdin.isatty():
            import readline  # noqa: F401  (line editing and history for input())

        options = chat.ChatOptions(
            run_dir=args.run_dir,
            gateway=args.gateway,
            api_key=args.api_key,
            tenant=args.tenant,
            customer=args.customer,
            timeout_s=args.timeout,
        )
        return chat.run(options)
    if args.command == "eval-router":
        return eval_router.run(args, out=out, err=err)
    if args.command == "eval-guardrails":
        return eval_guardrails.run(args, out=out, err=err)
    if args.command == "router":
        return router_admin.run(args, out=out, err=err)
    if args.command == "kb":
        return kb.run(args, out=out, err=err)
    if args.command == "tickets":
        return tickets.run(args, out=out, err=err)
    if args.command == "keys":
        return keys.run(args, out=out, err=err)
    if args.command == "shadow-report":
        return shadow_report.run(args, out=out, err=err)
    if args.command == "costs":
        return costs.run(args, out=out, err=err)
    if args.command == "audit":
        return audit.run(args, out=out, err=err)
    if args.command == "report":
        return report.run(args, out=out, err=err)
    if args.command == "eval-retrieval":
        return eval_retrieval.run(args, out=out, err=err)
    parser.print_help(err)
    return EXIT_USAGE
