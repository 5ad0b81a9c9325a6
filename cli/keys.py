"""``waybill keys create|list|rotate|revoke``: the gateway's API keys.

The store (``RUN_DIR/api_keys.json``, or ``--store``; the file the gateway reads
as ``WAYBILL_API_KEYS_FILE``) holds digests only. ``create`` and ``rotate``
print the new key once, on stdout; it cannot be shown again. ``list`` never
shows a secret. Every gateway replica acts on a change within its refresh
interval (``WAYBILL_KEYS_REFRESH_S``, 2 s by default); nothing restarts.

Exit statuses: 0 done, 1 refused (no such key, already revoked, a store that
cannot be read), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from cli import discovery
from cli.arguments import non_negative_float, positive_float
from gateway.key_store import IssuedKey, KeyRecord, KeyStore, KeyStoreError
from runtime.principal import KEY_ROLES

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_GRACE_S = 86_400.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``keys`` and its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--run-dir", type=Path, default=Path(".waybill"), help="run directory (default: .waybill)"
    )
    common.add_argument(
        "--store",
        type=Path,
        default=None,
        help=f"the key store (default: RUN_DIR/{discovery.API_KEYS_FILE})",
    )
    keys = sub.add_parser(
        "keys",
        help="the gateway's API keys: create, list, rotate, revoke",
        description="Manage the API keys the gateway accepts. The store keeps only"
        " SHA-256 digests; a new key is printed once. Gateways act on changes within"
        " WAYBILL_KEYS_REFRESH_S (2 s). Exit 0 done, 1 refused, 2 usage error.",
    )
    commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    create = commands.add_parser(
        "create",
        parents=[common],
        help="issue a key (printed once)",
        description="Issue a key for TENANT and print it once on stdout.",
    )
    create.add_argument("--tenant", required=True, help="tenant the key acts for")
    create.add_argument("--team", default="support", help="team charged (default: support)")
    create.add_argument(
        "--role", choices=sorted(KEY_ROLES), default="service", help="default: service"
    )
    create.add_argument("--name", default="", help="who holds it (shown by list)")
    create.add_argument(
        "--expires-in", type=positive_float, metavar="SECONDS", help="default: never"
    )
    create.add_argument("--json", action="store_true", help="print the key and its record as JSON")
    listing = commands.add_parser(
        "list",
        parents=[common],
        help="keys and their state (never secrets)",
        description="List the keys of the store: id, tenant, team, role, state, times.",
    )
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="print JSON")
    rotate = commands.add_parser(
        "rotate",
        parents=[common],
        help="issue a replacement; the old key works until the grace period ends",
        description="Issue a key in place of KEY_ID (printed once). Both work until the"
        " grace period ends; then only the new one.",
    )
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument(
        "--grace",
        type=non_negative_float,
        default=DEFAULT_GRACE_S,
        metavar="SECONDS",
        help=f"how long the old key keeps working (default: {DEFAULT_GRACE_S:g})",
    )
    rotate.add_argument("--json", action="store_true", help="print the key and its record as JSON")
    revoke = commands.add_parser(
        "revoke",
        parents=[common],
        help="stop a key now",
        description="Revoke KEY_ID: every gateway refuses it within its refresh interval.",
    )
    revoke.add_argument("key_id", metavar="KEY_ID")


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _public(record: KeyRecord, now: float) -> dict[str, object]:
    return {
        "key_id": record.key_id,
        "tenant_id": record.tenant_id,
        "team_id": record.team_id,
        "role": record.role,
        "name": record.name,
        "state": record.state(now),
        "created_at": _time(record.created_at),
        "expires_at": None if record.expires_at is None else _time(record.expires_at),
        "revoked_at": None if record.revoked_at is None else _time(record.revoked_at),
        "replaced_by": record.replaced_by,
    }


def _print_issued(issued: IssuedKey, *, as_json: bool, out: TextIO, err: TextIO) -> None:
    if as_json:
        payload = {"api_key": issued.api_key, **_public(issued.record, time.time())}
        out.write(json.dumps(payload, indent=2) + "\n")
    else:
        out.write(issued.api_key + "\n")
    err.write(
        f"key {issued.record.key_id} for {issued.record.tenant_id}"
        f" ({issued.record.role}, team {issued.record.team_id}); shown once: store it now\n"
    )


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run ``waybill keys ...``; the exit status."""
    store = KeyStore(args.store or args.run_dir / discovery.API_KEYS_FILE)
    try:
        if args.keys_command == "create":
            issued = store.create(
                tenant_id=args.tenant,
                team_id=args.team,
                role=args.role,
                name=args.name,
                expires_in_s=args.expires_in,
            )
            _print_issued(issued, as_json=args.json, out=out, err=err)
        elif args.keys_command == "rotate":
            issued = store.rotate(args.key_id, grace_s=args.grace)
            _print_issued(issued, as_json=args.json, out=out, err=err)
            err.write(f"key {args.key_id} keeps working for {args.grace:g} s\n")
        elif args.keys_command == "revoke":
            record = store.revoke(args.key_id)
            out.write(f"revoked {record.key_id} ({record.tenant_id})\n")
        else:
            _list(store, tenant=args.tenant, as_json=args.json, out=out)
    except (KeyStoreError, OSError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_FAILURE
    return EXIT_OK


def _list(store: KeyStore, *, tenant: str | None, as_json: bool, out: TextIO) -> None:
    now = time.time()
    rows = [_public(r, now) for r in store.records() if tenant is None or r.tenant_id == tenant]
    if as_json:
        out.write(json.dumps({"keys": rows}, indent=2) + "\n")
        return
    columns = ("key_id", "tenant_id", "team_id", "role", "state", "created_at", "expires_at")
    table = [[str(c).upper() for c in columns]]
    table += [[str(row[c] if row[c] is not None else "-") for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        out.write("\n")
