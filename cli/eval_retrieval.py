"""``waybill eval-retrieval``: retrieval and grounded policy answers on a golden set.

Builds a knowledge base from the policy documents (in a temporary directory),
runs the golden questions of one portion through the policy worker's steps,
and prints recall@5 and MRR per retrieval mode (BM25, dense, hybrid, hybrid +
rerank), no-answer precision, the grounded-answer and correct-answer rates of
the composer's answers, per category; then one JSON line. Writes a report and
a bar chart under ``artifacts/retrieval/``.

Exit statuses: 0 done, 1 failed (no model export, unreadable data), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from runtime import paths

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_DATA = paths.data_dir("kb", "golden", "policy_golden.jsonl")
DEFAULT_KB = paths.data_dir("kb")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``eval-retrieval``."""
    parser = sub.add_parser(
        "eval-retrieval",
        help="retrieval and grounded policy answers on a golden set",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog="exit codes: 0 done, 1 failed, 2 usage error",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="golden set (JSONL)")
    parser.add_argument("--kb", type=Path, default=DEFAULT_KB, help="policy documents folder")
    parser.add_argument(
        "--portion",
        choices=("test", "dev", "all"),
        default="test",
        help="which half of the golden rows to score (default: test; tune on dev)",
    )
    parser.add_argument(
        "--fit-gate",
        action="store_true",
        help="fit the relevance gate on the DEV rows and use it (prints the value to set)",
    )
    parser.add_argument(
        "--max-false-rejection",
        type=float,
        default=0.02,
        help="share of answerable DEV questions the fitted gate may refuse (default 0.02)",
    )
    parser.add_argument(
        "--out", type=Path, default=paths.artifacts_dir("retrieval"), help="report folder"
    )


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Run the evaluation."""
    from embeddings import ModelMissingError
    from retrieval.documents import load_dir
    from retrieval.evaluation import CATEGORIES, figures, fit_gate, load_golden, run_rows
    from retrieval.offline import OfflineModel
    from retrieval.search import Mode
    from retrieval.settings import quantized_from_env, rerank_from_env, tenants_from_env
    from runtime.settings import SettingsError
    from workers.policy.settings import PolicySettings

    try:
        rows = load_golden(args.data)
        tenants = tenants_from_env()
        rerank = rerank_from_env()
        quantized = quantized_from_env()
        gate = PolicySettings.from_env().gate
    except (OSError, ValueError, SettingsError) as exc:
        err.write(f"waybill eval-retrieval: {exc}\n")
        return EXIT_USAGE if isinstance(exc, SettingsError) else EXIT_FAILURE
    loaded = load_dir(args.kb, tenants=tenants)
    if loaded.rejected:
        for rejected in loaded.rejected:
            err.write(f"rejected {rejected}\n")
        return EXIT_FAILURE
    try:
        model = OfflineModel.load(quantized=quantized)
    except ModelMissingError as exc:
        err.write(f"waybill eval-retrieval: {exc}\n")
        return EXIT_FAILURE
    pipeline = Mode.HYBRID_RERANK if rerank else Mode.HYBRID
    modes = list(Mode)
    with tempfile.TemporaryDirectory(prefix="waybill-eval-kb-") as tmp:
        retriever = _retriever(Path(tmp), loaded.documents, model, pipeline, err)
        if args.fit_gate:
            dev = [r for r in rows if r.portion == "dev"]
            fitted = run_rows(retriever, dev, modes=[pipeline], pipeline=pipeline, gate=gate)
            threshold = fit_gate(fitted, max_false_rejection=args.max_false_rejection)
            err.write(
                f"fitted on {len(dev)} DEV rows: WAYBILL_POLICY_MIN_DENSE={threshold:.2f}"
                f" (refuses at most {args.max_false_rejection:.0%} of answerable DEV rows)\n"
            )
            gate = type(gate)(min_dense=threshold, code_match=gate.code_match)
        chosen = [r for r in rows if args.portion in ("all", r.portion)]
        outcomes = run_rows(retriever, chosen, modes=modes, pipeline=pipeline, gate=gate)
    total = figures(outcomes, modes)
    by_category = {
        c: figures([o for o in outcomes if o.row.category == c], modes) for c in CATEGORIES
    }
    _print(
        total,
        by_category=by_category,
        modes=modes,
        pipeline=pipeline.value,
        gate=gate,
        portion=args.portion,
        out=out,
    )
    _write_report(args, outcomes, total, by_category, pipeline, gate, model.embedder.version, err)
    line = {
        "portion": args.portion,
        "rows": len(outcomes),
        "pipeline": pipeline.value,
        "recall_at_5": total.recall_at_5[pipeline.value],
        "recall_at_5_exact_code": by_category["exact_code"].recall_at_5[pipeline.value],
        "mrr": total.mrr[pipeline.value],
        "no_answer_precision": total.no_answer_precision,
        "grounded_rate": total.grounded_rate,
        "correct_rate": total.correct_rate,
        "foreign_chunks": total.foreign_chunks,
    }
    out.write(json.dumps({k: _round(v) for k, v in line.items()}, sort_keys=True) + "\n")
    return EXIT_OK


def _write_report(  # noqa: PLR0917 - one call site, all positional by name below
    args: argparse.Namespace,
    outcomes: Sequence[Any],
    total: Any,
    by_category: dict[str, Any],
    pipeline: Any,
    gate: Any,
    embedder: str,
    err: TextIO,
) -> None:
    from retrieval.search import Mode

    modes = list(Mode)
    report = {
        "portion": args.portion,
        "rows": len(outcomes),
        "pipeline": pipeline.value,
        "gate": {"min_dense": gate.min_dense, "code_match": gate.code_match},
        "embedder": embedder,
        "total": _figures_json(total),
        "by_category": {c: _figures_json(f) for c, f in by_category.items()},
        "unsupported": [
            {"id": o.row.id, "claims": list(o.unsupported)} for o in outcomes if o.unsupported
        ],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"eval-retrieval-{args.portion}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    svg = path.with_suffix(".svg")
    svg.write_text(
        _plot(total, modes, title=f"retrieval by mode ({args.portion}, {len(outcomes)} questions)")
    )
    err.write(f"report saved to {path}, plot to {svg}\n")


def _retriever(directory: Path, documents: Any, model: Any, pipeline: Any, err: TextIO) -> Any:
    """A knowledge base of ``documents`` in ``directory``, loaded."""
    from retrieval.retriever import Retriever
    from retrieval.search import SearchOptions
    from retrieval.store import KnowledgeBaseStore
    from runtime.progress import bar

    store = KnowledgeBaseStore(directory)
    with bar("embedding policy chunks", unit="window", out=err) as progress:
        model.ingest(store, documents, progress=progress)
    retriever = Retriever(store, model.embedder, options=SearchOptions(default_mode=pipeline))
    retriever.refresh()
    return retriever


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _figures_json(f: Any) -> dict[str, Any]:
    return {
        "rows": f.rows,
        "answerable": f.answerable,
        "recall_at_5": {k: _round(v) for k, v in f.recall_at_5.items()},
        "mrr": {k: _round(v) for k, v in f.mrr.items()},
        "no_answer_precision": _round(f.no_answer_precision),
        "no_answer_recall": _round(f.no_answer_recall),
        "answered": f.answered,
        "grounded_rate": _round(f.grounded_rate),
        "correct_rate": _round(f.correct_rate),
        "foreign_chunks": f.foreign_chunks,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print(
    total: Any,
    *,
    by_category: dict[str, Any],
    modes: Sequence[Any],
    pipeline: str,
    gate: Any,
    portion: str,
    out: TextIO,
) -> None:
    from cli.render import table

    out.write(
        f"{portion.upper()} portion: {total.rows} questions ({total.answerable} with expected"
        f" chunks); pipeline {pipeline}; gate: best cosine >= {gate.min_dense:.2f}"
        f"{' or a named code' if gate.code_match else ''}\n\n"
    )
    out.write("Retrieval by mode (answerable questions)\n")
    rows = [[m.value, _pct(total.recall_at_5[m.value]), _num(total.mrr[m.value])] for m in modes]
    out.write(table(["mode", "recall@5", "MRR"], rows) + "\n\n")
    out.write(f"By category ({pipeline})\n")
    rows = []
    for name, f in [*by_category.items(), ("all", total)]:
        rows.append(
            [
                name,
                str(f.rows),
                _pct(f.recall_at_5[pipeline]),
                _num(f.mrr[pipeline]),
                _pct(f.no_answer_precision),
                _pct(f.no_answer_recall),
                _pct(f.grounded_rate),
                _pct(f.correct_rate),
                str(f.foreign_chunks),
            ]
        )
    headers = [
        "category",
        "rows",
        "recall@5",
        "MRR",
        "no-answer prec.",
        "no-answer rec.",
        "grounded",
        "correct",
        "foreign",
    ]
    out.write(table(headers, rows) + "\n\n")


def _plot(total: Any, modes: Sequence[Any], *, title: str) -> str:
    from cli.charts import grouped_bars

    groups = [(m.value, [total.recall_at_5[m.value], total.mrr[m.value]]) for m in modes]
    return grouped_bars(groups, ["recall@5", "MRR"], title=title)
