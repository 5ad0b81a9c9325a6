"""Embed the shipped policy documents once, into the vector cache every knowledge base here
reads (a setup step, and a step of the image build).

Seeding a knowledge base then reads each window's vector from the cache instead of
running the model: a fresh embedded run or test mesh starts in a second, not a minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Fill the cache; exit 0 done or already there, 1 model or documents missing."""
    from embeddings import ModelMissingError
    from retrieval.documents import load_dir
    from retrieval.offline import OfflineModel
    from retrieval.settings import quantized_from_env, tenants_from_env
    from retrieval.store import KnowledgeBaseStore
    from runtime import paths
    from runtime.progress import bar

    parser = argparse.ArgumentParser(
        prog="python -m retrieval.prepare",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="exit codes: 0 done or already there, 1 model or documents missing, 2 usage",
    )
    parser.add_argument("--kb", type=Path, default=paths.data_dir("kb"), help="documents folder")
    parser.add_argument("--cache", type=Path, default=None, help="vector cache directory")
    args = parser.parse_args(argv)
    loaded = load_dir(args.kb, tenants=tenants_from_env())
    if loaded.rejected or not loaded.documents:
        for rejected in loaded.rejected:
            print(f"rejected {rejected}", file=sys.stderr)
        print(f"retrieval.prepare: no usable policy documents under {args.kb}", file=sys.stderr)
        return 1
    try:
        model = OfflineModel.load(quantized=quantized_from_env(), cache_dir=args.cache)
    except ModelMissingError as exc:
        print(f"retrieval.prepare: {exc}", file=sys.stderr)
        return 1
    with (
        tempfile.TemporaryDirectory(prefix="waybill-kb-prepare-") as tmp,
        bar("embedding policy windows", unit="window") as progress,
    ):
        report = model.ingest(KnowledgeBaseStore(Path(tmp)), loaded.documents, progress=progress)
    print(
        f"policy vectors ready: {len(loaded.documents)} documents,"
        f" {report.chunks_indexed} chunks, {report.windows_embedded} windows embedded now"
        f" (cache: {model.cache.root})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
