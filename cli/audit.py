"""``waybill audit verify|export|prune|erase``: the turn audit log on this machine.

- ``verify [DIR]``: check the hash chain; the first altered, removed or reordered record is
  named by file, line and seq. A torn last line (a crash during a write) is reported apart
  and does not fail verification: the writer cuts it when it next opens the log.
- ``export [DIR] --out FILE``: verify, then write the records as Parquet (zstd) for DuckDB.
- ``prune [DIR] --older-than DAYS``: delete whole day segments older than DAYS days (never
  the newest), anchoring where the kept chain starts so it still verifies.
- ``erase --user ID --tenant T``: delete the customer's pseudonym key; their records stay,
  verifiable, and can no longer be linked to them.

DIR defaults to ``$WAYBILL_DATA_DIR/audit`` (``.waybill/data/audit``), the key store to
``$WAYBILL_DATA_DIR/audit-keys/keys.sqlite3``. With ``--pg-dsn`` (or
``$WAYBILL_AUDIT_PG_DSN``), ``verify``, ``prune`` and ``erase`` work on the fleet's chain and
key store in PostgreSQL instead (``export`` reads directories only).

Exit statuses: 0 done (the chain is intact), 1 verification failed (or export/prune refused
because of it), 2 usage error or unreadable input (no such directory, unreadable anchors).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runtime.audit.paths import default_keys_file, default_log_dir
from runtime.progress import Progress

if TYPE_CHECKING:
    from runtime.audit.verify import Finding, VerifyResult

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
PG_DSN_ENV = "WAYBILL_AUDIT_PG_DSN"


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``audit`` and its subcommands."""
    log_dir = argparse.ArgumentParser(add_help=False)
    log_dir.add_argument(
        "directory",
        type=Path,
        nargs="?",
        metavar="DIR",
        help="the audit log directory (default: $WAYBILL_DATA_DIR/audit, .waybill/data/audit)",
    )
    log_dir.add_argument(
        "--no-progress", action="store_true", help="no progress lines on standard error"
    )
    postgres = argparse.ArgumentParser(add_help=False)
    postgres.add_argument(
        "--pg-dsn",
        default=os.environ.get(PG_DSN_ENV) or None,
        metavar="DSN",
        help=f"the fleet's chain in PostgreSQL instead of a directory (default: ${PG_DSN_ENV})",
    )
    postgres.add_argument(
        "--pg-schema", default="public", metavar="NAME", help="with --pg-dsn (default: public)"
    )
    postgres.add_argument(
        "--chain", default="fleet", metavar="NAME", help="with --pg-dsn (default: fleet)"
    )
    audit = sub.add_parser(
        "audit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="verify, export, prune and erase in the turn audit log",
        description=__doc__,
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        parents=[log_dir, postgres],
        help="check the hash chain (exit 1 names the first bad record)",
        description="Check every kept record's hash, sequence and link, and the anchors."
        " Exit 0 intact, 1 altered/removed/reordered (named), 2 unreadable.",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    export = commands.add_parser(
        "export",
        parents=[log_dir],
        help="verify, then write the records as Parquet for DuckDB",
        description="Verify the log, then write its kept records to FILE as zstd Parquet"
        " (one row a record; tools and guardrail verdicts as lists of structs). Exit 1"
        " without writing if verification fails, unless --no-verify.",
    )
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="Parquet file")
    export.add_argument(
        "--no-verify", action="store_true", help="export even if the chain is broken"
    )
    prune = commands.add_parser(
        "prune",
        parents=[log_dir, postgres],
        help="delete day segments older than DAYS days (retention)",
        description="Delete whole UTC-day segments older than DAYS days (never the newest),"
        " recording them and the new base in retention.json so the kept chain verifies."
        " Exit 1 if the chain is broken where it would be cut.",
    )
    prune.add_argument(
        "--older-than", type=_days, required=True, metavar="DAYS", help="age in days"
    )
    prune.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    erase = commands.add_parser(
        "erase",
        parents=[postgres],
        help="erase a customer: delete their pseudonym key",
        description="Delete the pseudonym key of USER in TENANT: their audit records stay"
        " (the chain still verifies) and can no longer be linked to them.",
    )
    erase.add_argument("--user", required=True, metavar="ID", help="the customer's user id")
    erase.add_argument("--tenant", required=True, metavar="T", help="the customer's tenant")
    erase.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="the key store (default: $WAYBILL_DATA_DIR/audit-keys/keys.sqlite3)",
    )


