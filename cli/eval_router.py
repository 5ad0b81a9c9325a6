"""``waybill eval-router``: score the router on any labelled JSONL file.

Runs the same classification path as the router process, in-process and in
large batches, on the chosen portion of ``--data`` (the held-out TEST portion
by default), with labels translated by ``--mapping``. Prints per-label
accuracy, macro-F1, the confusion matrix and out-of-scope detection, saves it
all as JSON and ends with one JSON line of the headline figures.

Exit statuses: 0 scored, 1 data, mapping or model unusable, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from runtime import paths

EXIT_OK = 0
EXIT_FAILURE = 1
ARTIFACTS = paths.artifacts_dir("router")
HEADLINE = (
    "in_scope_accuracy",
    "macro_f1",
    "oos_precision",
    "oos_recall",
    "in_scope_false_rejection",
    "accepted_accuracy",
    "oos_to_negotiation",
)
_EPILOG = """\
examples:
  waybill eval-router                      # the whole suite, per file, beside the baseline
  waybill eval-router --data data/router/exemplars.v1.jsonl
  waybill eval-router --data ../shared/data/intents/bitext_8k_utterances.jsonl \\
      --mapping data/router/mappings/bitext.json
  waybill eval-router --data ../shared/data/oos/oos_val.jsonl \\
      --mapping data/router/mappings/clinc.json --portion dev --curve

mapping file: {"label_field": "intent", "labels": {"their_label": OURS, ...},
  "default": OURS}; OURS is an intent name (INTENT_TRACKING_ETA), a worker
  (tracking, policy, negotiation, human: scored by worker), "out_of_scope", or null
  (rows left out). Without --mapping the labels must be ours already.

exit codes: 0 scored, 1 data/mapping/model unusable, 2 usage error.
"""


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in 0..1")
    return value


def add_parser(sub: Any) -> None:
    """Register the subcommand on the ``waybill`` parser."""
    parser = sub.add_parser(
        "eval-router",
        help="score the intent router (and the naive baseline) on labelled JSONL files",
        description="Score the router on JSONL files of {text, label} rows, beside the naive"
        " nearest-neighbour baseline on the same rows: accuracy per label, confusion matrix,"
        " out-of-scope precision and recall. Without --data: every data set a mapping names"
        " plus our held-out exemplars, per file and in total, with a plot.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", type=Path, help="JSONL file to score (default: the whole suite, per file)"
    )
    parser.add_argument("--mapping", type=Path, help="label mapping file (their label -> ours)")
    parser.add_argument(
        "--portion",
        choices=("test", "dev", "all"),
        default="test",
        help="rows to score (data/router/split.json): the held-out TEST portion (default),"
        " the DEV portion used for tuning, or all",
    )
    parser.add_argument(
        "--level",
        choices=("worker", "intent"),
        default="worker",
        help="score which worker gets a turn (default: what dispatch decides) or the intent",
    )
    parser.add_argument(
        "--threshold", type=_threshold, help="confidence threshold (default: the calibrated one)"
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        help="calibration file (default: data/router/calibration.json); its model variant"
        " (int8 or fp32) is the one scored",
    )
    parser.add_argument(
        "--json-out",
        type=Path,
        help="report file (default: artifacts/router/eval-<data>-<portion>.json)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the naive kNN baseline beside it"
    )
    parser.add_argument("--curve", action="store_true", help="also print threshold vs OOS curve")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


@dataclass(slots=True)
class _Setup:
    embedder: Any
    calibration: Any
    exemplars: list[Any]
    vectors_dir: Path | None
    baseline: Any
    threshold: float


def _suite() -> list[tuple[Path, Path | None]]:
    """Every data file a mapping names, with its mapping, and our own exemplars."""
    from router.datasets import mappings_dir, shared_data_dir
    from router.settings import DEFAULT_EXEMPLARS

    found: list[tuple[Path, Path | None]] = []
    for mapping in sorted(mappings_dir().glob("*.json")):
        for name in json.loads(mapping.read_text()).get("data", []):
            found.append((shared_data_dir() / name, mapping))
    found.append((DEFAULT_EXEMPLARS, None))
    return found


def _scored(setup: _Setup, rows: list[Any], args: argparse.Namespace, err: TextIO) -> Any:
    from router import offline

    snapshot, left_out = offline.index_without(
        setup.embedder, setup.exemplars, rows, vectors_dir=setup.vectors_dir
    )
    progress = None if args.quiet else offline.progress_printer("classified", err)
    scored = offline.score(setup.embedder, snapshot, setup.calibration, rows, progress=progress)
    return scored, snapshot, left_out


def run(args: argparse.Namespace, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Score, print, save; the exit status."""
    from embeddings import Embedder, EmbedderOptions, ModelMissingError
    from router.baseline import Baseline
    from router.calibration import Calibration
    from router.datasets import DataError, shared_data_dir
    from router.server import base_exemplars
    from router.settings import RouterSettings

    try:
        calibration = Calibration.load(args.calibration) if args.calibration else Calibration.load()
        embedder = Embedder.load(
            options=EmbedderOptions(
                intra_op_threads=2, max_batch=64, quantized=calibration.quantized
            )
        )
        settings = RouterSettings.from_env()
        exemplars = base_exemplars(settings)
    except (DataError, ModelMissingError, ValueError) as exc:
        print(f"eval-router: {exc}", file=err)
        return EXIT_FAILURE
    baseline = None
    if not args.no_baseline:
        try:
            baseline = Baseline.build(embedder, shared_data_dir())
        except (DataError, ValueError) as exc:
            print(f"eval-router: no baseline ({exc}); scoring the router alone", file=err)
    threshold = calibration.threshold if args.threshold is None else args.threshold
    setup = _Setup(embedder, calibration, exemplars, settings.index_dir, baseline, threshold)
    if args.data is None:
        return _run_suite(setup, args, out=out, err=err)
    return _run_one(setup, args, out=out, err=err)


