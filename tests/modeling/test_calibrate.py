"""The calibrator: Platt or isotonic, chosen on held-out folds, saved as plain numbers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from winmodel.modeling.calibrate import ISOTONIC_FLOOR, Calibrator, sigmoid


def _slice(n: int, seed: int = 0, bend: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 1.5, n)
    won = (rng.random(n) < sigmoid(bend * raw + 0.3 * np.sin(3 * raw))).astype(int)
    return raw, won


def test_platt_equals_scikit_learns_logistic_map():
    raw, won = _slice(3000)
    calibrator = Calibrator("platt").fit(raw, won)
    reference = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), won)
    grid = np.linspace(-6, 6, 101)
    expected = np.clip(reference.predict_proba(grid.reshape(-1, 1))[:, 1], 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(calibrator.transform(grid), expected, atol=1e-12)


def test_isotonic_equals_scikit_learns_steps_plus_the_tie_breaker():
    raw, won = _slice(5000, seed=1)
    calibrator = Calibrator("isotonic").fit(raw, won)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        sigmoid(raw), won
    )
    grid = np.linspace(-8, 8, 201)
    expected = 0.999 * reference.predict(sigmoid(grid)) + 0.001 * sigmoid(grid)
    expected = np.clip(expected, ISOTONIC_FLOOR, 1 - ISOTONIC_FLOOR)
    np.testing.assert_allclose(calibrator.transform(grid), expected, atol=1e-12)
    assert np.all(np.diff(calibrator.transform(grid)) >= 0)


def test_auto_uses_platt_on_few_deals_and_chooses_by_held_out_log_loss_on_many():
    raw, won = _slice(400, seed=2)
    assert Calibrator("auto", isotonic_min_deals=1000).fit(raw, won).method_ == "platt"
    raw, won = _slice(20_000, seed=3, bend=2.5)
    chosen = Calibrator("auto", isotonic_min_deals=1000).fit(raw, won).method_
    assert chosen in ("platt", "isotonic")


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_the_saved_map_gives_the_same_probabilities(method):
    raw, won = _slice(4000, seed=4)
    calibrator = Calibrator(method).fit(raw, won)
    restored = Calibrator.from_dict(calibrator.to_dict())
    grid = np.linspace(-7, 7, 301)
    np.testing.assert_array_equal(restored.transform(grid), calibrator.transform(grid))
    assert restored.transform(np.zeros(0)).size == 0


@pytest.mark.parametrize(
    "spec",
    [{"method": "spline"}, {"method": "isotonic", "thresholds": [0.1], "values": []}, {}],
)
def test_a_map_this_version_does_not_know_is_refused(spec):
    with pytest.raises(ValueError):
        Calibrator.from_dict(spec)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_the_map_never_decreases_even_on_a_slice_ranked_backwards(method):
    raw, won = _slice(3000, seed=4, bend=-1.0)  # the booster ranks this slice backwards
    calibrator = Calibrator(method).fit(raw, won)
    grid = np.linspace(-8, 8, 801)
    assert (np.diff(calibrator.transform(grid)) >= 0).all()
    if method == "platt":
        assert calibrator.slope_ == 0.0
        assert calibrator.transform(np.zeros(1))[0] == pytest.approx(won.mean(), abs=1e-6)
