"""Which classifier the router runs: candidates compared on grouped DEV folds.

``python -m router.select`` scores every corpus row against the other folds
(the same grouped folds as the calibration: paraphrases share a fold) with
each candidate and prints, per source, the worker-level accuracy of in-scope
rows and the recall of out-of-scope rows, with no threshold (what the
classifier itself gets right):

- ``knn-m1``, ``knn-m2``, ``knn-m3``: nearest exemplars, each intent scored by
  the mean similarity of its m nearest (what the router runs, m chosen by the
  calibration);
- ``logreg-C``: a multinomial logistic head over the same embeddings
  (scikit-learn, in the dev extra; skipped when it is not installed).

The TEST portions are never read. Exit statuses: 0 compared, 1 model or data
missing, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np

from embeddings import Embedder, EmbedderOptions, ModelMissingError
from embeddings.pooling import FloatArray
from router import corpus as corpus_files
from router.calibrate import NEIGHBOURS, folds_of
from router.index import ExemplarIndex
from router.intents import WORKER_OF, I, worker_name
from router.offline import progress_printer
from router.scoring import class_scores
from router.vectors import default_dir, vectors_for

Predict = Callable[[FloatArray, np.ndarray, FloatArray], np.ndarray]
"""(train vectors, train labels, queries) -> predicted intents."""


def knn(top_m: int) -> Predict:
    """The router's scoring: best class by the mean of its ``top_m`` nearest."""

    def predict(train: FloatArray, labels: np.ndarray, queries: FloatArray) -> np.ndarray:
        index = ExemplarIndex(train, labels.astype(np.int32))
        classes = sorted({int(c) for c in labels})
        sims, near = index.search(queries, NEIGHBOURS)
        scores = class_scores(sims, near, classes, top_m=top_m)
        best: np.ndarray = np.asarray(classes)[scores.argmax(axis=1)]
        return best

    return predict


def logreg(c: float) -> Predict:
    """A logistic head over the embeddings (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    def predict(train: FloatArray, labels: np.ndarray, queries: FloatArray) -> np.ndarray:
        model = LogisticRegression(C=c, max_iter=3000)
        model.fit(train, labels)
        return np.asarray(model.predict(queries))

    return predict


def candidates() -> dict[str, Predict]:
    """Every candidate that can run here."""
    found: dict[str, Predict] = {f"knn-m{m}": knn(m) for m in (1, 2, 3)}
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(
            "router.select: scikit-learn is not installed; logistic heads skipped", file=sys.stderr
        )
        return found
    found.update({f"logreg-C{c:g}": logreg(c) for c in (10.0, 100.0)})
    return found


def worker_of(intent: int) -> str:
    """``tracking`` ... ``human``, or ``out_of_scope``."""
    return worker_name(WORKER_OF.get(int(intent), I.WORKER_UNSPECIFIED))


def cross_predict(
    predict: Predict, vectors: FloatArray, labels: np.ndarray, fold: np.ndarray
) -> np.ndarray:
    """Each row's prediction by a model of the other folds."""
    out = np.empty(len(labels), dtype=np.int64)
    for k in sorted(set(fold.tolist())):
        held = fold == k
        out[held] = predict(vectors[~held], labels[~held], vectors[held])
    return out


def figures(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float | None]:
    """In-scope accuracy and out-of-scope recall at worker level."""
    g = np.asarray(gold)
    p = np.asarray(predicted)
    inside = g != "out_of_scope"
    return {
        "in_scope_accuracy": float((p[inside] == g[inside]).mean()) if inside.any() else None,
        "oos_recall": float((p[~inside] == g[~inside]).mean()) if (~inside).any() else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m router.select",
        description="Compare classifier candidates on grouped DEV folds of the corpus.",
        epilog="exit codes: 0 compared, 1 model or data missing, 2 usage error.",
    )
    parser.parse_args(argv)
    try:
        embedder = Embedder.load(
            options=EmbedderOptions(intra_op_threads=2, max_batch=64, quantized=True)
        )
        items = corpus_files.load()
        sources = corpus_files.sources()
    except (ModelMissingError, ValueError) as exc:
        print(f"router.select: {exc}", file=sys.stderr)
        return 1
    vectors = vectors_for(
        embedder, [e.text for e in items], default_dir(), progress=progress_printer("embedded")
    )
    labels = np.array([e.label for e in items])
    fold = folds_of(vectors, [e.id for e in items])
    source = np.array([sources.get(e.id, "") for e in items])
    gold = [worker_of(x) for x in labels]
    names = sorted(set(source.tolist()))
    print(f"{'candidate':14s} " + " ".join(f"{n[:18]:>22s}" for n in names))
    for name, predict in candidates().items():
        predicted = [worker_of(x) for x in cross_predict(predict, vectors, labels, fold)]
        cells = []
        for n in names:
            rows = source == n
            f = figures(
                [g for g, r in zip(gold, rows, strict=True) if r],
                [p for p, r in zip(predicted, rows, strict=True) if r],
            )
            acc = "-" if f["in_scope_accuracy"] is None else f"{100 * f['in_scope_accuracy']:.1f}"
            rec = "-" if f["oos_recall"] is None else f"{100 * f['oos_recall']:.1f}"
            cells.append(f"{acc:>10s}/{rec:>10s}")
        print(f"{name:14s} " + " ".join(f"{c:>22s}" for c in cells), flush=True)
    print("(per source: in-scope accuracy / out-of-scope recall, %, worker level, no threshold)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
