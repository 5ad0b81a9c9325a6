"""``waybill kb``: the policy knowledge base — ingest a folder, roll back, show versions.

Works on the knowledge base directory itself (``--kb-dir``, default
``$WAYBILL_KB_DIR`` or ``RUN_DIR/data/kb``); running retrieval processes pick
up a newly published version within a second.

Exit statuses: 0 done (also "nothing changed"), 1 failed (no model export,
an unusable directory, nothing to roll back to), 2 usage error, 3 documents
rejected (nothing was published).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from retrieval.store import KnowledgeBaseStore

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``kb`` and its subcommands."""
    kb = sub.add_parser(
        "kb",
        help="the policy knowledge base: ingest, rollback, status",
        description="Manage the policy knowledge base the retrieval service serves.",
        epilog="exit codes: 0 done, 1 failed, 2 usage error, 3 documents rejected",
    )
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--kb-dir",
        type=Path,
        default=None,
        help="knowledge base directory (default: $WAYBILL_KB_DIR, else RUN_DIR/data/kb)",
    )
    where.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".waybill"),
        help="run directory of `waybill up` (default: .waybill)",
    )
    commands = kb.add_subparsers(dest="kb_command", metavar="COMMAND", required=True)
    ingest = commands.add_parser(
        "ingest",
        parents=[where],
        help="ingest a folder of policy documents and publish a new version",
        description="Read every *.md under DIR (front matter + '## ' sections), check them"
        " all, and publish a new version in which DIR is the whole knowledge base of every"
        " client it has documents for. Only new and changed chunks are embedded. If any"
        " document is rejected, nothing is published (exit 3).",
    )
    ingest.add_argument("directory", type=Path, metavar="DIR", help="folder of policy documents")
    ingest.add_argument(
        "--keep-others",
        action="store_true",
        help="add and replace DIR's documents, but keep the client's documents DIR lacks",
    )
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    commands.add_parser(
        "rollback",
        parents=[where],
        help="serve the version the current one was built on",
        description="Point the knowledge base back at the version the current one was built"
        " on (kept on disk for this); running retrieval processes follow within a second.",
    )
    status = commands.add_parser(
        "status",
        parents=[where],
        help="the current version and the versions kept",
        description="Show the current version, its documents and chunks per client, and the"
        " versions kept for rollback.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")


def _kb_dir(args: argparse.Namespace) -> Path:
    if args.kb_dir is not None:
        return Path(args.kb_dir)
    configured = os.environ.get("WAYBILL_KB_DIR")
    return Path(configured) if configured else Path(args.run_dir) / "data" / "kb"


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run ``waybill kb ...``."""
    from retrieval.store import KnowledgeBaseStore, StoreError

    store = KnowledgeBaseStore(_kb_dir(args))
    try:
        if args.kb_command == "ingest":
            return _ingest(args, store, out=out, err=err)
        if args.kb_command == "rollback":
            with store.writing():
                before, after = store.rollback()
            out.write(f"rolled back: {before} -> {after}\n")
            return EXIT_OK
        return _status(store, as_json=args.json, out=out)
    except StoreError as exc:
        err.write(f"waybill kb: {exc}\n")
        return EXIT_FAILURE


def _ingest(
    args: argparse.Namespace, store: KnowledgeBaseStore, *, out: TextIO, err: TextIO
) -> int:
    from embeddings import ModelMissingError
    from retrieval.documents import load_dir
    from retrieval.offline import OfflineModel
    from retrieval.settings import quantized_from_env, tenants_from_env
    from runtime.progress import bar
    from runtime.settings import SettingsError

    directory: Path = args.directory
    if not directory.exists():
        err.write(f"waybill kb ingest: {directory} does not exist\n")
        return EXIT_USAGE
    try:
        tenants = tenants_from_env()
        quantized = quantized_from_env()
    except SettingsError as exc:
        err.write(f"waybill kb ingest: {exc}\n")
        return EXIT_USAGE
    loaded = load_dir(directory, tenants=tenants)
    if loaded.rejected:
        for rejected in loaded.rejected:
            err.write(f"rejected {rejected.source}: {rejected.reason} [{rejected.rule}]\n")
        err.write(f"{len(loaded.rejected)} document(s) rejected; nothing was published\n")
        return EXIT_REJECTED
    if not loaded.documents:
        err.write(f"waybill kb ingest: no policy documents (*.md) under {directory}\n")
        return EXIT_USAGE
    try:
        model = OfflineModel.load(quantized=quantized)
    except ModelMissingError as exc:
        err.write(f"waybill kb ingest: {exc}\n")
        return EXIT_FAILURE
    clients = sorted({d.tenant_id for d in loaded.documents})
    with bar("embedding changed chunks", unit="window", out=err) as progress:
        report = model.ingest(
            store,
            loaded.documents,
            replace_tenants=() if args.keep_others else clients,
            progress=progress,
        )
    if args.json:
        out.write(json.dumps(report.to_json(), sort_keys=True) + "\n")
    elif report.published:
        out.write(
            f"published {report.version} (built on {report.parent or 'nothing'}):"
            f" {len(loaded.documents)} documents of {', '.join(clients)};"
            f" chunks {report.chunks_indexed} new or changed, {report.chunks_unchanged}"
            f" unchanged, {report.chunks_removed} removed; {report.windows_embedded} windows"
            f" embedded in {report.seconds:.2f} s\n"
        )
    else:
        out.write(f"nothing changed: {report.version} stays current\n")
    if not args.json and (report.documents_quarantined or report.chunks_flagged):
        out.write(
            f"screened for injected instructions: {report.chunks_flagged} chunks left out;"
            f" quarantined: {', '.join(report.documents_quarantined) or 'none'}\n"
        )
    return EXIT_OK


def _status(store: KnowledgeBaseStore, *, as_json: bool, out: TextIO) -> int:
    current = store.current()
    versions = store.versions()
    if as_json:
        record = {
            "kb_dir": str(store.root),
            "current": current,
            "versions": [
                {
                    "version": v.version,
                    "parent": v.parent,
                    "created_at": v.created_at,
                    "counts": v.manifest.get("counts", {}),
                    "tenants": v.manifest.get("tenants", {}),
                }
                for v in versions
            ],
        }
        out.write(json.dumps(record, sort_keys=True) + "\n")
        return EXIT_OK
    if current is None:
        out.write(f"no version published in {store.root}\n")
        return EXIT_OK
    info = store.info(current)
    out.write(f"current {current} (built on {info.parent or 'nothing'}, {info.created_at})\n")
    for tenant, counts in sorted(info.manifest.get("tenants", {}).items()):
        out.write(f"  {tenant}: {counts['documents']} documents, {counts['chunks']} chunks\n")
    out.write("kept versions:\n")
    for v in versions:
        mark = "*" if v.version == current else " "
        counts = v.manifest.get("counts", {})
        out.write(
            f" {mark} {v.version}  {v.created_at}  {counts.get('documents', 0)} documents,"
            f" {counts.get('chunks', 0)} chunks\n"
        )
    return EXIT_OK
