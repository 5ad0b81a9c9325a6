"""Scenario ``retrieval``: Search latency on a large knowledge base, and re-ingest time.

1. The shipped policies are ingested into a fresh knowledge base; then one document is
   edited and re-ingested, ``--runs`` times (the edit alternates, so every run changes
   one chunk): the time to publish a version with one changed document.
2. A synthetic scale-up: ``--chunks`` chunks (default 100,000), all of one tenant (the
   worst case: one tenant's index holds them all), made of copies of the shipped
   chunks with their own ids and a copy marker in the text, and vectors of the
   original windows with a little noise. Built straight into a version (no model
   runs), with progress.
3. A real retrieval process (``python -m retrieval``, production interceptors) serves
   that version; ``--queries`` Search calls per run, one at a time, with the customer's
   region filter, each query text new (so the embedding cache never answers): p50 and
   p95 per run and their medians. The same queries in-process beside it: what the
   gRPC hop and the service add.
4. One changed document re-ingested into the large knowledge base.

The load generator runs on the same cores as the service: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from waybill.retrieval.v1 import retrieval_service_pb2 as pb
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from bench import stats
from bench.corpus import POLICY
from cli.arguments import positive_int
from cli.launcher import Mesh, MeshError
from cli.ports import free_base_port
from embeddings import Embedder, EmbedderOptions, ModelMissingError, locate
from embeddings.tokenizer import TokenCounter
from retrieval.documents import PolicyDocument, load_dir
from retrieval.filters import Filter
from retrieval.ingest import ingest
from retrieval.lexical import LexicalIndex
from retrieval.retriever import Retriever
from retrieval.search import Mode, SearchOptions
from retrieval.settings import default_vector_cache
from retrieval.store import CHUNKS, DOCUMENTS, LEXICAL, MANIFEST, VECTORS, KnowledgeBaseStore
from retrieval.vector_cache import VectorCache
from retrieval.version import StoredChunk, read_chunks, read_documents, read_vectors
from runtime import mesh, paths
from runtime.progress import bar
from runtime.tenants import DEMO_TENANTS

NAME = "retrieval"
DESCRIPTION = "retrieval Search p95 over gRPC at 100k chunks; re-ingest of one changed document"
TARGET_SEARCH_P95_MS = 20.0
TARGET_REINGEST_S = 2.0
TENANT = "acme-retail"
EXIT_OK = 0
EXIT_SETUP = 1
_EPILOG = """\
examples:
  python -m bench --scenario retrieval
  python -m bench --scenario retrieval --chunks 20000 --runs 5 --queries 200
  python -m bench --scenario retrieval --json-out artifacts/bench/retrieval.jsonl

exit codes: 0 completed, 1 model missing or retrieval did not start, 2 usage error.
"""


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the scenario."""
    parser = argparse.ArgumentParser(
        prog="python -m bench --scenario retrieval",
        description=DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=positive_int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--queries", type=positive_int, default=300, help="Search calls per run (default 300)"
    )
    parser.add_argument(
        "--chunks", type=positive_int, default=100_000, help="chunks of the scale-up"
    )
    parser.add_argument("--json-out", type=Path, help="append the final JSON line to this file")
    return parser


def _ms(samples: Sequence[float], pct: float) -> float:
    value = stats.percentile([s * 1000 for s in samples], pct)
    return round(value, 3) if value is not None else float("nan")


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def _edited(document: PolicyDocument, n: int) -> PolicyDocument:
    """The document with its last section's text changed (n alternates the wording)."""
    return replace(document, body=document.body.rstrip() + f"\n\nEdition note {n % 2}.\n")


def _reingest(
    store: KnowledgeBaseStore,
    embedder: Embedder,
    count: TokenCounter,
    document: PolicyDocument,
    runs: int,
) -> dict[str, Any]:
    seconds = []
    for run in range(runs):
        report = ingest(store, embedder, count, upsert=[_edited(document, run)])
        assert report.published, "an edit must publish a version"
        seconds.append(report.seconds)
        print(
            f"  re-ingest run {run + 1}: {report.seconds:.3f} s"
            f" ({report.chunks_indexed} chunk re-embedded, {report.chunks_unchanged} kept)",
            file=sys.stderr,
        )
    return {"runs_s": [round(s, 3) for s in seconds], "median_s": _median(seconds)}


