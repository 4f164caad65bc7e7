"""Tests of the horizon model (winmodel.modeling.horizon): coherence, censoring, calibration against the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from winmodel.modeling.horizon import (
    HORIZON_COLUMNS,
    anchored_curves,
    expected_close_curves,
    horizon_columns,
    horizon_curves,
    integrated_brier,
    person_period_rows,
    stage_curves,
)

FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "models"


def test_anchored_curves_are_coherent_by_construction():
    """Any hazards give curves that sum to 1, never decrease (open never increases) and tend to P(won)."""
    rng = np.random.default_rng(0)
    total = rng.uniform(0.0, 0.6, (200, 7))
    share = rng.uniform(0.0, 1.0, (200, 7))
    p_won = rng.uniform(0.0, 1.0, 200)
    won, lost, still_open = anchored_curves(total * share, total * (1 - share), p_won, months=400)
    np.testing.assert_allclose(won + lost + still_open, 1.0, atol=1e-12)
    assert (np.diff(won, axis=1) >= -1e-12).all() and (np.diff(lost, axis=1) >= -1e-12).all()
    assert (np.diff(still_open, axis=1) <= 1e-12).all()
    assert (won <= p_won[:, None] + 1e-12).all()
    slow = total[:, -1] > 0.05  # the tail closes within 400 months
    np.testing.assert_allclose(won[slow, -1], p_won[slow], atol=1e-6)


def _history(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["opportunity_id", "as_of_date", "created_date", "close_date", "status"]
    )
    for column in ("as_of_date", "created_date", "close_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def test_person_period_rows_censor_open_deals_and_label_the_outcome_month():
    """A deal won in March from a January origin gives Jan/Feb open and Mar won; an open one stops at the last
    complete month; an outcome after the as-of date counts as still open."""
    history = _history(
        [
            ("A", "2026-01-05", "2026-01-01", "2026-03-10", "won"),
            ("B", "2026-01-05", "2026-01-01", "2026-12-31", "open"),
            ("C", "2026-01-05", "2026-01-01", "2026-06-20", "lost"),
        ]
    )
    origins, origin, offset, label = person_period_rows(
        history, pd.Timestamp("2026-04-15"), origin_stride=1
    )
    by_deal = {
        deal: label[origin == i].tolist() for i, deal in enumerate(origins["opportunity_id"])
    }
    assert by_deal == {"A": [0, 0, 1], "B": [0, 0, 0], "C": [0, 0, 0]}
    assert offset[origin == 0].tolist() == [0, 1, 2]


@pytest.fixture(scope="module")
def open_curves(trained_project, trained_model):
    """The history, and the horizon curves and columns of every open deal of the test project, as scored today."""
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import add_history_features, open_deal_rows

    crm = load_crm_data(trained_project.data)
    rows, _ = open_deal_rows(crm)
    p_won = trained_model.predict_proba(rows)
    assert trained_model.horizon is not None
    curves = horizon_curves(trained_model.horizon, trained_model, rows, p_won)
    history = add_history_features(crm.opportunities, crm.snapshots)
    return history, crm.as_of, rows, p_won, curves, horizon_columns(curves, rows)


def test_every_open_deal_has_a_coherent_curve(open_curves):
    """Won + lost + open = 1 at every month, won never decreases and its limit is the calibrated P(won)."""
    _, _, rows, p_won, curves, columns = open_curves
    assert len(rows) > 300
    np.testing.assert_allclose(curves.won + curves.lost + curves.open, 1.0, atol=1e-9)
    assert (np.diff(curves.won, axis=1) >= -1e-12).all()
    assert (np.diff(curves.open, axis=1) <= 1e-12).all()
    assert (curves.won <= p_won[:, None] + 1e-9).all()
    np.testing.assert_allclose(curves.p_won, p_won)
    # Most deals are decided within three years; those are within a hair of their P(won).
    decided = curves.open[:, -1] < 1e-3
    assert decided.mean() > 0.9
    np.testing.assert_allclose(curves.won[decided, -1], p_won[decided], atol=2e-3)
    assert list(columns.columns) == list(HORIZON_COLUMNS)
    month, quarter, next_quarter = (columns[name].to_numpy() for name in HORIZON_COLUMNS[:3])
    assert (month <= quarter + 1e-12).all() and (quarter <= next_quarter + 1e-12).all()
    assert (next_quarter <= p_won + 1e-9).all()
    quarter_sum = columns[["p_won_this_quarter", "p_lost_this_quarter", "p_open_end_of_quarter"]]
    np.testing.assert_allclose(quarter_sum.sum(axis=1), 1.0, atol=1e-9)


def _truth(small_history, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    timing = small_history.truth_timing
    ids = rows["opportunity_id"].astype(str)
    won = timing.pivot(index="opportunity_id", columns="month_offset", values="p_won_by_end")
    lost = timing.pivot(index="opportunity_id", columns="month_offset", values="p_lost_by_end")
    return won.loc[ids].to_numpy(), lost.loc[ids].to_numpy()


def test_horizons_are_calibrated_against_the_generators_truth(open_curves, small_history):
    """Per month-end horizon, P(won by then) and P(lost by then) are near the true ones, overall and by fifth."""
    _, _, rows, _, curves, _ = open_curves
    won_by, lost_by = _truth(small_history, rows)
    for month in range(1, won_by.shape[1]):
        assert abs(curves.won[:, month].mean() - won_by[:, month].mean()) < 0.05, month
        assert abs(curves.lost[:, month].mean() - lost_by[:, month].mean()) < 0.07, month
        order = np.argsort(curves.won[:, month])
        for part in np.array_split(order, 5):
            assert abs(curves.won[part, month].mean() - won_by[part, month].mean()) < 0.08, month


def test_integrated_brier_beats_stage_curves_and_the_expected_date(open_curves, small_history):
    """Against the truth, winmodel's curves score a lower integrated Brier than Aalen-Johansen by stage and
    than P(won) placed at the CRM's expected close date."""
    history, as_of, rows, p_won, curves, _ = open_curves
    won_by, lost_by = _truth(small_history, rows)
    scores = {
        "winmodel": integrated_brier((curves.won, curves.lost, curves.open), won_by, lost_by),
        "stage": integrated_brier(stage_curves(history, as_of, rows), won_by, lost_by),
        "expected_date": integrated_brier(expected_close_curves(rows, p_won), won_by, lost_by),
    }
    assert scores["winmodel"] < scores["stage"] < scores["expected_date"], scores


