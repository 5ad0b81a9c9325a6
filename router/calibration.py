"""Calibrated confidence: P(the chosen intent is right) from two similarity features.

A logistic model over the best class's score and its margin over the runner-up,
fitted on the DEV portions only (``python -m router.calibrate``) and stored
with the low-confidence threshold in ``data/router/calibration.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from embeddings.store import write_json_atomic
from runtime import paths

DEFAULT_PATH = paths.data_dir("router", "calibration.json")
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Calibration:
    """The fitted confidence model and the operating threshold."""

    w_top: float
    """Weight of the best class's score."""
    w_gap: float
    """Weight of its margin over the second-best class."""
    bias: float
    """Intercept."""
    threshold: float
    """Below this confidence a turn goes to the low-confidence bucket."""
    top_m: int = 2
    """Neighbours averaged per class (see :func:`router.scoring.class_scores`)."""
    neighbours: int = 64
    """Neighbours retrieved per query."""
    quantized: bool = True
    """Fitted on the int8-weight model's scores (False: fp32); the router runs that variant."""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    """How and on what it was fitted (for the record; not used to decide)."""
    negotiation_margin: float = 0.03
    """The negotiation worker moves money: a message goes there only this far ahead of
    the best policy class and of out of scope; closer, the customer is asked
    which they mean ("know how refunds work, or ask for a refund?")."""
    min_top: float = 0.0
    """Below this best-class score a message is low-confidence whatever its margin: it is
    near nothing the index knows (a long injection with a short request inside scores
    like that). Fitted as a low quantile of the right in-scope DEV rows' scores."""

    def confidence(self, top: float, gap: float) -> float:
        """P(correct) for one query."""
        z = self.w_top * top + self.w_gap * gap + self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> Calibration:
        """Read a calibration file; ValueError names what is wrong."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            model = raw["model"]
            return cls(
                w_top=float(model["w_top"]),
                w_gap=float(model["w_gap"]),
                bias=float(model["bias"]),
                threshold=float(raw["threshold"]),
                top_m=int(raw["top_m"]),
                neighbours=int(raw["neighbours"]),
                quantized=bool(raw["quantized"]),
                min_top=float(raw.get("min_top", 0.0)),
                negotiation_margin=float(raw.get("negotiation_margin", 0.03)),
                provenance=dict(raw.get("provenance", {})),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: not a router calibration ({exc}); refit with `python -m router.calibrate`"
            ) from None

    def save(self, path: Path, *, extra: Mapping[str, Any] | None = None) -> None:
        """Write the calibration (and ``extra`` figures, e.g. the dev curve) as JSON."""
        payload: dict[str, Any] = {
            "model": {
                "w_top": self.w_top,
                "w_gap": self.w_gap,
                "bias": self.bias,
            },
            "threshold": self.threshold,
            "top_m": self.top_m,
            "neighbours": self.neighbours,
            "quantized": self.quantized,
            "min_top": self.min_top,
            "negotiation_margin": self.negotiation_margin,
            "provenance": dict(self.provenance),
        }
        payload.update(extra or {})
        write_json_atomic(path, payload)


def fit_logistic(
    features: Floats, target: Floats, weights: Floats, *, l2: float = 1e-3, iterations: int = 50
) -> tuple[Floats, float]:
    """Weighted logistic regression by Newton's method; (coefficients, intercept).

    Small and exact enough for two features and a few thousand rows; a light
    L2 penalty keeps it finite when the classes separate perfectly.
    """
    n, d = features.shape
    x = np.hstack([features, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    w = weights / weights.sum()
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -50, 50)))
        gradient = x.T @ (w * (p - target)) + penalty * beta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-9 * np.eye(d + 1), gradient)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return beta[:d], float(beta[-1])
