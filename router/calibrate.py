"""Fit the confidence model and pick the threshold, on the training corpus only.

``python -m router.calibrate`` scores every row of the corpus (the DEV portions
of the external data sets and of our exemplars, ``python -m router.corpus``)
against an index of the *other* folds, fits P(correct) on the best score and
its margin (each source weighing the same), and picks the threshold that
catches the most out-of-scope messages while no source loses more than
``--target-false-rejection`` of its in-scope messages. The TEST portions are
never read.

Folds are grouped: rows whose vectors are near-duplicates (cosine >= 0.9, the
machine-generated variations of one sentence) share a fold, so a row is never
scored against its own paraphrase. Otherwise the fitted confidence would be the
confidence of a lookup, not of a message phrased in a way the index has not
seen. The neighbours averaged per class (``top_m``) are chosen the same way.

Exit statuses: 0 written, 1 data or model missing, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embeddings import Embedder, EmbedderOptions, ModelMissingError
from embeddings.pooling import FloatArray
from router import corpus as corpus_files
from router import exemplars as exemplar_files
from router.calibration import DEFAULT_PATH, Calibration, fit_logistic
from router.classifier import Query, decide_all
from router.datasets import Row, parse_gold
from router.decision import PriorOptions
from router.evaluation import Scored
from router.exemplars import Exemplar
from router.index import ExemplarIndex
from router.intents import FOLLOW_UP, OUT_OF_SCOPE, WORKER_OF, I, worker_name
from router.offline import Features, progress_printer
from router.settings import DEFAULT_FOLLOW_UPS
from router.vectors import default_dir, vectors_for

TOP_M_CHOICES = (1, 2, 3)
NEIGHBOURS = 64
FOLDS = 5
NEAR_DUPLICATE = 0.9
"""Cosine from which two rows are variations of one sentence (same fold)."""
TARGET_FALSE_REJECTION = 0.01
"""In-scope rows the threshold may reject on DEV folds, beyond those the classifier
sends out of scope anyway: the 3% target holds for the whole router."""
MIN_ROWS = 50
"""A source constrains or scores a side (in-scope / OOS) only with this many rows."""
GRID = tuple(round(0.01 * i, 2) for i in range(5, 96))
MIN_TOP_QUANTILE = 0.002
"""The similarity floor keeps 99.8% of the rightly classified in-scope DEV rows."""


def min_top_of(sets: Sequence[DevSet]) -> float:
    """The floor under which a best-class score is too far from everything known."""
    tops = [
        f.top
        for d in sets
        for row, f in zip(d.rows, d.features, strict=True)
        if row.gold.in_scope and _correct(row, f)
    ]
    return round(float(np.quantile(np.array(tops), MIN_TOP_QUANTILE)), 4) if tops else 0.0


def _unfitted(top_m: int) -> Calibration:
    """Scores do not depend on the confidence model: any one will do to collect them."""
    return Calibration(0.0, 0.0, 0.0, 0.5, top_m=top_m, neighbours=NEIGHBOURS)


@dataclass(slots=True)
class DevSet:
    """Scored DEV rows of one source."""

    name: str
    rows: list[Row]
    features: list[Features]


def gold_of(intent: int) -> Row:
    """A worker-level gold row for a training intent (dispatch is what must be right)."""
    worker = WORKER_OF.get(intent, I.WORKER_UNSPECIFIED)
    label = worker_name(worker) if worker != I.WORKER_UNSPECIFIED else OUT_OF_SCOPE
    return Row("", "", parse_gold(label), label)


def folds_of(vectors: FloatArray, ids: Sequence[str], *, folds: int = FOLDS) -> np.ndarray:
    """A fold per row; near-duplicates (connected by cosine >= NEAR_DUPLICATE) share one."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    lims, _, found = index.range_search(
        np.ascontiguousarray(vectors, dtype=np.float32), NEAR_DUPLICATE
    )
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ids)):
        for j in found[lims[i] : lims[i + 1]]:
            a, b = root(i), root(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    # The fold follows the group's first id, so it does not depend on row order.
    first: dict[int, str] = {}
    for i, row_id in enumerate(ids):
        r = root(i)
        first[r] = min(first.get(r, row_id), row_id)
    import hashlib

    return np.array(
        [
            int(hashlib.sha256(first[root(i)].encode()).hexdigest()[:8], 16) % folds
            for i in range(len(ids))
        ]
    )


def cross_scores(
    items: Sequence[Exemplar],
    vectors: FloatArray,
    fold: np.ndarray,
    follow: Sequence[Exemplar],
    follow_vectors: FloatArray,
    *,
    top_m: int,
) -> list[Features]:
    """Each corpus row's raw scores against an index of the other folds and the follow-ups."""
    labels = np.array([e.label for e in items], dtype=np.int32)
    follow_labels = np.array([e.label for e in follow], dtype=np.int32)
    found: list[Features | None] = [None] * len(items)
    calibration = _unfitted(top_m)
    prior = PriorOptions()
    for k in sorted(set(fold.tolist())):
        held = np.where(fold == k)[0]
        rest = np.where(fold != k)[0]
        index = ExemplarIndex(
            np.concatenate([vectors[rest], follow_vectors]),
            np.concatenate([labels[rest], follow_labels]),
        )
        classes = tuple(sorted({int(c) for c in index.labels}))
        outcomes = decide_all(
            [Query(items[p].text) for p in held],
            index.search(vectors[held], NEIGHBOURS),
            classes=classes,
            version="",
            calibration=calibration,
            prior=prior,
        )
        for position, outcome in zip(held, outcomes, strict=True):
            d = outcome.decision
            # The unfitted confidence (0.5) meets its threshold (0.5): a low decision
            # here is one no threshold changes (out of scope, negotiation too close).
            found[position] = Features(d.intent, not d.low_confidence, d.top, d.gap)
    return [f for f in found if f is not None]


def dev_sets(
    items: Sequence[Exemplar], sources: dict[str, str], found: Sequence[Features]
) -> list[DevSet]:
    """The scored rows grouped by source."""
    by_source: dict[str, DevSet] = {}
    for item, f in zip(items, found, strict=True):
        name = sources.get(item.id, corpus_files.HAND_SOURCE)
        gold = gold_of(item.label)
        row = Row(item.id, item.text, gold.gold, gold.source_label)
        entry = by_source.setdefault(name, DevSet(name, [], []))
        entry.rows.append(row)
        entry.features.append(f)
    return [by_source[k] for k in sorted(by_source)]


def _scored(dev: DevSet, calibration: Calibration) -> list[Scored]:
    return [
        Scored(
            r,
            f.intent,
            f.served and f.top >= calibration.min_top,
            calibration.confidence(f.top, f.gap),
        )
        for r, f in zip(dev.rows, dev.features, strict=True)
    ]


def _correct(row: Row, f: Features) -> bool:
    if not row.gold.in_scope:
        return not f.served
    if not f.served:
        return False
    return Scored(row, f.intent, True, 1.0).predicted(0.0) == row.gold.key


def fit(sets: Sequence[DevSet], *, quantized: bool, top_m: int) -> Calibration:
    """The logistic model over all DEV rows, each set weighing the same."""
    x, y, w = [], [], []
    for dev in sets:
        for row, f in zip(dev.rows, dev.features, strict=True):
            x.append((f.top, f.gap))
            y.append(1.0 if _correct(row, f) else 0.0)
            w.append(1.0 / len(dev.rows))
    coef, bias = fit_logistic(np.array(x), np.array(y), np.array(w))
    return Calibration(float(coef[0]), float(coef[1]), bias, 0.5, top_m, NEIGHBOURS, quantized)


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
    """The threshold with the best mean OOS recall whose cost meets ``target``.

    The cost is what the threshold itself adds: in-scope rows it rejects beyond those
    the classifier already puts nearest to out-of-scope exemplars (no threshold can
    win those back), for the source where it adds the most.
    """
    scored = {d.name: _scored(d, calibration) for d in sets}
    floor = {name: _figures(s, 0.0)["false_rejection"] for name, s in scored.items()}
    curve: list[dict[str, Any]] = []
    best: tuple[float, float] | None = None
    for t in GRID:
        per_set = {name: _figures(s, t) for name, s in scored.items()}
        rejections = [
            float(f["false_rejection"] or 0.0) - float(floor[name] or 0.0)
            for name, f in per_set.items()
            if int(f["in_scope_rows"] or 0) >= MIN_ROWS
        ]
        recalls = [f["oos_recall"] for f in per_set.values() if int(f["oos_rows"] or 0) >= MIN_ROWS]
        worst = max(float(r) for r in rejections if r is not None)
        recall = float(np.mean([float(r) for r in recalls if r is not None]))
        curve.append(
            {
                "threshold": t,
                "worst_added_false_rejection": round(worst, 4),
                "mean_oos_recall": round(recall, 4),
                "sets": {
                    name: {k: round(v, 4) if isinstance(v, float) else v for k, v in f.items()}
                    for name, f in per_set.items()
                },
            }
        )
        # Ties go to the higher threshold: the same catch, with a margin kept.
        if worst <= target and (best is None or recall >= best[1]):
            best = (t, recall)
    if best is None:
        raise NoThreshold(f"no threshold keeps false rejection under {target}")
    return best[0], curve


class NoThreshold(ValueError):
    """No threshold meets the false-rejection target."""


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m router.calibrate",
        description="Fit the router's confidence model and threshold on the training corpus"
        " (DEV portions only), with grouped cross-validation.",
        epilog="exit codes: 0 written, 1 data or model missing or no threshold fits, 2 usage.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="calibration file to write")
    parser.add_argument(
        "--corpus", type=Path, default=corpus_files.DEFAULT_CORPUS, help="training corpus"
    )
    parser.add_argument(
        "--fp32", action="store_true", help="fit for the fp32 model (default: the int8 one)"
    )
    parser.add_argument(
        "--target-false-rejection",
        type=float,
        default=TARGET_FALSE_REJECTION,
        help="in-scope false rejection the threshold may add for any source, on DEV folds"
        " (default %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        embedder = Embedder.load(
            options=EmbedderOptions(intra_op_threads=2, max_batch=64, quantized=not args.fp32)
        )
        items = corpus_files.load(args.corpus)
        sources = corpus_files.sources(args.corpus)
        follow = exemplar_files.load_follow_ups(DEFAULT_FOLLOW_UPS)
        print(f"embedding {len(items)} corpus rows (cached after the first run)", file=sys.stderr)
        # The same text list as the router's index, so the vectors are shared with it.
        every = vectors_for(
            embedder,
            [e.text for e in [*items, *follow]],
            default_dir(),
            progress=progress_printer("embedded"),
        )
    except (ModelMissingError, ValueError) as exc:
        print(f"router.calibrate: {exc}", file=sys.stderr)
        return 1
    vectors, follow_vectors = every[: len(items)], every[len(items) :]
    fold = folds_of(vectors, [e.id for e in items])
    choices: dict[int, tuple[Calibration, float, list[dict[str, Any]], list[DevSet]]] = {}
    for top_m in TOP_M_CHOICES:
        found = cross_scores(items, vectors, fold, follow, follow_vectors, top_m=top_m)
        sets = dev_sets(items, sources, found)
        model = replace(fit(sets, quantized=not args.fp32, top_m=top_m), min_top=min_top_of(sets))
        try:
            threshold, curve = pick_threshold(sets, model, args.target_false_rejection)
        except NoThreshold:
            print(f"  top_m={top_m}: no threshold meets the target", file=sys.stderr)
            continue
        at = next(c for c in curve if c["threshold"] == threshold)
        choices[top_m] = (model, threshold, curve, sets)
        print(
            f"  top_m={top_m}: threshold {threshold:.2f}, worst false rejection"
            f" {at['worst_added_false_rejection']:.3f},"
            f" mean OOS recall {at['mean_oos_recall']:.3f}",
            file=sys.stderr,
        )
    if not choices:
        print("router.calibrate: no candidate meets the false-rejection target", file=sys.stderr)
        return 1

    def recall_of(top_m: int) -> float:
        _, threshold, curve, _ = choices[top_m]
        return float(next(c for c in curve if c["threshold"] == threshold)["mean_oos_recall"])

    top_m = max(choices, key=lambda m: (recall_of(m), -m))
    model, threshold, curve, sets = choices[top_m]
    at = next(c for c in curve if c["threshold"] == threshold)
    calibration = Calibration(
        model.w_top,
        model.w_gap,
        model.bias,
        threshold,
        top_m,
        NEIGHBOURS,
        model.quantized,
        min_top=model.min_top,
        provenance={
            "fitted": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_version": embedder.version,
            "exemplars": exemplar_files.digest([*items, *follow])[:10],
            "portion": "dev",
            "folds": f"{FOLDS} grouped (cosine >= {NEAR_DUPLICATE} shares a fold)",
            "target_false_rejection": args.target_false_rejection,
            "sets": {d.name: len(d.rows) for d in sets},
            "top_m_choices": {str(m): round(recall_of(m), 4) for m in choices},
            "follow_ups": sum(1 for e in follow if e.label == FOLLOW_UP),
        },
    )
    calibration.save(args.out, extra={"dev_at_threshold": at, "dev_curve": curve})
    print(
        f"wrote {args.out}: top_m {top_m}, confidence = sigmoid({model.w_top:.2f}*top"
        f" + {model.w_gap:.2f}*gap {model.bias:+.2f}), threshold {threshold:.2f};"
        " dev worst false rejection added by the threshold"
        f" {at['worst_added_false_rejection']:.3f}, mean OOS recall {at['mean_oos_recall']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
