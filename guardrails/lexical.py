"""The injection classifier's lexical half: character and word n-grams with a logistic
regression (scikit-learn), kept as plain JSON.

Character n-grams read what the fine-tuned encoder reads poorly: German, French, Spanish
and Dutch attacks (the encoder's vocabulary is English), spaced or misspelt trigger words
and markup. The two halves' probabilities are averaged (``guardrails.injection``); on
out-of-fold DEV scores the average beats either half alone (docs/guardrails.md).

The fitted model is stored as JSON (vocabularies, IDF weights, coefficients), not as a
pickle: loading it runs no code from the model directory.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

FILE = "lexical.json"
C = 30.0
"""Inverse regularisation, chosen by 5-fold cross-validation on the DEV corpus (3, 10, 30
gave 0.881, 0.891, 0.895 TPR at 2% FPR on the v1 corpus)."""
_VECTORIZERS: dict[str, dict[str, Any]] = {
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2},
    "word": {"analyzer": "word", "ngram_range": (1, 2), "min_df": 1},
}


def _vectorizer(kind: str, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        sublinear_tf=True, lowercase=True, vocabulary=vocabulary, **_VECTORIZERS[kind]
    )


class LexicalModel:
    """texts -> probability of injection, from n-gram TF-IDF features.

    Scoring does not go through scikit-learn's sparse matrices (about 1.5 ms per call, most
    of it overhead): each vectorizer's analyzer lists the text's n-grams, and a dict of
    (IDF, coefficient) per n-gram gives the same logit, L2 norm and all, in ~0.1 ms."""

    def __init__(
        self, vectorizers: dict[str, TfidfVectorizer], coef: npt.NDArray[np.float64], bias: float
    ) -> None:
        self._vectorizers = vectorizers
        self._coef = coef
        self._bias = bias
        self._tables: list[tuple[Callable[[str], list[str]], dict[str, tuple[float, float]]]] = []
        offset = 0
        for vectorizer in vectorizers.values():
            vocabulary: dict[str, int] = vectorizer.vocabulary_
            idf = vectorizer.idf_
            table = {
                term: (float(idf[i]), float(coef[offset + i])) for term, i in vocabulary.items()
            }
            self._tables.append((vectorizer.build_analyzer(), table))
            offset += len(vocabulary)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[int]) -> LexicalModel:
        """Fit on labelled texts (1 = injection); classes are weighted to balance."""
        vectorizers = {kind: _vectorizer(kind) for kind in _VECTORIZERS}
        features = hstack([v.fit_transform(texts) for v in vectorizers.values()]).tocsr()
        regression = LogisticRegression(C=C, max_iter=5000, class_weight="balanced")
        regression.fit(features, np.asarray(labels))
        coef = regression.coef_[0].astype(np.float64)
        return cls(vectorizers, coef, float(regression.intercept_[0]))

    def logit(self, text: str) -> float:
        """The regression's logit for ``text`` (sublinear TF x IDF, L2-normalised per
        vectorizer, dotted with the coefficients)."""
        total = self._bias
        for analyze, table in self._tables:
            counts = Counter(analyze(text))
            dot = 0.0
            squares = 0.0
            for term, count in counts.items():
                known = table.get(term)
                if known is None:
                    continue
                weight = (1.0 + math.log(count)) * known[0]
                dot += weight * known[1]
                squares += weight * weight
            if squares > 0.0:
                total += dot / math.sqrt(squares)
        return total

    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Probability of injection of each text."""
        logits = np.asarray([self.logit(t) for t in texts], dtype=np.float64)
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def matrix_probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The same through scikit-learn's sparse matrices (the reference the fast path is
        checked against)."""
        features = hstack([v.transform(texts) for v in self._vectorizers.values()]).tocsr()
        logits = np.asarray(features @ self._coef, dtype=np.float64) + self._bias
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def save(self, path: Path) -> None:
        """Write the model as JSON."""
        data = {
            "vectorizers": {
                kind: {
                    "vocabulary": {term: int(i) for term, i in v.vocabulary_.items()},
                    "idf": v.idf_.tolist(),
                }
                for kind, v in self._vectorizers.items()
            },
            "coef": self._coef.tolist(),
            "bias": self._bias,
        }
        path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    @classmethod
    def load(cls, path: Path) -> LexicalModel:
        """Read a model written by :meth:`save` (ValueError when it is malformed)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            vectorizers = {}
            for kind in _VECTORIZERS:
                stored = data["vectorizers"][kind]
                vectorizer = _vectorizer(kind, dict(stored["vocabulary"]))
                vectorizer.idf_ = np.asarray(stored["idf"], dtype=np.float64)
                vectorizers[kind] = vectorizer
            coef = np.asarray(data["coef"], dtype=np.float64)
            width = sum(len(v.vocabulary_) for v in vectorizers.values())
            if coef.shape != (width,):
                raise ValueError(f"{coef.shape[0]} coefficients for {width} features")
            return cls(vectorizers, coef, float(data["bias"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a lexical model ({exc})") from None
