"""Tests of landed bookings: the forecast's three parts and the replay against every deal won in the period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from winmodel.analysis.forecast import (
    NewDealBookings,
    landed_bookings,
    new_deal_bookings,
    pinball_loss,
)


def _deals(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["created_date", "close_date", "status", "amount"])
    frame["created_date"] = pd.to_datetime(frame["created_date"])
    frame["close_date"] = pd.to_datetime(frame["close_date"])
    return frame


def test_new_deal_bookings_measures_the_same_stretch_of_past_months():
    """As of the 10th, a past month counts the deals created after its 10th and won by its end."""
    deals = _deals(
        [
            ("2026-01-01", "2026-01-20", "won", 999.0),  # created before the cut: known
            ("2026-01-12", "2026-01-25", "won", 100.0),  # created after the cut, won inside
            ("2026-01-15", "2026-02-03", "won", 50.0),  # won after the month
            ("2026-02-11", "2026-02-20", "won", 300.0),
            ("2026-02-12", "2026-02-21", "lost", 70.0),
        ]
    )
    new = new_deal_bookings(deals, pd.Timestamp("2026-03-10"), periods=2)
    assert new.values == (100.0, 300.0)
    assert new.mean == 200.0 and new.std == pytest.approx(np.std([100, 300], ddof=1))
    # A forecast made the day before a month names that month: every creation inside it counts.
    before = new_deal_bookings(
        deals, pd.Timestamp("2026-02-28"), periods=2, period=pd.Period("2026-03", "M")
    )
    assert before.values == (1099.0, 300.0)


def test_landed_bookings_add_the_three_parts_with_a_range():
    amount, probability = np.array([100.0, 200.0, 300.0]), np.array([0.5, 0.25, 0.0])
    result = landed_bookings(
        1000.0, amount, probability, NewDealBookings(40.0, 10.0, (30.0, 50.0)), draws=4000
    )
    assert result.open_expected == pytest.approx(100.0)
    assert result.expected == pytest.approx(1000.0 + 100.0 + 40.0)
    assert 1000.0 < result.p10 <= result.p50 <= result.p90 < 1000.0 + 300.0 + 200.0
    certain = landed_bookings(5.0, amount, np.zeros(3), NewDealBookings(0.0, 0.0, ()))
    assert (certain.p10, certain.p50, certain.p90) == (5.0, 5.0, 5.0)


def test_pinball_loss_weighs_misses_by_the_level():
    assert pinball_loss(np.array([10.0]), np.array([8.0]), 0.9) == pytest.approx(1.8)
    assert pinball_loss(np.array([10.0]), np.array([12.0]), 0.9) == pytest.approx(0.2)
    assert pinball_loss(np.array([10.0, 10.0]), np.array([8.0, 12.0]), 0.5) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def scored_file(trained_project, trained_model, tmp_path_factory):
    """The test project's open deals scored with the champion (amount, dates, P(won), horizons)."""
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import open_deal_rows
    from winmodel.scoring.horizons import horizon_block

    crm = load_crm_data(trained_project.data)
    rows, _ = open_deal_rows(crm)
    probability = trained_model.predict_proba(rows)
    scored = pd.concat(
        [
            pd.DataFrame(
                {
                    "opportunity_id": rows["opportunity_id"],
                    "amount": rows["amount"],
                    "close_date": rows["expected_close_date"],
                    "win_probability": probability,
                }
            ),
            horizon_block(trained_model, rows, probability),
        ],
        axis=1,
    )
    path = tmp_path_factory.mktemp("scored") / "scored.csv"
    scored.to_csv(path, index=False)
    return path, crm