def _load(data: Path, mapping_path: Path | None, args: argparse.Namespace) -> Any:
    from router.datasets import IDENTITY, DataError, LabelMapping, load_rows, worker_level
    from router.split import Portion, Split

    portion = Portion(args.portion)
    mapping = LabelMapping.load(mapping_path) if mapping_path else IDENTITY
    loaded = load_rows(data, mapping, split=Split.load(), portion=portion)
    if not loaded.rows:
        raise DataError(f"{data}: no rows in the {portion} portion")
    if args.level == "worker":
        loaded.rows = [worker_level(r) for r in loaded.rows]
    return loaded


def _run_one(setup: _Setup, args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from router.datasets import DataError
    from router.evaluation import evaluate

    try:
        loaded = _load(args.data, args.mapping, args)
    except (DataError, ValueError) as exc:
        print(f"eval-router: {exc}", file=err)
        return EXIT_FAILURE
    if not args.quiet:
        print(
            f"scoring {len(loaded.rows)} rows ({args.portion} portion of {args.data.name})",
            file=err,
        )
    scored, snapshot, left_out = _scored(setup, loaded.rows, args, err)
    report = evaluate(scored, setup.threshold)
    print(_render(report, curve=args.curve), file=out)
    base_report = None
    if setup.baseline is not None:
        base_report = evaluate(setup.baseline.score(loaded.rows), 0.5)
        print("\n" + _comparison([("router", report), ("naive kNN", base_report)]), file=out)
    headline: dict[str, Any] = {
        "data": str(args.data),
        "mapping": str(args.mapping) if args.mapping else None,
        "portion": args.portion,
        "level": args.level,
        "rows": report.rows,
        "in_scope_rows": report.in_scope_rows,
        "oos_rows": report.oos_rows,
        "threshold": setup.threshold,
        "classifier_version": snapshot.version,
        "index_left_out": left_out,
        "skipped_rows": sum(loaded.skipped.values()),
    }
    headline.update({k: _round(getattr(report, k)) for k in HEADLINE})
    if base_report is not None:
        headline["baseline"] = {k: _round(getattr(base_report, k)) for k in HEADLINE}
    path = args.json_out or ARTIFACTS / f"eval-{args.data.stem}-{args.portion}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {
        **headline,
        "skipped": dict(loaded.skipped),
        "report": report.to_dict(),
        "baseline_report": base_report.to_dict() if base_report else None,
    }
    path.write_text(json.dumps(full, indent=2) + "\n")
    print(f"report saved to {path}", file=err)
    print(json.dumps(headline), file=out, flush=True)
    return EXIT_OK


