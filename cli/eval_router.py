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
        help="score the intent router on a labelled JSONL file",
        description="Score the router on a JSONL file of {text, label} rows: accuracy per"
        " label, macro-F1, confusion matrix, out-of-scope precision and recall.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="JSONL file to score")
    parser.add_argument("--mapping", type=Path, help="label mapping file (their label -> ours)")
    parser.add_argument(
        "--portion",
        choices=("test", "dev", "all"),
        default="test",
        help="rows to score (data/router/split.json): the held-out TEST portion (default),"
        " the DEV portion used for tuning, or all",
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
    parser.add_argument("--curve", action="store_true", help="also print threshold vs OOS curve")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Score, print, save; the exit status."""
    from embeddings import Embedder, EmbedderOptions, ModelMissingError
    from router import exemplars as exemplar_files
    from router import offline
    from router.calibration import Calibration
    from router.datasets import IDENTITY, DataError, LabelMapping, load_rows
    from router.evaluation import evaluate
    from router.settings import DEFAULT_EXEMPLARS, DEFAULT_FOLLOW_UPS
    from router.split import Portion, Split

    portion = Portion(args.portion)
    try:
        mapping = LabelMapping.load(args.mapping) if args.mapping else IDENTITY
        loaded = load_rows(args.data, mapping, split=Split.load(), portion=portion)
        if not loaded.rows:
            raise DataError(f"{args.data}: no rows in the {portion} portion")
        calibration = Calibration.load(args.calibration) if args.calibration else Calibration.load()
        embedder = Embedder.load(
            options=EmbedderOptions(
                intra_op_threads=2, max_batch=64, quantized=calibration.quantized
            )
        )
        exemplars = exemplar_files.load(DEFAULT_EXEMPLARS)
        exemplars += exemplar_files.load_follow_ups(DEFAULT_FOLLOW_UPS)
    except (DataError, ModelMissingError, ValueError) as exc:
        print(f"eval-router: {exc}", file=err)
        return EXIT_FAILURE
    threshold = calibration.threshold if args.threshold is None else args.threshold
    snapshot, left_out = offline.index_without(embedder, exemplars, loaded.rows)
    if not args.quiet:
        print(
            f"scoring {len(loaded.rows)} rows ({portion} portion of {args.data.name});"
            f" index {len(snapshot.index)} exemplars ({left_out} left out: they are being scored)",
            file=err,
        )
    progress = None if args.quiet else offline.progress_printer("classified", err)
    scored = offline.score(embedder, snapshot, calibration, loaded.rows, progress=progress)
    report = evaluate(scored, threshold)
    print(_render(report, curve=args.curve), file=out)
    headline: dict[str, Any] = {
        "data": str(args.data),
        "mapping": str(args.mapping) if args.mapping else None,
        "portion": str(portion),
        "rows": report.rows,
        "in_scope_rows": report.in_scope_rows,
        "oos_rows": report.oos_rows,
        "threshold": threshold,
        "classifier_version": snapshot.version,
        "index_left_out": left_out,
        "skipped_rows": sum(loaded.skipped.values()),
    }
    headline.update({k: _round(getattr(report, k)) for k in HEADLINE})
    path = args.json_out or ARTIFACTS / f"eval-{args.data.stem}-{portion}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {**headline, "skipped": dict(loaded.skipped), "report": report.to_dict()}
    path.write_text(json.dumps(full, indent=2) + "\n")
    print(f"report saved to {path}", file=err)
    print(json.dumps(headline), file=out, flush=True)
    return EXIT_OK


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