def test_forecast_shows_this_months_and_this_quarters_landed_bookings(
    trained_project, scored_file, tmp_path
):
    """Already won (from the CRM) + open deals x P(won in the period) + deals not yet created."""
    from rich.console import Console

    from winmodel.jobs.forecast import run_forecast

    path, crm = scored_file
    console = Console(record=True, width=200)
    outcome = run_forecast(
        path,
        out=tmp_path / "forecast.csv",
        model_dir=trained_project.export_dir,
        data=trained_project.data,
        console=console,
    )
    landed = outcome.landed
    assert landed is not None and landed["period"].tolist() == ["2026-10", "2026Q4"]
    opportunities = crm.opportunities
    quarter_won = opportunities["status"].eq("won") & opportunities["close_date"].between(
        "2026-10-01", crm.as_of
    )
    quarter = landed.set_index("period").loc["2026Q4"]
    assert quarter["already_won"] == pytest.approx(opportunities.loc[quarter_won, "amount"].sum())
    scored = pd.read_csv(path)
    assert quarter["open_expected"] == pytest.approx(
        (scored["amount"] * scored["p_won_this_quarter"]).sum(), rel=1e-6
    )
    assert quarter["expected"] == pytest.approx(
        quarter["already_won"] + quarter["open_expected"] + quarter["new_deals_expected"]
    )
    assert quarter["new_deals_expected"] > 0
    assert quarter["p10"] < quarter["expected"] < quarter["p90"]
    assert (tmp_path / "forecast-landed.csv").is_file()
    assert "deals not yet created" in console.export_text()


def test_landed_replay_compares_four_methods_with_what_was_booked(trained_project, trained_model):
    """Two replayed months (one refit): every method forecasts each month; the actual is every deal won in it."""
    from winmodel.analysis.replay import backtest_landed_bookings, landed_actual
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import add_history_features, build_training_rows
    from winmodel.settings import load_train_config

    config = load_train_config(trained_project.config)
    crm = load_crm_data(trained_project.data)
    history = add_history_features(crm.opportunities, crm.snapshots)
    rows, _ = build_training_rows(crm, config, history)
    backtest = backtest_landed_bookings(
        trained_model,
        rows,
        history,
        crm.opportunities,
        config,
        as_of=crm.as_of,
        periods=2,
        warmup_periods=1,
        refit_every=10,
        draws=2000,
    )
    table = backtest.periods
    assert table["period"].unique().tolist() == ["2026-09", "2026-10"]
    assert set(table["method"]) == {"winmodel", "pwon_expected_date", "stage_weighted", "run_rate"}
    for period, part in table.groupby("period"):
        assert (part["actual"] == landed_actual(crm.opportunities, pd.Period(period, "M"))).all()
    winmodel = table[table["method"] == "winmodel"]
    assert (winmodel["new_deals_expected"] > 0).all()
    assert ((winmodel["p10"] <= winmodel["p50"]) & (winmodel["p50"] <= winmodel["p90"])).all()
    summary = backtest.summary.set_index("method")
    assert summary.loc["winmodel", "periods"] == 2
    assert np.isfinite(summary[["mae", "pinball_p10", "pinball_p50", "pinball_p90"]]).all().all()


def test_score_with_horizon_quarter_says_why_a_deal_will_not_close_this_quarter(
    trained_project, tmp_path
):
    """--horizon quarter adds reasons_not_this_quarter, worded from the reasons' sentence catalogue."""
    from rich.console import Console

    from winmodel.jobs.score import run_score

    scored = run_score(
        config_path=None,
        input_path=trained_project.data,
        output=tmp_path / "scored.csv",
        model_uri=str(trained_project.export_dir),
        console=Console(quiet=True),
        log_to_mlflow=False,
        horizon="quarter",
    ).scored
    reasons = scored["reasons_not_this_quarter"]
    assert (reasons != "").mean() > 0.9
    # Each names at most three items with the points they take off P(won this quarter).
    first = reasons[reasons != ""].str.split("; ")
    assert first.map(len).max() <= 3
    assert reasons[reasons != ""].str.contains("pts").all()
    # Only items that hold the quarter down (a tiny one may print as "+0.0 pts" once rounded).
    assert not reasons.str.contains(r"\(\+(?:[1-9]|0\.[1-9])[0-9.]* pts\)", regex=True).any()
    # The columns stay coherent beside it.
    assert (scored["p_won_this_quarter"] <= scored["win_probability"] + 1e-6).all()