SUITE_FIGURES = (
    ("in_scope_accuracy", "in-scope acc"),
    ("in_scope_false_rejection", "false rej"),
    ("oos_recall", "oos recall"),
    ("oos_to_negotiation", "oos->neg"),
)
WORKERS = ("tracking", "policy", "negotiation", "human")


def _worker_accuracy(report: Any) -> dict[str, float | None]:
    by_label = {c.label: c.accuracy for c in report.classes}
    return {w: by_label.get(w) for w in WORKERS}


def _run_suite(setup: _Setup, args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from router.datasets import DataError
    from router.evaluation import evaluate

    if args.level != "worker":
        print("eval-router: the suite scores by worker (give --data for intent level)", file=err)
        return EXIT_FAILURE
    per_file: list[dict[str, Any]] = []
    every_router: list[Any] = []
    every_base: list[Any] = []
    for data, mapping in _suite():
        try:
            loaded = _load(data, mapping, args)
        except (DataError, ValueError) as exc:
            print(f"eval-router: {exc}", file=err)
            return EXIT_FAILURE
        if not args.quiet:
            print(f"{data.name}: {len(loaded.rows)} {args.portion} rows", file=err)
        scored, snapshot, _ = _scored(setup, loaded.rows, args, err)
        every_router += scored
        entry: dict[str, Any] = {"file": data.name, "rows": len(loaded.rows)}
        entry["router"] = evaluate(scored, setup.threshold)
        if setup.baseline is not None:
            base = setup.baseline.score(loaded.rows)
            every_base += base
            entry["baseline"] = evaluate(base, 0.5)
        per_file.append(entry)
    total_router = evaluate(every_router, setup.threshold)
    total_base = evaluate(every_base, 0.5) if every_base else None
    lines = _suite_table(
        per_file,
        total_router,
        total_base,
        f"router {snapshot.version} at threshold {setup.threshold:.2f}"
        f" vs the naive kNN baseline, {args.portion} portions",
    )
    print("\n".join(lines), file=out)
    headline: dict[str, Any] = {
        "suite": True,
        "portion": args.portion,
        "rows": total_router.rows,
        "threshold": setup.threshold,
        "classifier_version": snapshot.version,
        **{k: _round(getattr(total_router, k)) for k in HEADLINE},
        "per_worker": {k: _round(v) for k, v in _worker_accuracy(total_router).items()},
    }
    if total_base is not None:
        headline["baseline"] = {k: _round(getattr(total_base, k)) for k in HEADLINE}
        headline["baseline"]["per_worker"] = {
            k: _round(v) for k, v in _worker_accuracy(total_base).items()
        }
    path = args.json_out or ARTIFACTS / f"eval-suite-{args.portion}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {
        **headline,
        "files": [
            {
                "file": e["file"],
                "rows": e["rows"],
                "router": e["router"].to_dict(),
                "baseline": e["baseline"].to_dict() if "baseline" in e else None,
            }
            for e in per_file
        ],
    }
    path.write_text(json.dumps(full, indent=2) + "\n")
    svg = path.with_suffix(".svg")
    svg.write_text(_plot(total_router, total_base, title=f"router vs naive kNN ({args.portion})"))
    print(f"report saved to {path}, plot to {svg}", file=err)
    print(json.dumps(headline), file=out, flush=True)
    return EXIT_OK


def _suite_table(
    per_file: list[dict[str, Any]], total_router: Any, total_base: Any, title: str
) -> list[str]:
    """The per-file table, the per-worker table and the comparison, as lines."""
    from cli.render import table

    header = ["file", "rows", *(name for _, name in SUITE_FIGURES)]
    lines = [
        f"{title}, scored by worker"
        " (router / baseline; a low-confidence in-scope turn counts as wrong)"
    ]
    rows = []
    for entry in [*per_file, {"file": "all", "router": total_router, "baseline": total_base}]:
        report, base = entry["router"], entry.get("baseline")
        cells = [entry["file"], str(report.rows)]
        for key, _ in SUITE_FIGURES:
            mine = getattr(report, key)
            theirs = getattr(base, key) if base is not None else None
            cells.append(f"{_pct(mine)} / {_pct(theirs)}" if mine is not None else "-")
        rows.append(cells)
    lines.append(table(header, rows))
    worker_rows = [
        [
            w,
            _pct(_worker_accuracy(total_router)[w]),
            _pct(_worker_accuracy(total_base)[w]) if total_base else "-",
        ]
        for w in WORKERS
    ]
    lines.append("\nper worker (accuracy of its in-scope rows)")
    lines.append(table(["worker", "router", "naive kNN"], worker_rows))
    if total_base is not None:
        lines.append("\n" + _comparison([("router", total_router), ("naive kNN", total_base)]))
    return lines


