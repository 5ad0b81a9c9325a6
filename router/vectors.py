"""Exemplar vectors built once and loaded by every process that serves the same set.

Embedding the training corpus takes the better part of a minute on two cores;
loading its vectors takes milliseconds. A vector file is named by a hash of the
model version and the normalised texts in order, so it can only be used by a
process that would have computed the same vectors, and is published atomically
(written beside, then renamed): a reader sees a whole file or none. The setup
step builds it (``python -m router.vectors``, with progress); in the fleet the
image build does, so every replica loads the one index its image carries.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from embeddings.encoder import Embedder
from embeddings.pooling import FloatArray
from embeddings.store import model_root
from router.normalize import for_embedding
from runtime import progress as runtime_progress

log = logging.getLogger("waybill.router")

INDEX_DIR_ENV = "WAYBILL_ROUTER_INDEX_DIR"
CHUNK = 256
"""Texts embedded between two progress reports."""
KEEP = 4
"""Vector files kept per directory (older ones are removed on publish)."""

Progress = Callable[[int, int], None]


def default_dir() -> Path:
    """``$WAYBILL_ROUTER_INDEX_DIR``, else ``router-index`` beside the model directory."""
    configured = os.environ.get(INDEX_DIR_ENV)
    return Path(configured) if configured else model_root().parent / "router-index"


def key(model_version: str, texts: Sequence[str]) -> str:
    """What the vectors depend on: the model export and variant, and the texts in order."""
    h = hashlib.sha256(model_version.encode())
    for text in texts:
        h.update(b"\x00")
        h.update(for_embedding(text).encode())
    return h.hexdigest()[:20]


def embed_all(
    embedder: Embedder, texts: Sequence[str], *, progress: Progress | None = None
) -> FloatArray:
    """Vectors of ``texts`` as the index holds them, in chunks with progress."""
    normalised = [for_embedding(t) for t in texts]
    parts = []
    for start in range(0, len(normalised), CHUNK):
        parts.append(embedder.embed(normalised[start : start + CHUNK]))
        if progress is not None:
            progress(min(start + CHUNK, len(normalised)), len(normalised))
    return np.concatenate(parts) if parts else embedder.embed([])


def _read(path: Path, rows: int, dim: int) -> FloatArray | None:
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("unreadable exemplar vectors; rebuilding", extra={"error": str(exc)})
        return None
    if vectors.shape != (rows, dim) or vectors.dtype != np.float32:
        log.warning("exemplar vectors of the wrong shape; rebuilding")
        return None
    return np.asarray(vectors)


def publish(directory: Path, name: str, vectors: FloatArray) -> Path:
    """Write ``vectors`` as ``directory/name.npy`` atomically; prune old files."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.npy"
    tmp = directory / f".{name}.{os.getpid()}.tmp.npy"
    with tmp.open("wb") as fh:
        np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    old = sorted(directory.glob("*.npy"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in old[KEEP:]:
        stale.unlink(missing_ok=True)
    return path


def vectors_for(
    embedder: Embedder,
    texts: Sequence[str],
    directory: Path | None,
    *,
    progress: Progress | None = None,
) -> FloatArray:
    """The vectors of ``texts``: from ``directory`` when built before, else embedded
    (and published there when ``directory`` is writable)."""
    if directory is None:
        return embed_all(embedder, texts, progress=progress)
    name = key(embedder.version, texts)
    path = directory / f"{name}.npy"
    if path.exists():
        found = _read(path, len(texts), embedder.dim)
        if found is not None:
            return found
    started = time.perf_counter()
    vectors = embed_all(embedder, texts, progress=progress)
    try:
        publish(directory, name, vectors)
    except OSError as exc:  # a read-only image: serve what was computed
        log.warning("could not store exemplar vectors", extra={"error": exc.strerror or str(exc)})
    log.info(
        "exemplar vectors built",
        extra={"rows": len(texts), "seconds": round(time.perf_counter() - started, 1)},
    )
    return vectors


def log_progress(label: str, every_s: float = 5.0) -> Progress:
    """A progress callback that logs at most every ``every_s`` seconds (service logs)."""
    return runtime_progress.log_progress(log, label, every_s)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the serving index's vectors (setup step and image build)."""
    from embeddings import EmbedderOptions, ModelMissingError
    from router.offline import progress_printer
    from router.server import base_exemplars
    from router.settings import RouterSettings

    parser = argparse.ArgumentParser(
        prog="python -m router.vectors",
        description="Embed the router's exemplars once and store the vectors where every"
        " router process loads them (a no-op when they are there already).",
        epilog="exit codes: 0 built or already there, 1 model or data missing, 2 usage.",
    )
    parser.add_argument("--dir", type=Path, help=f"vector directory (default: ${INDEX_DIR_ENV})")
    args = parser.parse_args(argv)
    settings = RouterSettings.from_env()
    directory = args.dir or settings.index_dir or default_dir()
    try:
        items = base_exemplars(settings)
        embedder = Embedder.load(
            options=EmbedderOptions(intra_op_threads=2, max_batch=64, quantized=settings.quantized)
        )
    except (ModelMissingError, ValueError) as exc:
        print(f"router.vectors: {exc}", file=sys.stderr)
        return 1
    texts = [e.text for e in items]
    path = directory / f"{key(embedder.version, texts)}.npy"
    if path.exists() and _read(path, len(texts), embedder.dim) is not None:
        print(f"router vectors up to date: {path} ({len(texts)} exemplars)")
        return 0
    print(f"embedding {len(texts)} router exemplars (once per data or model change)")
    vectors_for(embedder, texts, directory, progress=progress_printer("embedded", sys.stdout))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
