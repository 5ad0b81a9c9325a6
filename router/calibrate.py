"""Fit the confidence model and pick the threshold, on DEV portions only.

``python -m router.calibrate`` scores the DEV portion of our exemplars (5-fold:
each fold against an index of the other dev exemplars) and of every external
data set named by ``data/router/mappings/*.json``, fits P(correct) on the best
score and its margin (each data set weighing the same), and picks the
threshold that catches the most out-of-scope messages while no data set loses
more than ``--target-false-rejection`` of its in-scope messages. The TEST
portions are never read. Writes ``data/router/calibration.json``.

Exit statuses: 0 written, 1 data or model missing, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import Embedder, EmbedderOptions, ModelMissingError
from router import exemplars as exemplar_files
from router.calibration import DEFAULT_PATH, Calibration, fit_logistic
from router.datasets import DataError, LabelMapping, Row, load_rows, mappings_dir, parse_gold
from router.datasets import shared_data_dir as default_shared
from router.evaluation import Scored
from router.exemplars import Exemplar
from router.intents import FOLLOW_UP, intent_name
from router.offline import Features, features, index_without, progress_printer
from router.settings import DEFAULT_EXEMPLARS, DEFAULT_FOLLOW_UPS
from router.split import Portion, Split

TOP_M = 2
NEIGHBOURS = 64
FOLDS = 5
TARGET_FALSE_REJECTION = 0.08
"""On DEV: leaves a margin under the 10% target for the unseen TEST portions."""
MIN_ROWS = 50
"""A data set constrains or scores a side (in-scope / OOS) only with this many rows."""
GRID = tuple(round(0.01 * i, 2) for i in range(5, 96))
_UNFITTED = Calibration(
    w_top=0.0, w_gap=0.0, bias=0.0, threshold=0.5, top_m=TOP_M, neighbours=NEIGHBOURS
)
"""Scores do not depend on the confidence model: any one will do to collect them."""


@dataclass(slots=True)
class DevSet:
    """Scored DEV rows of one data set."""

    name: str
    rows: list[Row]
    features: list[Features]


def _exemplar_set(
    embedder: Embedder, split: Split, base: list[Exemplar], follow: list[Exemplar]
) -> DevSet:
    file_name = DEFAULT_EXEMPLARS.name
    dev = [e for e in base if split.portion_of(e.id, file_name) == Portion.DEV]
    rows: list[Row] = []
    found: list[Features] = []
    for fold in range(FOLDS):
        held = [e for e in dev if split.bucket(e.id) % FOLDS == fold]
        rest = [e for e in dev if split.bucket(e.id) % FOLDS != fold]
        fold_rows = [
            Row(e.id, e.text, parse_gold(intent_name(e.label)), intent_name(e.label)) for e in held
        ]
        snapshot, _ = index_without(embedder, [*rest, *follow], fold_rows)
        found.extend(features(embedder, snapshot, _UNFITTED, [r.text for r in fold_rows]))
        rows.extend(fold_rows)
    return DevSet("exemplars", rows, found)


def _external_sets(
    embedder: Embedder, split: Split, index_items: list[Exemplar], shared: Path
) -> list[DevSet]:
    snapshot, _ = index_without(embedder, index_items, [])
    sets: list[DevSet] = []
    for mapping_path in sorted(mappings_dir().glob("*.json")):
        mapping = LabelMapping.load(mapping_path)
        files = json.loads(mapping_path.read_text()).get("data", [])
        rows: list[Row] = []
        for name in files:
            rows.extend(load_rows(shared / name, mapping, split=split, portion=Portion.DEV).rows)
        found = features(
            embedder,
            snapshot,
            _UNFITTED,
            [r.text for r in rows],
            progress=progress_printer(mapping_path.stem),
        )
        sets.append(DevSet(mapping_path.stem, rows, found))
    return sets


def _scored(dev: DevSet, calibration: Calibration) -> list[Scored]:
    return [
        Scored(r, f.intent, f.served, calibration.confidence(f.top, f.gap))
        for r, f in zip(dev.rows, dev.features, strict=True)
    ]


def _correct(row: Row, f: Features) -> bool:
    if not row.gold.in_scope:
        return not f.served
    if not f.served:
        return False
    return Scored(row, f.intent, True, 1.0).predicted(0.0) == row.gold.key


def fit(sets: Sequence[DevSet], *, quantized: bool) -> Calibration:
    """The logistic model over all DEV rows, each set weighing the same."""
    x, y, w = [], [], []
    for dev in sets:
        for row, f in zip(dev.rows, dev.features, strict=True):
            x.append((f.top, f.gap))
            y.append(1.0 if _correct(row, f) else 0.0)
            w.append(1.0 / len(dev.rows))
    coef, bias = fit_logistic(np.array(x), np.array(y), np.array(w))
    return Calibration(float(coef[0]), float(coef[1]), bias, 0.5, TOP_M, NEIGHBOURS, quantized)


def _figures(scored: list[Scored], threshold: float) -> dict[str, float | int | None]:
    inside = [s for s in scored if s.row.gold.in_scope]
    outside = [s for s in scored if not s.row.gold.in_scope]
    return {
        "in_scope_rows": len(inside),
        "oos_rows": len(outside),
        "false_rejection": sum(s.low(threshold) for s in inside) / len(inside) if inside else None,
        "oos_recall": sum(s.low(threshold) for s in outside) / len(outside) if outside else None,
        "in_scope_accuracy": (
            sum(s.predicted(threshold) == s.row.gold.key for s in inside) / len(inside)
            if inside
            else None
        ),
    }


def pick_threshold(
    sets: Sequence[DevSet], calibration: Calibration, target: float
) -> tuple[float, list[dict[str, Any]]]:
    """The threshold with the best mean OOS recall whose worst false rejection meets ``target``."""
    scored = {d.name: _scored(d, calibration) for d in sets}
    curve: list[dict[str, Any]] = []
    best: tuple[float, float] | None = None
    for t in GRID:
        per_set = {name: _figures(s, t) for name, s in scored.items()}
        rejections = [
            f["false_rejection"]
            for f in per_set.values()
            if int(f["in_scope_rows"] or 0) >= MIN_ROWS
        ]
        recalls = [f["oos_recall"] for f in per_set.values() if int(f["oos_rows"] or 0) >= MIN_ROWS]
        worst = max(float(r) for r in rejections if r is not None)
        recall = float(np.mean([float(r) for r in recalls if r is not None]))
        curve.append(
            {
                "threshold": t,
                "worst_false_rejection": round(worst, 4),
                "mean_oos_recall": round(recall, 4),
                "sets": {
                    name: {k: round(v, 4) if isinstance(v, float) else v for k, v in f.items()}
                    for name, f in per_set.items()
                },
            }
        )
        if worst <= target and (best is None or recall > best[1]):
            best = (t, recall)
    if best is None:
        raise SystemExit(f"router.calibrate: no threshold keeps false rejection under {target}")
    return best[0], curve


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m router.calibrate",
        description="Fit the router's confidence model and threshold on the DEV portions.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="calibration file to write")
    parser.add_argument(
        "--shared-data",
        type=Path,
        help="external data sets (default: $WAYBILL_SHARED_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--fp32", action="store_true", help="fit for the fp32 model (default: the int8 one)"
    )
    parser.add_argument(
        "--target-false-rejection",
        type=float,
        default=TARGET_FALSE_REJECTION,
        help="worst DEV in-scope false rejection allowed (default %(default)s)",
    )
    args = parser.parse_args(argv)
    shared = args.shared_data or default_shared()
    try:
        embedder = Embedder.load(
            options=EmbedderOptions(intra_op_threads=2, max_batch=64, quantized=not args.fp32)
        )
        split = Split.load()
        base = exemplar_files.load(DEFAULT_EXEMPLARS)
        follow = exemplar_files.load_follow_ups(DEFAULT_FOLLOW_UPS)
        print("scoring DEV portions", file=sys.stderr)
        sets = [_exemplar_set(embedder, split, base, follow)]
        dev_base = [
            e for e in base if split.portion_of(e.id, DEFAULT_EXEMPLARS.name) == Portion.DEV
        ]
        sets.extend(_external_sets(embedder, split, [*dev_base, *follow], shared))
    except (ModelMissingError, DataError, ValueError) as exc:
        print(f"router.calibrate: {exc}", file=sys.stderr)
        return 1
    model = fit(sets, quantized=not args.fp32)
    threshold, curve = pick_threshold(sets, model, args.target_false_rejection)
    at = next(c for c in curve if c["threshold"] == threshold)
    calibration = Calibration(
        model.w_top,
        model.w_gap,
        model.bias,
        threshold,
        TOP_M,
        NEIGHBOURS,
        model.quantized,
        provenance={
            "fitted": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_version": embedder.version,
            "exemplars": exemplar_files.digest([*base, *follow])[:10],
            "portion": "dev",
            "target_false_rejection": args.target_false_rejection,
            "sets": {d.name: len(d.rows) for d in sets},
            "follow_ups": sum(1 for e in follow if e.label == FOLLOW_UP),
        },
    )
    calibration.save(args.out, extra={"dev_at_threshold": at, "dev_curve": curve})
    print(
        f"wrote {args.out}: confidence = sigmoid({model.w_top:.2f}*top + {model.w_gap:.2f}*gap"
        f" {model.bias:+.2f}), threshold {threshold:.2f};"
        " dev worst false rejection"
        f" {at['worst_false_rejection']:.3f}, mean OOS recall {at['mean_oos_recall']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