def _comparison(named: list[tuple[str, Any]]) -> str:
    """Headline figures side by side, with the router's error as a share of the baseline's."""
    from cli.render import table

    (_, mine), (_, theirs) = named
    rows = []
    for key, label in (
        ("in_scope_accuracy", "in-scope accuracy"),
        ("in_scope_false_rejection", "in-scope false rejection"),
        ("oos_recall", "out-of-scope recall"),
        ("oos_to_negotiation", "out-of-scope sent to negotiation"),
    ):
        a, b = getattr(mine, key), getattr(theirs, key)
        lower_is_better = key in ("in_scope_false_rejection", "oos_to_negotiation")
        err_a = a if lower_is_better else (None if a is None else 1 - a)
        err_b = b if lower_is_better else (None if b is None else 1 - b)
        ratio = "-" if not err_b or err_a is None else f"{err_a / err_b:.2f}x"
        rows.append([label, _pct(a), _pct(b), ratio])
    return table(["figure", named[0][0], named[1][0], "error ratio"], rows)


def _plot(mine: Any, theirs: Any, *, title: str) -> str:
    """Grouped bars: the headline figures and per-worker accuracy, router vs baseline."""
    from cli.charts import grouped_bars

    figures = [
        (label, [getattr(mine, key), getattr(theirs, key) if theirs else None])
        for key, label in SUITE_FIGURES
    ]
    figures += [
        (w, [_worker_accuracy(mine)[w], _worker_accuracy(theirs)[w] if theirs else None])
        for w in WORKERS
    ]
    return grouped_bars(figures, ["router", "naive kNN"], title=title)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _render(report: Any, *, curve: bool) -> str:
    from cli.render import table

    lines = [f"threshold {report.threshold:.2f}, {report.rows} rows"]
    rows = [
        [c.label, str(c.rows), str(c.correct), _pct(c.accuracy), _pct(c.precision), f"{c.f1:.3f}"]
        for c in report.classes
    ]
    lines.append(table(["label", "rows", "correct", "accuracy", "precision", "F1"], rows))
    labels = [c.label for c in report.classes]
    predicted = sorted({p for v in report.confusion.values() for p in v} - set(labels))
    columns = labels + predicted
    short = {c: _abbrev(c) for c in columns}
    matrix = [
        [short[gold], *(str(report.confusion[gold].get(p, 0) or ".") for p in columns)]
        for gold in labels
    ]
    lines.append("\nconfusion (rows: expected, columns: predicted; oos = low-confidence bucket)")
    lines.append(table(["", *(short[c] for c in columns)], matrix))
    summary = [
        ["in-scope accuracy (rejected = wrong)", _pct(report.in_scope_accuracy)],
        ["accuracy of dispatched in-scope", _pct(report.accepted_accuracy)],
        ["in-scope false rejection", _pct(report.in_scope_false_rejection)],
        ["out-of-scope precision", _pct(report.oos_precision)],
        ["out-of-scope recall", _pct(report.oos_recall)],
        ["out-of-scope sent to negotiation", _pct(report.oos_to_negotiation)],
        ["macro-F1", "-" if report.macro_f1 is None else f"{report.macro_f1:.3f}"],
    ]
    lines.append("")
    lines.append(table(["figure", "value"], summary))
    if curve:
        points = [
            [
                f"{p.threshold:.2f}",
                _pct(p.in_scope_accuracy),
                _pct(p.in_scope_false_rejection),
                _pct(p.oos_recall),
                _pct(p.oos_precision),
            ]
            for p in report.curve
        ]
        lines.append("\nthreshold curve")
        lines.append(
            table(["threshold", "in-scope acc", "false rej", "oos recall", "oos prec"], points)
        )
    return "\n".join(lines)


def _abbrev(label: str) -> str:
    from router.intents import code

    return code(label)
