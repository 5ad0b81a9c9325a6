"""``waybill router add-exemplars``: add a tenant's labelled exemplars to the router.

Exit statuses: 0 added (or all already known), 1 the call failed (router
unreachable, or it refused the exemplars: a conflict, a limit), 2 usage or
input error (bad file, no key), 3 not authorised (UNAUTHENTICATED or
PERMISSION_DENIED).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import TextIO, cast

import grpc
from waybill.common.v1.intent_pb2 import Intent
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from cli import discovery
from cli.arguments import positive_float
from router import admin_keys
from router import exemplars as exemplar_files
from runtime.errors import error_info_of

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_AUTHORISED = 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``router`` and its ``add-exemplars`` subcommand."""
    router = sub.add_parser(
        "router", help="administer the router", description="Administer the router."
    )
    commands = router.add_subparsers(dest="router_command", metavar="COMMAND", required=True)
    add = commands.add_parser(
        "add-exemplars",
        help="add a tenant's labelled exemplars",
        description='Send the exemplars of FILE (JSONL rows of {"text", "intent"}, intent an'
        " enum name such as INTENT_TRACKING_STATUS) to the router for TENANT only. Exit 0"
        " added, 1 the call failed or was refused, 2 usage or input error, 3 not authorised.",
    )
    add.add_argument("file", type=Path, metavar="FILE.jsonl", help="exemplars to add")
    add.add_argument("--tenant", required=True, help="tenant whose classifier gets them")
    add.add_argument(
        "--key-file",
        type=Path,
        default=None,
        help="file with the tenant's admin key: a bare key, or a keys file of"
        f' {{"keys": [{{"tenant_id", "api_key"}}]}} (default: RUN_DIR/'
        f"{discovery.ROUTER_ADMIN_KEYS_FILE})",
    )
    add.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".waybill"),
        help="run directory of `waybill up` (default: .waybill)",
    )
    add.add_argument("--router", metavar="HOST:PORT", help="router address override")
    add.add_argument(
        "--request-id",
        help="idempotency key (default: derived from tenant and file, so a rerun adds nothing"
        " twice)",
    )
    add.add_argument("--timeout", type=positive_float, default=60.0, help="seconds for the call")


def request_id_for(tenant: str, content: bytes) -> str:
    """The default request id: the same tenant and file give the same id."""
    return "cli-" + hashlib.sha256(tenant.encode() + b"\0" + content).hexdigest()[:40]


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run ``waybill router add-exemplars``; the exit status."""
    try:
        items = exemplar_files.load(args.file)
        content = args.file.read_bytes()
    except (exemplar_files.ExemplarFileError, OSError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    key_file = args.key_file or args.run_dir / discovery.ROUTER_ADMIN_KEYS_FILE
    try:
        key = admin_keys.key_in(key_file, args.tenant)
    except (KeyError, OSError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) else exc.strerror or exc
        err.write(f"error: no admin key: {reason}\n")
        return EXIT_USAGE
    address = args.router or discovery.load(args.run_dir).services["router"].address
    request = pb.AddExemplarsRequest(
        tenant_id=args.tenant,
        request_id=args.request_id or request_id_for(args.tenant, content),
        exemplars=[pb.Exemplar(text=e.text, intent=cast(Intent, e.label)) for e in items],
    )
    with grpc.insecure_channel(address) as channel:
        try:
            reply = pb_grpc.RouterServiceStub(channel).AddExemplars(
                request,
                metadata=((admin_keys.AUTHORIZATION, f"Bearer {key}"),),
                timeout=args.timeout,
            )
        except grpc.RpcError as exc:
            code = cast(grpc.Call, exc).code()
            info = error_info_of(cast(grpc.aio.AioRpcError, exc))
            reason = f" ({info.reason})" if info is not None else ""
            err.write(f"error: {code.name}{reason}: {cast(grpc.Call, exc).details()}\n")
            if code in {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}:
                return EXIT_NOT_AUTHORISED
            return EXIT_FAILURE
    out.write(
        f"tenant {args.tenant}: {len(items)} sent, version {reply.classifier_version},"
        f" {reply.exemplar_count} exemplars\n"
    )
    return EXIT_OK