def test_a_model_saved_without_horizons_loads_and_scores_without_the_columns(small_history):
    """The committed format-1 model has no horizon files: it loads, and no horizon column is invented."""
    from winmodel.features.rows import add_history_features, select_latest_rows
    from winmodel.modeling.model_format import load_model
    from winmodel.scoring.horizons import horizon_block

    model = load_model(FIXTURES / "format-1" / "model")
    assert model.horizon is None
    history = add_history_features(small_history.opportunities, small_history.snapshots)
    rows = select_latest_rows(history[history["status"].eq("open")]).head(20)
    block = horizon_block(model, rows, model.predict_proba(rows))
    assert block.columns.empty and len(block) == 20


def test_saving_and_loading_keeps_the_horizon_model(trained_model, tmp_path, open_curves):
    """The horizon files travel with the model: the curves after loading are the same."""
    from winmodel.modeling.model_format import load_model, save_model

    _, _, rows, p_won, curves, _ = open_curves
    loaded = load_model(save_model(trained_model, tmp_path / "model"))
    assert loaded.horizon is not None
    again = horizon_curves(loaded.horizon, loaded, rows, p_won)
    np.testing.assert_allclose(again.won, curves.won)
    assert "holdout" in loaded.horizon.metadata


def test_the_numba_walk_gives_lightgbms_hazards(trained_model, open_curves):
    """The horizon hazards from the numba walk equal LightGBM's predict on every person-month row."""
    from winmodel.modeling.horizon import INTERVAL_FEATURES, LOST, WON, _matrix, hazards

    _, _, rows, _, _, _ = open_curves
    horizon = trained_model.horizon
    assert horizon is not None and horizon.scores is not None
    rows = rows.reset_index(drop=True)
    won, lost = hazards(horizon, trained_model, rows)
    width = horizon.max_offset + 1
    origin = np.repeat(np.arange(len(rows)), width)
    offset = np.tile(np.arange(width), len(rows))
    full = _matrix(trained_model, rows, origin, offset)
    assert full.shape[1] == len(trained_model.feature_names) + len(INTERVAL_FEATURES)
    expected = np.asarray(horizon.booster.predict(full)).reshape(len(rows), width, 3)
    np.testing.assert_allclose(won, expected[:, :, WON], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lost, expected[:, :, LOST], rtol=0, atol=1e-12)
    # Without the walk (a split kind it lacks), LightGBM's predict gives the same.
    horizon.__dict__["_scores"] = None
    try:
        again = hazards(horizon, trained_model, rows)
    finally:
        del horizon.__dict__["_scores"]
    np.testing.assert_allclose(again[0], won, rtol=0, atol=1e-12)
