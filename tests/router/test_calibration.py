"""The confidence model: fitting, the file format, the shipped calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from router.calibration import DEFAULT_PATH, Calibration, fit_logistic


def test_fit_logistic_recovers_a_known_model() -> None:
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(4000, 2))
    p = 1 / (1 + np.exp(-(3.0 * x[:, 0] - 2.0 * x[:, 1] + 0.5)))
    y = (rng.uniform(size=4000) < p).astype(float)
    coef, bias = fit_logistic(x, y, np.ones(4000), l2=0.0)
    assert coef[0] == pytest.approx(3.0, abs=0.4)
    assert coef[1] == pytest.approx(-2.0, abs=0.4)
    assert bias == pytest.approx(0.5, abs=0.2)


def test_separable_data_stays_finite() -> None:
    x = np.array([[0.0], [0.1], [0.9], [1.0]])
    coef, bias = fit_logistic(x, np.array([0.0, 0.0, 1.0, 1.0]), np.ones(4))
    assert np.all(np.isfinite(coef))
    assert np.isfinite(bias)


def test_round_trip(tmp_path: Path) -> None:
    original = Calibration(1.5, 4.0, -0.2, 0.7, top_m=3, neighbours=32, provenance={"a": 1})
    path = tmp_path / "c.json"
    original.save(path, extra={"dev_curve": []})
    loaded = Calibration.load(path)
    assert loaded == original
    assert loaded.confidence(0.8, 0.2) == pytest.approx(original.confidence(0.8, 0.2))


def test_a_bad_file_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match=r"router\.calibrate"):
        Calibration.load(path)


def test_the_shipped_calibration_was_fitted_on_dev_only() -> None:
    shipped = Calibration.load(DEFAULT_PATH)
    assert shipped.provenance["portion"] == "dev"
    assert 0.0 < shipped.threshold < 1.0
    # More similar and more separated means more confident.
    assert shipped.confidence(0.9, 0.3) > shipped.confidence(0.6, 0.3)
    assert shipped.confidence(0.8, 0.3) > shipped.confidence(0.8, 0.01)