def _scale_up(source: Path, store: KnowledgeBaseStore, chunks: int, embedder: Embedder) -> str:
    """A version of about ``chunks`` chunks of one tenant, from copies of ``source``'s
    documents (whole documents: the last copy may pass the count)."""
    base_docs = [d for d in read_documents(source) if d.tenant_id == TENANT]
    base = [s for s in read_chunks(source) if s.chunk.tenant_id == TENANT]
    vectors = read_vectors(source)
    rng = np.random.default_rng(7)
    copies = -(-chunks // len(base))
    out: list[StoredChunk] = []
    blocks = []
    documents = []
    row = 0
    by_doc: dict[str, list[StoredChunk]] = {}
    for stored in base:
        by_doc.setdefault(stored.chunk.doc_id, []).append(stored)
    with bar("building the scale-up", unit="chunk") as progress:
        for k in range(copies):
            for d in base_docs:
                if len(out) >= chunks:
                    break
                copy_id = f"{d.doc_id}-x{k:05d}"
                documents.append(replace(d, doc_id=copy_id))
                # Whole documents only, with their chunks' texts as the body says, so a
                # re-ingest finds every unchanged copy unchanged.
                for stored in by_doc.get(d.doc_id, []):
                    chunk = replace(
                        stored.chunk,
                        doc_id=copy_id,
                        chunk_id=stored.chunk.chunk_id.replace(d.doc_id, copy_id, 1),
                    )
                    start, end = stored.windows
                    noise = rng.normal(0, 0.03, (end - start, vectors.shape[1]))
                    noisy = vectors[start:end] + noise
                    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                    blocks.append(noisy.astype(np.float32))
                    out.append(StoredChunk(chunk, chunk.content_hash, (row, row + end - start)))
                    row += end - start
            progress(len(out), chunks)
        staged = store.staging()
        lexical = LexicalIndex.create(staged / LEXICAL)
        step = 10_000
        for start in range(0, len(out), step):
            lexical.update(remove=[], add=[s.chunk for s in out[start : start + step]])
            progress(min(start + step, len(out)), len(out))
    with (staged / VECTORS).open("wb") as fh:
        np.save(fh, np.concatenate(blocks), allow_pickle=False)
    with (staged / CHUNKS).open("w") as fh:
        fh.writelines(json.dumps(s.to_json()) + "\n" for s in out)
    with (staged / DOCUMENTS).open("w") as fh:
        fh.writelines(json.dumps(d.to_json()) + "\n" for d in documents)
    version = f"v00001-scale{len(out)}"
    manifest = {
        "version": version,
        "parent": None,
        "created_at": "",
        "embedder": embedder.version,
        "counts": {"documents": len(documents), "chunks": len(out), "windows": row},
        "tenants": {TENANT: {"documents": len(documents), "chunks": len(out)}},
    }
    (staged / MANIFEST).write_text(json.dumps(manifest))
    store.publish(staged, version)
    return version


def _queries(n: int, run: int) -> list[pb.SearchRequest]:
    """New texts every call (a run tag and a number), policy questions underneath."""
    return [
        pb.SearchRequest(
            tenant_id=TENANT,
            query=f"{POLICY[i % len(POLICY)]} (run {run} question {i})",
            filters=pb.SearchFilters(region="US-CA"),
            top_k=5,
        )
        for i in range(n)
    ]


async def _grpc(address: str, args: argparse.Namespace) -> dict[str, Any]:
    per_run = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RetrievalServiceStub(channel)
        for request in _queries(20, -1):  # warm-up
            await stub.Search(request, timeout=10)
        for run in range(args.runs):
            samples = []
            chunks = 0
            for request in _queries(args.queries, run):
                began = time.perf_counter()
                reply = await stub.Search(request, timeout=10)
                samples.append(time.perf_counter() - began)
                chunks = max(chunks, len(reply.chunks))
            per_run.append({"p50_ms": _ms(samples, 50), "p95_ms": _ms(samples, 95)})
            print(f"  gRPC Search run {run + 1}: {per_run[-1]}", file=sys.stderr)
    return {"runs": per_run, **{k: _median([r[k] for r in per_run]) for k in per_run[0]}}


def _inprocess(
    store: KnowledgeBaseStore, embedder: Embedder, args: argparse.Namespace
) -> dict[str, Any]:
    retriever = Retriever(store, embedder, options=SearchOptions(default_mode=Mode.HYBRID_RERANK))
    retriever.refresh()
    per_run = []
    where = Filter.of(region="US-CA")
    for run in range(args.runs):
        samples = []
        for request in _queries(args.queries, 100 + run):
            began = time.perf_counter()
            retriever.search(tenant_id=TENANT, text=request.query, where=where, mode=None, top_k=5)
            samples.append(time.perf_counter() - began)
        per_run.append({"p50_ms": _ms(samples, 50), "p95_ms": _ms(samples, 95)})
        print(f"  in-process run {run + 1}: {per_run[-1]}", file=sys.stderr)
    return {"runs": per_run, **{k: _median([r[k] for r in per_run]) for k in per_run[0]}}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every measurement; the figures."""
    files = locate()
    embedder = Embedder(files, EmbedderOptions(cache_size=0))
    count = TokenCounter(files.tokenizer)
    cache = VectorCache(default_vector_cache(), embedder.version)
    documents = load_dir(paths.data_dir("kb"), tenants=DEMO_TENANTS).documents
    shipped = KnowledgeBaseStore(work / "shipped")
    print("ingesting the shipped policies", file=sys.stderr)
    ingest(shipped, embedder, count, upsert=documents, cache=cache)
    source = shipped.path(shipped.current() or "")
    figures: dict[str, Any] = {}
    target = next(d for d in documents if d.doc_id == "acme-returns-general")
    figures["reingest_shipped"] = _reingest(shipped, embedder, count, target, args.runs)
    large = KnowledgeBaseStore(work / "large")
    _scale_up(source, large, args.chunks, embedder)
    figures["chunks"] = len(read_chunks(large.path(large.current() or "")))
    env = {
        "WAYBILL_KB_DIR": str(large.root),
        "WAYBILL_KB_SEED_DIR": "",
        "WAYBILL_ACCESS_LOG": "0",
        "WAYBILL_LOG_LEVEL": "WARNING",
    }
    service = Mesh(
        run_dir=work / "run",
        services=["retrieval"],
        base_port=free_base_port(len(mesh.SERVICES)),
        env=env,
    )
    started = time.perf_counter()
    service.start(timeout_s=300)
    figures["service_start_s"] = round(time.perf_counter() - started, 2)
    try:
        figures["grpc"] = asyncio.run(_grpc(service.addresses["retrieval"], args))
    finally:
        service.stop()
    figures["inprocess"] = _inprocess(large, embedder, args)
    large_doc = next(
        d for d in read_documents(large.path(large.current() or "")) if d.doc_id.endswith("-x00000")
    )
    print("re-ingesting one changed document into the scale-up", file=sys.stderr)
    figures["reingest_large"] = _reingest(large, embedder, count, large_doc, 1)
    return figures


def _report(figures: dict[str, Any]) -> str:
    grpc_ = figures["grpc"]
    local = figures["inprocess"]
    lines = [
        f"retrieval at {figures['chunks']:,} chunks of one tenant (hybrid + rerank, region filter)",
        f"  Search over gRPC     p50 {grpc_['p50_ms']:.2f} ms  p95 {grpc_['p95_ms']:.2f} ms"
        f"  (target p95 < {TARGET_SEARCH_P95_MS:.0f} ms; medians of {len(grpc_['runs'])} runs)",
        f"  same, in-process     p50 {local['p50_ms']:.2f} ms  p95 {local['p95_ms']:.2f} ms",
        "  re-ingest, one changed document:"
        f" shipped KB {figures['reingest_shipped']['median_s']:.3f} s"
        f" (target < {TARGET_REINGEST_S:.0f} s), {figures['chunks']:,}-chunk KB"
        f" {figures['reingest_large']['median_s']:.3f} s",
        f"  service start with the large version: {figures['service_start_s']:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """``python -m bench --scenario retrieval ...``."""
    args = build_parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="waybill-bench-retrieval-"))
    try:
        figures = run(args, work)
    except (ModelMissingError, MeshError) as exc:
        print(f"bench retrieval: {exc}", file=sys.stderr)
        return EXIT_SETUP
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(_report(figures))
    line = json.dumps({"scenario": NAME, **figures}, sort_keys=True)
    print(line)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        with args.json_out.open("a") as fh:
            fh.write(line + "\n")
    return EXIT_OK