@contextmanager
def _progress(args: argparse.Namespace, label: str, unit: str, err: TextIO) -> Iterator[Progress]:
    if args.no_progress:
        yield lambda done, total: None
        return
    from runtime.progress import bar

    with bar(label, unit=unit, out=err) as show:
        yield show


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run the subcommand; the exit status."""
    if args.audit_command == "erase":
        return _erase(args, out=out, err=err)
    if getattr(args, "pg_dsn", None):
        if args.directory is not None:
            print("audit: give DIR or --pg-dsn, not both", file=err)
            return EXIT_USAGE
        return _postgres(args, out=out, err=err)
    directory: Path = args.directory or default_log_dir()
    if not directory.is_dir():
        print(f"audit: {directory}: no such directory", file=err)
        return EXIT_USAGE
    if args.audit_command == "verify":
        return _verify(directory, args, out=out, err=err)
    if args.audit_command == "export":
        return _export(directory, args, out=out, err=err)
    return _prune(directory, args, out=out, err=err)


def _result_json(where: str, result: VerifyResult) -> dict[str, Any]:
    def finding(f: Finding | None) -> dict[str, Any] | None:
        if f is None:
            return None
        return {
            "kind": str(f.kind),
            "segment": f.segment,
            "line": f.line,
            "seq": f.seq,
            "detail": f.detail,
        }

    return {
        "log": where,
        "ok": result.ok,
        "records": result.records,
        "segments": result.segments,
        "base": result.base.as_json(),
        "last": result.last.as_json(),
        "problem": finding(result.problem),
        "torn": finding(result.torn),
    }


def _check(directory: Path, args: argparse.Namespace, err: TextIO) -> VerifyResult:
    from runtime.audit.verify import verify

    with _progress(args, "verify", "MiB", err) as show:
        return verify(directory, progress=show)


def _verify(directory: Path, args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from runtime.audit.verify import UnreadableLog

    try:
        result = _check(directory, args, err)
    except (UnreadableLog, OSError) as exc:
        print(f"audit verify: {exc}", file=err)
        return EXIT_USAGE
    if args.json:
        json.dump(_result_json(str(directory), result), out, indent=2)
        out.write("\n")
    else:
        span = f"seq {result.base.seq + 1}..{result.last.seq}" if result.records else "no records"
        state = "intact" if result.ok else "BROKEN"
        print(
            f"{directory}: {result.records:,} records in {result.segments} segments"
            f" ({span}): {state}",
            file=out,
        )
        if result.problem is not None:
            print(f"  {result.problem}", file=out)
    if result.torn is not None:
        print(f"audit verify: warning: {result.torn}", file=err)
    return EXIT_OK if result.ok else EXIT_FAILED


def _export(directory: Path, args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    import duckdb

    from runtime.audit.export import export_parquet
    from runtime.audit.verify import UnreadableLog

    torn = False
    try:
        if not args.no_verify:
            result = _check(directory, args, err)
            if not result.ok:
                print(f"audit export: verification failed: {result.problem}", file=err)
                print("audit export: nothing written (--no-verify exports anyway)", file=err)
                return EXIT_FAILED
            torn = result.torn is not None
        with _progress(args, "export", "segments", err) as show:
            count = export_parquet(
                directory, args.out, skip_torn_tail=torn or args.no_verify, progress=show
            )
    except (UnreadableLog, OSError, duckdb.Error) as exc:
        print(f"audit export: {exc}", file=err)
        return EXIT_USAGE
    print(f"exported {count:,} records to {args.out}", file=out)
    return EXIT_OK


def _prune(directory: Path, args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from runtime.audit.retention import PruneError, prune
    from runtime.audit.segments import AnchorError

    try:
        result = prune(directory, older_than_days=args.older_than, dry_run=args.dry_run)
    except PruneError as exc:
        print(f"audit prune: {exc}", file=err)
        return EXIT_FAILED
    except (AnchorError, OSError) as exc:
        print(f"audit prune: {exc}", file=err)
        return EXIT_USAGE
    verb = "would remove" if args.dry_run else "removed"
    if not result.removed:
        print(f"nothing older than {result.cutoff.isoformat()} to remove", file=out)
    for name in result.removed:
        print(f"{verb} {name}", file=out)
    if result.removed:
        print(f"the kept chain starts after seq {result.base.seq}", file=out)
    return EXIT_OK


def _postgres(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    import psycopg

    from runtime.audit.pg_log import prune_postgres, verify_postgres

    where = f"postgres {args.pg_schema} chain {args.chain}"
    try:
        if args.audit_command == "verify":
            with _progress(args, "verify", "records", err) as show:
                result = verify_postgres(
                    args.pg_dsn, schema=args.pg_schema, chain=args.chain, progress=show
                )
        else:
            pruned = prune_postgres(
                args.pg_dsn,
                schema=args.pg_schema,
                chain=args.chain,
                older_than_days=args.older_than,
            )
    except psycopg.Error as exc:
        print(f"audit {args.audit_command}: {exc}", file=err)
        return EXIT_USAGE
    if args.audit_command == "prune":
        print(
            f"{where}: removed {pruned.removed:,} records; the kept chain starts after"
            f" seq {pruned.base.seq}",
            file=out,
        )
        return EXIT_OK
    if args.json:
        json.dump(_result_json(where, result), out, indent=2)
        out.write("\n")
    else:
        state = "intact" if result.ok else "BROKEN"
        print(f"{where}: {result.records:,} records: {state}", file=out)
        if result.problem is not None:
            print(f"  {result.problem}", file=out)
    return EXIT_OK if result.ok else EXIT_FAILED


def _erase(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from runtime.audit.pseudonyms import PostgresPseudonymKeys, PseudonymKeys

    if args.pg_dsn:
        import psycopg

        try:
            fleet_keys = PostgresPseudonymKeys(args.pg_dsn, schema=args.pg_schema)
            try:
                erased = fleet_keys.erase(args.tenant, args.user)
            finally:
                fleet_keys.close()
        except psycopg.Error as exc:
            print(f"audit erase: {exc}", file=err)
            return EXIT_USAGE
        return _erased(erased, args.tenant, out)
    keys_file: Path = args.keys or default_keys_file()
    if not keys_file.is_file():
        print(f"audit erase: {keys_file}: no key store", file=err)
        return EXIT_USAGE
    with PseudonymKeys(keys_file) as keys:
        erased = keys.erase(args.tenant, args.user)
    return _erased(erased, args.tenant, out)


def _erased(erased: bool, tenant: str, out: TextIO) -> int:
    if erased:
        print(
            f"erased: the audit records of that user in {tenant} can no longer be linked to them",
            file=out,
        )
    else:
        print(f"no key for that user in {tenant} (never seen, or already erased)", file=out)
    return EXIT_OK
