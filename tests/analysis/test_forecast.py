"""Tests of the forecast: the bookings distribution, period grouping, the replay's honesty, and the command."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from winmodel import cli
from winmodel.analysis.forecast import bookings_distribution, forecast_by_period
from winmodel.analysis.replay import open_deals_at, resolved_periods

# --------------------------------------------------------------------------- the distribution


def test_mean_is_the_probability_weighted_amount_on_both_paths():
    amount = np.array([100.0, 250.0, 40.0, 1_000.0])
    probability = np.array([0.2, 0.5, 0.9, 0.05])
    exact = bookings_distribution(amount, probability)
    sampled = bookings_distribution(amount, probability, exact_max_deals=0, draws=5_000)
    assert exact.mean == pytest.approx(float(amount @ probability))
    assert sampled.mean == exact.mean  # the mean is exact either way, never sampled
    assert exact.std == pytest.approx(np.sqrt(np.sum(amount**2 * probability * (1 - probability))))


@pytest.mark.parametrize("exact_max_deals", [12, 0], ids=["exact", "monte-carlo"])
def test_a_single_deals_quantiles_are_nothing_or_its_amount(exact_max_deals):
    likely = bookings_distribution([500.0], [0.7], exact_max_deals=exact_max_deals)
    assert (likely.p10, likely.p50, likely.p90) == (0.0, 500.0, 500.0)
    unlikely = bookings_distribution([500.0], [0.3], exact_max_deals=exact_max_deals)
    assert (unlikely.p10, unlikely.p50, unlikely.p90) == (0.0, 0.0, 500.0)
    certain = bookings_distribution([500.0], [1.0], exact_max_deals=exact_max_deals)
    assert (certain.p10, certain.p90) == (500.0, 500.0)


def test_exact_quantiles_of_two_deals():
    # Outcomes 0, 100, 200, 300 with chances 0.3, 0.3, 0.2, 0.2 (deal of 100 at 0.5, deal of 200 at 0.4).
    bookings = bookings_distribution([100.0, 200.0], [0.5, 0.4])
    assert (bookings.p10, bookings.p50, bookings.p90) == (0.0, 100.0, 300.0)


def test_a_fixed_seed_is_reproducible_whatever_the_chunks():
    rng = np.random.default_rng(1)
    amount, probability = rng.uniform(1e3, 1e5, 400), rng.uniform(0, 1, 400)
    first = bookings_distribution(amount, probability, seed=7, draws=3_000)
    again = bookings_distribution(amount, probability, seed=7, draws=3_000, chunk_cells=10_000)
    other = bookings_distribution(amount, probability, seed=8, draws=3_000)
    assert first == again
    assert first != other
    shifted = bookings_distribution(amount, probability, shift_sigma=0.3, seed=7, draws=3_000)
    assert shifted == bookings_distribution(
        amount, probability, shift_sigma=0.3, seed=7, draws=3_000, chunk_cells=10_000
    )
    assert first.p10 < first.p50 < first.p90
    # Many independent deals: close to the normal approximation.
    assert first.p50 == pytest.approx(first.mean, rel=0.02)
    assert first.p90 - first.p10 == pytest.approx(2 * 1.2816 * first.std, rel=0.08)


def test_exact_and_monte_carlo_agree():
    rng = np.random.default_rng(2)
    amount, probability = rng.uniform(1, 10, 10), rng.uniform(0.1, 0.9, 10)
    exact = bookings_distribution(amount, probability)
    sampled = bookings_distribution(amount, probability, exact_max_deals=0, draws=40_000)
    assert sampled.p50 == pytest.approx(exact.p50, abs=1.5)
    assert sampled.p90 == pytest.approx(exact.p90, abs=1.5)


def test_blank_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        bookings_distribution([100.0, np.nan], [0.5, 0.5])
    assert bookings_distribution([], []).mean == 0.0


# --------------------------------------------------------------------------- the shared shift


def _shifted_totals(amount, probability, sigma, draws, seed):
    """Give totals simulated the plain way: one normal shift of all log-odds per draw, then coin flips."""
    from scipy.special import expit, logit

    rng = np.random.default_rng(seed)
    shift = rng.normal(0.0, sigma, (draws, 1))
    # The band keeps each deal's average probability: log-odds stretched as in winmodel.analysis.forecast.
    log_odds = logit(probability) * np.sqrt(1 + np.pi * sigma**2 / 8)
    return (rng.random((draws, len(amount))) < expit(log_odds + shift)) @ amount


def test_a_shared_shift_keeps_the_mean_and_widens_the_band_as_simulated():
    rng = np.random.default_rng(3)
    amount, probability = rng.uniform(1e3, 1e5, 300), rng.uniform(0.05, 0.95, 300)
    independent = bookings_distribution(amount, probability, draws=20_000)
    shifted = bookings_distribution(amount, probability, shift_sigma=0.3, draws=20_000)
    assert shifted.mean == independent.mean == pytest.approx(float(amount @ probability))
    assert shifted.p90 - shifted.p10 > 1.3 * (independent.p90 - independent.p10)
    simulated = _shifted_totals(amount, probability, 0.3, 40_000, seed=4)
    # The centred shift keeps the average: the simulated mean matches sum(amount * p).
    assert simulated.mean() == pytest.approx(shifted.mean, rel=0.005)
    assert shifted.std == pytest.approx(simulated.std(), rel=0.03)
    for level, value in zip((0.1, 0.5, 0.9), (shifted.p10, shifted.p50, shifted.p90), strict=True):
        assert value == pytest.approx(np.quantile(simulated, level), rel=0.01)


def test_a_shared_shift_on_the_exact_path_matches_monte_carlo():
    rng = np.random.default_rng(5)
    amount, probability = rng.uniform(1, 10, 9), rng.uniform(0.1, 0.9, 9)
    exact = bookings_distribution(amount, probability, shift_sigma=0.8)
    sampled = bookings_distribution(
        amount, probability, shift_sigma=0.8, exact_max_deals=0, draws=60_000
    )
    simulated = _shifted_totals(amount, probability, 0.8, 200_000, seed=9)
    assert exact.std == pytest.approx(simulated.std(), rel=0.01)
    assert exact.std > bookings_distribution(amount, probability).std
    assert sampled.p10 == pytest.approx(exact.p10, abs=1.5)
    assert sampled.p90 == pytest.approx(exact.p90, abs=1.5)
    with pytest.raises(ValueError, match="shift_sigma"):
        bookings_distribution(amount, probability, shift_sigma=-0.1)


def test_period_shift_finds_the_shift_that_made_the_outcomes():
    from scipy.special import expit, logit

    from winmodel.analysis.forecast import period_shift

    rng = np.random.default_rng(6)
    amount, probability = rng.uniform(1e3, 5e4, 40_000), rng.uniform(0.05, 0.9, 40_000)
    won = rng.random(40_000) < expit(logit(probability) + 0.4)
    shift, standard_error = period_shift(amount, probability, won)
    assert abs(shift - 0.4) < 3 * standard_error
    assert 0.005 < standard_error < 0.05
    # Nothing won: half the smallest deal counts as won, a large finite shift (and the period still counts).
    nothing, _ = period_shift(amount[:10], probability[:10], np.zeros(10, dtype=bool))
    everything, _ = period_shift(amount[:10], probability[:10], np.ones(10, dtype=bool))
    assert -20 < nothing < -1 and 1 < everything < 20
    assert period_shift(np.zeros(3), probability[:3], won[:3]) is None


def _errors_table(shifts, deals=1_500, seed=7, start="2024-01"):
    """Give a forecast-error table of monthly periods whose outcomes moved by ``shifts`` (log-odds)."""
    from scipy.special import expit, logit

    rng = np.random.default_rng(seed)
    frames = []
    for offset, shift in enumerate(shifts):
        period = pd.Period(start, "M") + offset
        probability = rng.uniform(0.05, 0.8, deals)
        won = rng.random(deals) < expit(logit(probability) + shift)
        frames.append(
            pd.DataFrame(
                {
                    "period": str(period),
                    "opportunity_id": [f"{period}-{i}" for i in range(deals)],
                    "amount": rng.uniform(1e3, 1e5, deals),
                    "probability": probability,
                    "status": np.where(won, "won", "lost"),
                    "close_date": period.start_time
                    + pd.to_timedelta(rng.integers(0, 120, deals), unit="D"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_the_shared_shift_is_measured_from_resolved_months_only():
    from winmodel.analysis.forecast import estimate_shared_shift
    from winmodel.settings import MIN_SHIFT_PERIODS

    moving = _errors_table(np.random.default_rng(8).normal(0.0, 0.3, 18))
    after = pd.Timestamp("2026-01-01")
    measured = estimate_shared_shift(moving, after)
    assert measured.measured and len(measured.periods) == 12  # the latest 12 of 18 resolved months
    assert 0.15 < measured.sigma < 0.5
    assert (
        estimate_shared_shift(_errors_table(np.zeros(18)), after).sigma < 0.08
    )  # independent deals: ~0

    # Deals close within 120 days of their month's start: on 2024-06-01 January and February are
    # resolved, March (closing until late June) is not, April and May even less.
    early = estimate_shared_shift(moving, pd.Timestamp("2024-06-01"))
    assert early.periods["period"].tolist() == ["2024-01", "2024-02"]
    assert not early.measured and early.sigma == 0.0
    assert "independent" in early.describe() and str(MIN_SHIFT_PERIODS) in early.describe()
    # Outcomes after the day do not count, whatever they are. On 2024-12-28 September is resolved with its
    # last 3 of 120 closing days still to come: its deals closing then are left out of its shift.
    cutoff = pd.Timestamp("2024-12-28")
    honest = estimate_shared_shift(moving, cutoff)
    september = honest.periods.set_index("period").loc["2024-09"]
    assert honest.periods["period"].iloc[-1] == "2024-09" and 1_400 < september["deals"] < 1_500
    later = moving["close_date"] >= cutoff
    flipped = moving.assign(
        status=moving["status"].where(~later, moving["status"].map({"won": "lost", "lost": "won"}))
    )
    assert later[moving["period"] == "2024-09"].any()
    assert estimate_shared_shift(flipped, cutoff).sigma == honest.sigma


# --------------------------------------------------------------------------- periods


@pytest.fixture
def scored() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["A", "B", "C", "D", "E"],
            "amount": [100.0, 200.0, 300.0, 400.0, 50.0],
            "close_date": pd.to_datetime(
                ["2026-01-05", "2026-01-30", "2026-02-14", "2026-04-01", None]
            ),
            "win_probability": [0.5, 0.25, 0.1, 0.9, 0.5],
            "crm_probability": [20.0, 40.0, 60.0, 80.0, 10.0],
        }
    )


def test_forecast_groups_by_expected_close_month_with_a_total(scored):
    table = forecast_by_period(scored).set_index("period")
    assert list(table.index) == ["2026-01", "2026-02", "2026-04", "total"]
    assert table.loc["2026-01", "deals"] == 2
    assert table.loc["2026-01", "pipeline_amount"] == 300.0
    assert table.loc["2026-01", "expected"] == pytest.approx(100 * 0.5 + 200 * 0.25)
    assert table.loc["2026-01", "crm_weighted"] == pytest.approx(100 * 0.2 + 200 * 0.4)
    assert table.loc["total", "deals"] == 4  # the deal without a close date is left out
    assert table.loc["total", "expected"] == pytest.approx(
        table.drop(index="total")["expected"].sum()
    )


def test_forecast_by_quarter_and_without_crm_probability(scored):
    table = forecast_by_period(scored.drop(columns="crm_probability"), by="quarter").set_index(
        "period"
    )
    assert list(table.index) == ["2026Q1", "2026Q2", "total"]
    assert table.loc["2026Q1", "deals"] == 3
    assert table["crm_weighted"].isna().all()
    with pytest.raises(ValueError, match=r"month.*or.*quarter"):
        forecast_by_period(scored, by="week")


def test_resolved_periods_end_by_the_as_of_date():
    assert [str(p) for p in resolved_periods(pd.Timestamp("2026-10-31"), "month", 3)] == [
        "2026-08",
        "2026-09",
        "2026-10",
    ]
    assert [str(p) for p in resolved_periods(pd.Timestamp("2026-10-30"), "month", 2)] == [
        "2026-08",
        "2026-09",
    ]
    assert [str(p) for p in resolved_periods(pd.Timestamp("2026-10-31"), "quarter", 2)] == [
        "2026Q2",
        "2026Q3",
    ]


def test_open_deals_at_a_cutoff_use_what_was_known_then():
    day = pd.Timestamp
    history = pd.DataFrame(
        {
            "opportunity_id": [
                "closed_before",
                "closed_before",
                "closes_on_cutoff",
                "closes_on_cutoff",
                "created_after",
                "open",
                "open",
                "won_later",
                "won_later",
            ],
            "as_of_date": [
                day("2026-01-10"),
                day("2026-02-20"),
                day("2026-02-25"),
                day("2026-03-01"),
                day("2026-03-05"),
                day("2026-02-22"),
                day("2026-03-08"),
                day("2026-02-27"),
                day("2026-03-20"),
            ],
            "created_date": [day("2026-01-01")] * 4 + [day("2026-03-02")] + [day("2026-02-01")] * 4,
            "close_date": [day("2026-02-20")] * 2
            + [day("2026-03-01")] * 2
            + [day("2026-04-01")]
            + [day("2026-05-01")] * 2
            + [day("2026-04-15")] * 2,
            "status": ["lost", "lost", "won", "won", "open", "open", "open", "won", "won"],
        }
    )
    rows = open_deals_at(history, day("2026-03-01")).set_index("opportunity_id")
    assert sorted(rows.index) == ["closes_on_cutoff", "open", "won_later"]
    # The row of a deal's own close day shows the outcome: the state before it is used.
    assert rows.loc["closes_on_cutoff", "as_of_date"] == day("2026-02-25")
    assert rows.loc["open", "as_of_date"] == day("2026-02-22")
    assert (rows["as_of_date"] <= day("2026-03-01")).all()


# --------------------------------------------------------------------------- the replay


@pytest.fixture(scope="module")
def replay_inputs(trained_project):
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import add_history_features, build_training_rows
    from winmodel.settings import load_train_config

    config = load_train_config(trained_project.config)
    crm = load_crm_data(trained_project.data)
    rows, _ = build_training_rows(crm, config)
    history = add_history_features(crm.opportunities, crm.snapshots)
    final_amount = crm.opportunities.set_index("opportunity_id")["amount"]
    return config, crm, rows, history, final_amount


def test_replay_refits_only_on_outcomes_known_at_each_period_start(
    trained_model, replay_inputs, monkeypatch
):
    import winmodel.modeling.train
    from winmodel.analysis.replay import backtest_forecast

    config, crm, rows, history, final_amount = replay_inputs
    # Every set of rows the refit learns from (training, validation, train + validation) is chosen by
    # one of these two masks, whichever way the booster is then fitted.
    selected: list[pd.DataFrame] = []
    train_mask, window = winmodel.modeling.train._train_mask, winmodel.modeling.train._window

    def spying_train_mask(frame, *args, **kwargs):
        mask = train_mask(frame, *args, **kwargs)
        selected.append(frame.loc[mask, ["close_date", "as_of_date"]])
        return mask

    def spying_window(frame, *args, **kwargs):
        mask = window(frame, *args, **kwargs)
        selected.append(frame.loc[mask, ["close_date", "as_of_date"]])
        return mask

    used = []
    refit_at = winmodel.modeling.train.refit_at

    def spying_refit(model, training_rows, cutoff, train_config):
        selected.clear()
        refitted = refit_at(model, training_rows, cutoff, train_config)
        used.append((pd.Timestamp(cutoff), pd.concat(selected)))
        return refitted

    monkeypatch.setattr(winmodel.modeling.train, "_train_mask", spying_train_mask)
    monkeypatch.setattr(winmodel.modeling.train, "_window", spying_window)
    replay = backtest_forecast(
        trained_model,
        rows,
        history,
        final_amount,
        config,
        as_of=crm.as_of,
        periods=2,
        warmup_periods=3,
        draws=2_000,
        refit=spying_refit,
    )
    # Judged against each period's first day (replayed, or earlier ones replayed to measure the shared
    # shift), whatever the replay passed to the refit.
    cutoffs = pd.to_datetime(replay.periods.drop_duplicates("period")["cutoff"]).tolist()
    refit_days = [day for day, _ in used]
    assert refit_days == sorted(refit_days) and refit_days[-2:] == cutoffs
    assert len(used) > 2 and refit_days[0] < cutoffs[0]  # the warm-up periods were refitted too
    first = pd.Period(cutoffs[0], "M")
    assert {pd.Period(day, "M") for day in refit_days[:-2]} <= {first - k for k in (1, 2, 3)}
    for cutoff, seen in used:
        assert len(seen) > 0
        assert (seen["close_date"] < cutoff).all(), (
            "the refit learned from an outcome after the period start"
        )
        assert (seen["as_of_date"] < cutoff).all()
    table = replay.periods
    assert list(table["method"]) == ["winmodel", "stage_weighted"] * 2
    assert (table["p10"] <= table["forecast"]).all() and (table["forecast"] <= table["p90"]).all()
    assert set(replay.summary["method"]) == {"winmodel", "stage_weighted"}
    assert (
        replay.summary["mae"].ge(0).all() and replay.summary["coverage_p10_p90"].between(0, 1).all()
    )


def test_replay_forecast_does_not_change_when_later_outcomes_do(trained_model, replay_inputs):
    from winmodel.analysis.replay import backtest_forecast

    config, crm, rows, history, final_amount = replay_inputs
    honest = backtest_forecast(
        trained_model, rows, history, final_amount, config, as_of=crm.as_of, periods=2, draws=2_000
    ).periods
    # Rewrite every outcome after the last replayed period began: nothing the replay said may change.
    cutoff = pd.Timestamp(honest["cutoff"].max())
    flip = {"won": "lost", "lost": "won"}

    def flipped_after(frame: pd.DataFrame) -> pd.DataFrame:
        later = frame["close_date"] >= cutoff
        return frame.assign(status=frame["status"].where(~later, frame["status"].replace(flip)))

    rewritten = backtest_forecast(
        trained_model,
        flipped_after(rows),
        flipped_after(history),
        final_amount,
        config,
        as_of=crm.as_of,
        periods=2,
        draws=2_000,
    ).periods
    assert honest["period"].tolist() == rewritten["period"].tolist()
    assert honest["period"].nunique() == 2
    assert np.allclose(honest["forecast"], rewritten["forecast"])
    # The range too: its shared shift was measured from months resolved before each period began
    # (for the second period, the first one's forecasts among them).
    model_rows = honest[honest["method"] == "winmodel"]
    # (On the small history the first period's months move as independent deals would: sigma 0 there.)
    assert (model_rows["shift_periods"] >= 3).all() and (model_rows["shift_sigma"] > 0).any()
    assert np.allclose(honest["shift_sigma"], rewritten["shift_sigma"])
    assert np.allclose(honest[["p10", "p90"]], rewritten[["p10", "p90"]])
    assert not np.allclose(honest["actual"], rewritten["actual"])  # the outcomes did change


def test_shift_months_must_be_zero_or_enough():
    from pydantic import ValidationError

    from winmodel.settings import TrainConfig

    with pytest.raises(ValidationError, match="at least 3 months"):
        TrainConfig(forecast={"shift_months": 2})
    assert TrainConfig(forecast={"shift_months": 0}).forecast.shift_months == 0


# --------------------------------------------------------------------------- the command


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["winmodel", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    printed = capsys.readouterr()
    return done.value.code, printed.out + printed.err


def test_forecast_command_reads_a_scored_file(scored, tmp_path, monkeypatch, capsys):
    scored_file = tmp_path / "scored.csv"
    scored.to_csv(scored_file, index=False)
    code, printed = _run(
        monkeypatch,
        capsys,
        "forecast",
        "--input",
        str(scored_file),
        "--by",
        "quarter",
        "--out",
        str(tmp_path / "forecast.csv"),
    )
    assert code == 0, printed
    assert "2026Q1" in printed and "CRM stage-weighted" in printed
    written = pd.read_csv(tmp_path / "forecast.csv")
    assert written["period"].tolist() == ["2026Q1", "2026Q2", "total"]

    broken = tmp_path / "broken.csv"
    scored.drop(columns="win_probability").to_csv(broken, index=False)
    code, printed = _run(monkeypatch, capsys, "forecast", "--input", str(broken))
    assert code == 1 and "win_probability" in printed and "winmodel score" in printed
    code, printed = _run(monkeypatch, capsys, "forecast", "--backtest")
    assert code == 2 and "--data" in printed


def test_training_measures_the_shared_shift_and_exports_it(trained_project, trained_model):
    import json

    from winmodel.analysis.forecast import FORECAST_BAND_FILE

    measured = trained_model.metadata["forecast_shift"]
    band = json.loads((trained_project.export_dir / FORECAST_BAND_FILE).read_text())
    assert band == measured
    assert band["sigma"] >= 0 and band["by"] == "month"
    assert band["periods"] >= 3, (
        "the small history should resolve enough months to measure the shift"
    )
    assert pd.Period(band["last_period"]) < pd.Timestamp(
        trained_project.outcome.result.final_fold.test_end
    ).to_period("M")


def test_forecast_command_widens_the_range_by_the_models_shared_shift(
    scored, tmp_path, monkeypatch, capsys
):
    import json

    from winmodel.analysis.forecast import FORECAST_BAND_FILE

    many = pd.concat(
        [scored.assign(opportunity_id=scored["opportunity_id"] + str(i)) for i in range(40)]
    )
    scored_file = tmp_path / "scored.csv"
    many.assign(model_version="3").to_csv(scored_file, index=False)
    measured, unmeasured, broken = (
        tmp_path / name for name in ("measured", "unmeasured", "broken")
    )
    for folder in (measured, unmeasured, broken):
        folder.mkdir()
        (folder / "WINMODEL_VERSION").write_text("3\n")
    (measured / FORECAST_BAND_FILE).write_text(
        json.dumps({"sigma": 0.5, "description": "sigma 0.5 measured"})
    )
    (broken / FORECAST_BAND_FILE).write_text("{not json")

    code, printed = _run(
        monkeypatch,
        capsys,
        "forecast",
        "--input",
        str(scored_file),
        "--model",
        str(unmeasured),
        "--out",
        str(tmp_path / "independent.csv"),
    )
    assert code == 0 and "independent" in printed
    code, printed = _run(
        monkeypatch,
        capsys,
        "forecast",
        "--input",
        str(scored_file),
        "--model",
        str(measured),
        "--out",
        str(tmp_path / "shifted.csv"),
    )
    assert (
        code == 0 and "sigma 0.5 measured" in printed and "scored by model version" not in printed
    )
    independent, shifted = (
        pd.read_csv(tmp_path / name).set_index("period")
        for name in ("independent.csv", "shifted.csv")
    )
    assert np.allclose(shifted["expected"], independent["expected"])
    assert ((shifted["p90"] - shifted["p10"]) > (independent["p90"] - independent["p10"])).all()
    assert np.allclose(
        shifted["crm_p90"], independent["crm_p90"]
    )  # the CRM's band is not the model's

    code, printed = _run(
        monkeypatch, capsys, "forecast", "--input", str(scored_file), "--model", str(broken)
    )
    assert code == 1 and FORECAST_BAND_FILE in printed and "make train" in printed
    code, printed = _run(
        monkeypatch,
        capsys,
        "forecast",
        "--input",
        str(scored_file),
        "--model",
        str(tmp_path / "no-such-folder"),
    )
    assert code == 1 and "no-such-folder" in printed and "exported model folder" in printed
    (measured / "WINMODEL_VERSION").write_text("4\n")
    code, printed = _run(
        monkeypatch, capsys, "forecast", "--input", str(scored_file), "--model", str(measured)
    )
    assert code == 0 and "scored by model version 3" in printed and "version 4" in printed


def test_forecast_backtest_command_on_the_small_project(
    trained_project, tmp_path, monkeypatch, capsys
):
    code, printed = _run(
        monkeypatch,
        capsys,
        "forecast",
        "--backtest",
        "--data",
        str(trained_project.data),
        "--config",
        str(trained_project.config),
        "--model",
        str(trained_project.export_dir),
        "--periods",
        "1",
        "--warmup-periods",
        "2",
        "--out",
        str(tmp_path / "replay.csv"),
    )
    assert code == 0, printed
    assert "Replay summary" in printed
    assert pd.read_csv(tmp_path / "replay.csv")["method"].tolist() == ["winmodel", "stage_weighted"]
    assert set(pd.read_csv(tmp_path / "replay-summary.csv")["method"]) == {
        "winmodel",
        "stage_weighted",
    }
