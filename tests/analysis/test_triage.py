"""Triage measured: the pursue list against the oracle, amount and everything; thresholds chosen by the replay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from winmodel.analysis.triage import (
    ReplayedDeals,
    backtest_triage,
    choose_thresholds,
    decline_mask,
    judge_triage,
    pursue_mask,
)
from winmodel.errors import InputError
from winmodel.jobs.triage import run_triage, run_triage_backtest
from winmodel.settings import RecommendationRules, ScoreConfig

QUIET = Console(stderr=True, quiet=True)


def test_judge_triage_compares_at_the_same_number_of_deals():
    value = np.array([10.0, 8.0, 1.0, 1.0])
    pursued = np.array([True, False, True, False])
    judged = judge_triage(value, pursued, np.array([9.0, 7.0, 8.0, 0.0]), np.array([1, 2, 3, 4]))
    assert judged["pursued"] == 2 and judged["pursued_share"] == 0.5
    assert judged["value_oracle"] == 18.0  # the two best deals
    assert judged["pursue_vs_oracle"] == pytest.approx(11 / 18)
    assert judged["expected_margin_rank_vs_oracle"] == pytest.approx(11 / 18)  # 9 and 8
    assert judged["amount_rank_vs_oracle"] == pytest.approx(2 / 18)  # amounts 4 and 3
    assert judged["pursue_vs_everything"] == pytest.approx(11 / 20)


def _replayed(seed: int = 0, months: int = 3, deals: int = 400) -> ReplayedDeals:
    rng = np.random.default_rng(seed)
    frames = []
    for month in range(months):
        probability = rng.beta(1.5, 3, deals)
        amount = rng.lognormal(11, 1, deals)
        margin = probability * amount * 0.6
        frames.append(
            pd.DataFrame(
                {
                    "period": f"2026-0{month + 1}",
                    "opportunity_id": [f"D{month}-{i}" for i in range(deals)],
                    "probability": probability,
                    "band": np.where(probability >= 0.6, "A", "B"),
                    "amount": amount,
                    "expected_margin": margin,
                    "expected_value": margin - 2_000,
                    "red_flags": rng.integers(0, 4, deals),
                    "true_value": margin * rng.uniform(0.8, 1.2, deals),
                    "realized_value": np.nan,
                }
            )
        )
    return ReplayedDeals(pd.concat(frames, ignore_index=True), "truth")


def test_the_replay_chooses_the_fewest_deals_that_meet_the_target():
    replayed = _replayed()
    config = ScoreConfig()
    rules, trials = choose_thresholds(replayed, config)
    deals = replayed.deals
    held = []
    for _, part in deals.groupby("period"):
        mask = pursue_mask(part, rules)
        held.append(part.loc[mask, "true_value"].sum() / part["true_value"].sum())
    assert np.mean(held) >= config.triage.pursue_margin_share - 1e-9
    higher = rules.model_copy(
        update={"pursue_min_expected_margin": rules.pursue_min_expected_margin * 1.5 + 100}
    )
    held_higher = np.mean(
        [
            part.loc[pursue_mask(part, higher), "true_value"].sum() / part["true_value"].sum()
            for _, part in deals.groupby("period")
        ]
    )
    assert held_higher < config.triage.pursue_margin_share  # a higher line would miss the target
    assert rules.qualify_min_red_flags is None  # the flags carry nothing here: never chosen
    assert set(trials["setting"]) == {
        "decline_below_probability",
        "pursue_min_expected_margin",
        "qualify_min_red_flags",
    }
    judged = backtest_triage(replayed, config).periods
    assert judged["period"].iloc[-1] == "mean" and len(judged) == 4


def test_pursue_mask_follows_the_decision_table():
    deals = pd.DataFrame(
        {
            "band": ["A", "C", "C", "B"],
            "probability": [0.7, 0.02, 0.3, 0.45],
            "expected_value": [-5.0, 100.0, 9_000.0, 20_000.0],
            "expected_margin": [3_000.0, 30_000.0, 12_000.0, 25_000.0],
            "red_flags": [0, 0, 3, 1],
        }
    )
    rules = RecommendationRules(
        decline_below_probability=0.05, pursue_min_expected_margin=10_000, qualify_min_red_flags=3
    )
    assert pursue_mask(deals, rules).tolist() == [
        False,
        True,
        False,
        True,
    ]  # a long shot is pursued
    assert decline_mask(deals, rules).tolist() == [False, False, False, False]  # band A never
    below = deals.assign(expected_margin=[3_000.0, 3_000.0, 3_000.0, 3_000.0])
    assert decline_mask(below, rules).tolist() == [False, True, False, False]


def test_triage_judges_a_scored_file_on_the_truth(trained_project, tmp_path):
    from winmodel.jobs.score import run_score

    output = tmp_path / "scored.csv"
    run_score(
        config_path=None,
        input_path=trained_project.data,
        output=output,
        model_uri=str(trained_project.export_dir),
        console=QUIET,
        log_to_mlflow=False,
    )
    judged = run_triage(output, trained_project.data, console=QUIET).judged
    assert judged is not None and judged["pursued"] > 0
    assert judged["pursue_vs_oracle"] >= 0.9  # the pursue list is nearly the oracle's best deals
    assert judged["pursue_vs_oracle"] >= judged["amount_rank_vs_oracle"]
    with pytest.raises(InputError, match="no truth table"):
        run_triage(output, tmp_path, console=QUIET)


def test_triage_backtest_replays_months_and_prints_thresholds(trained_project, tmp_path):
    out = tmp_path / "triage.csv"
    outcome = run_triage_backtest(
        trained_project.data,
        model_uri=str(trained_project.export_dir),
        train_config_path=trained_project.config,
        periods=2,
        out=out,
        console=QUIET,
    )
    assert outcome.backtest is not None and outcome.backtest.measure == "truth"
    periods = outcome.backtest.periods
    assert list(periods["period"])[-1] == "mean" and len(periods) == 3
    assert (periods["pursue_vs_oracle"] > 0.5).all()
    assert out.exists() and (tmp_path / "triage-trials.csv").exists()
