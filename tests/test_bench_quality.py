"""`make bench-quality --quick` end to end on tiny worlds: the report has every method and half."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quality_module():
    spec = importlib.util.spec_from_file_location(
        "bench_quality", ROOT / "benchmarks" / "quality.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_writes_the_report(tmp_path: Path) -> None:
    quality = _quality_module()
    out = tmp_path / "quality.md"
    # One shape: the report is under test here, not the search (its six shapes triple the time).
    one_shape = "model.candidates=[{num_leaves: 7, max_depth: 3}]"
    # Two of the three quick worlds: one per half, the first with drift (the report's sections).
    # Fresh world 96 (300 deals, 19 % won) has too few won deals: winmodel refuses to train on it.
    arguments = ["--quick", "--worlds", "101", "102", "96", "--max-deals", "300"]
    arguments += ["--set", one_shape]
    arguments += ["--out", str(out)]
    assert quality.main(arguments) == 0
    report = out.read_text()
    for heading in ("total wall time", "Tuning half", "Confirm half", "Drift worlds"):
        assert heading in report
    # World 101's drifted segment has test deals: the truth's mean is beside the methods'.
    assert "| drift_oracle |" in report
    assert "Within 0.05 of the observed win rate (worlds): oracle 0 of 1, winmodel " in report
    results = pd.read_csv(out.with_suffix(".csv"))
    assert set(results["method"]) == set(quality.METHODS)
    assert results["world"].nunique() == 2
    assert set(results["half"]) == {"tuning", "confirm"}
    # Every method is measured against the truth on every world (oracle share is a number).
    assert results["oracle_share"].notna().all()
    assert results["oracle_share_se"].gt(0).all()
    assert "Median oracle share, 90 % interval from the test deals' noise" in report
    assert results["log_loss"].between(0.05, 5).all()
    # The gate's verdict on each world as a first training is reported; the refused world is
    # named and left out of every figure, not a crash.
    assert ("The gate promotes all 2 trainings" in report) or ("The gate refuses" in report)
    assert "winmodel refuses to train on 1 world(s), left out of every figure above: w96" in report


def test_drift_within_counts_each_method_and_the_oracle_within_the_tolerance() -> None:
    quality = _quality_module()
    drifted = pd.DataFrame(
        {
            "world": ["a", "b"],
            "drift_deals": [9, 400],
            "drift_observed": [0.78, 0.10],
            "drift_observed_se": [0.15, 0.015],
            "drift_oracle": [0.55, 0.11],
            "drift_winmodel": [0.46, 0.14],
            "drift_logistic_regression": [0.74, np.nan],
        }
    )
    # Nine deals: the truth itself misses the observed rate by 0.23; 400 deals: by 0.01. A method
    # without a mean in a world is not judged there.
    assert quality.drift_within(drifted) == {
        "oracle": (1, 2),
        "winmodel": (1, 2),
        "logistic_regression": (1, 1),
    }


def test_drift_evidence_compares_the_segments_deals_created_since_the_drift_with_earlier_ones() -> (
    None
):
    quality = _quality_module()
    since = pd.Timestamp("2026-04-01")
    # One deal of each group is created on the drift's first day: it counts as created since.
    created = ["2026-01-05"] * 40 + ["2026-04-01"] + ["2026-05-01"] * 19 + ["2026-04-01"] * 30
    region = ["emea"] * 60 + ["apac"] * 30
    # emea: 20 of 40 won before the drift, 2 of 20 since; apac (another value) never counts.
    status = ["won"] * 20 + ["lost"] * 20 + ["won"] * 2 + ["lost"] * 18 + ["won"] * 30
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"D{i}" for i in range(90)],
            "region": region,
            "created_date": pd.to_datetime(created),
            "status": status,
        }
    )
    # Snapshot rows: each deal twice, counted once.
    train = pd.concat([deals, deals], ignore_index=True)
    facts = quality.drift_evidence(train, "region", "emea", since)
    assert facts["drift_train_deals"] == 20
    pooled = 22 / 60
    z = (0.1 - 0.5) / np.sqrt(pooled * (1 - pooled) * (1 / 20 + 1 / 40))
    assert facts["drift_train_z"] == pytest.approx(z)
    # A value that did not exist before the drift (a new competitor) has no z.
    newcomer = quality.drift_evidence(train, "region", "apac", since)
    assert newcomer["drift_train_deals"] == 30 and np.isnan(newcomer["drift_train_z"])
    # No deal created since (the drift is too new to have closed any), or no variation: no z.
    none_yet = quality.drift_evidence(train, "region", "emea", pd.Timestamp("2026-06-01"))
    assert none_yet["drift_train_deals"] == 0 and np.isnan(none_yet["drift_train_z"])
    all_lost = train.assign(status="lost")
    flat = quality.drift_evidence(all_lost, "region", "emea", since)
    assert flat["drift_train_deals"] == 20 and np.isnan(flat["drift_train_z"])
    # The evidence is a fact of the world, not a method's mean prediction.
    drifted = pd.DataFrame(
        {"drift_observed": [0.1], "drift_winmodel": [0.12], **{k: [v] for k, v in facts.items()}}
    )
    assert quality.drift_within(drifted) == {"winmodel": (1, 1)}


def test_the_oracle_shares_noise_shrinks_with_more_test_deals() -> None:
    """The bootstrap s.e. of a fixed model's share falls like 1 / sqrt(deals); the truth's is 0."""
    quality = _quality_module()
    rng = np.random.default_rng(3)
    spread = {}
    for deals in (100, 6_400):
        truth = rng.uniform(0.05, 0.95, deals)
        won = (rng.random(deals) < truth).astype(int)
        model = np.clip(truth + rng.normal(0, 0.1, deals), 0.01, 0.99)
        se = quality.oracle_share_se(won, {"model": model, "oracle": truth}, 0.5, truth, seed=0)
        assert se["oracle"] == 0
        spread[deals] = se["model"]
    # 64 times the deals: about an eighth of the spread.
    assert 0.08 < spread[6_400] / spread[100] < 0.2


def test_the_median_interval_holds_the_median_and_widens_with_noise() -> None:
    quality = _quality_module()
    shares = np.array([0.5, 0.7, 0.8, 0.9, 0.95])
    results = pd.DataFrame({"method": "winmodel", "oracle_share": shares, "oracle_share_se": 0.02})
    low, high = quality.median_interval(results, "winmodel")
    assert low < 0.8 < high and high - low < 0.1
    wide_low, wide_high = quality.median_interval(results.assign(oracle_share_se=0.2), "winmodel")
    assert wide_low < low and wide_high > high
    assert np.isnan(quality.median_interval(results, "lightgbm")).all()


def _gate_inputs(winmodel_pooled: float, deals: int, holdout_brier: float = 0.20):
    from types import SimpleNamespace

    from winmodel.modeling.evaluate import HEADLINE

    holdout = pd.DataFrame(
        {
            "method": ["winmodel", "base_rate"],
            "brier": [holdout_brier, 0.24],
            "roc_auc": [0.70, 0.50],
            "log_loss": [0.60, 0.67],
            "ece": [0.03, 0.01],
        }
    )
    backtest = pd.DataFrame(
        {
            "method": ["winmodel", "base_rate"],
            "moment": [HEADLINE, HEADLINE],
            "log_loss": [winmodel_pooled, 0.67],
            "deals": [80, 80],
        }
    )
    # Each deal has an earlier row too: the gate counts deals by their last row, not rows.
    ids = [f"D{i}" for i in range(deals)]
    train = pd.DataFrame(
        {"opportunity_id": ids * 2, "is_last_before_close": [False] * deals + [True] * deals}
    )
    return SimpleNamespace(holdout_metrics=holdout, backtest=backtest), train


def test_first_gate_refuses_a_small_history_no_better_than_the_base_rate_over_its_folds() -> None:
    quality = _quality_module()
    config = quality.config_with([])
    # Better than the base rate on the holdout, but not over every fold: small data is refused.
    result, train = _gate_inputs(winmodel_pooled=0.70, deals=300)
    assert quality.first_gate(result, train, config) == "refused"
    result, train = _gate_inputs(winmodel_pooled=0.62, deals=300)
    assert quality.first_gate(result, train, config) == "promoted"
    # A large history is judged on its holdout alone (600 deals of 2 rows each stay small).
    result, train = _gate_inputs(winmodel_pooled=0.70, deals=config.gate.small_data_deals)
    assert quality.first_gate(result, train, config) == "promoted"
    result, train = _gate_inputs(winmodel_pooled=0.70, deals=600)
    assert quality.first_gate(result, train, config) == "refused"
    # Worse than the base rate's Brier on the holdout: refused whatever the size.
    result, train = _gate_inputs(0.62, config.gate.small_data_deals, holdout_brier=0.25)
    assert quality.first_gate(result, train, config) == "refused"


def test_paired_changes_count_and_average_each_worlds_change_per_half() -> None:
    quality = _quality_module()

    def run(losses: dict[str, float]) -> pd.DataFrame:
        rows = [
            {"world": world, "half": half, "method": method, "log_loss": loss}
            for world, loss in losses.items()
            for half in ["tuning" if world.startswith("t") else "confirm"]
            for method, loss in (("winmodel", loss), *((peer, 9.0) for peer in quality.PEERS))
        ]
        other = ("log_loss_vs_base", "oracle_share", "ece", "roc_auc", "train_seconds")
        return pd.DataFrame(rows).assign(**dict.fromkeys(other, 0.5))

    before = run({"t1": 0.50, "t2": 0.40, "t3": 0.30, "c1": 0.60, "c2": 0.20, "c9": 0.1})
    # t1 better by 0.02, t2 worse by 0.01, t3 moves under the threshold; c9 is not in this run,
    # c3 not in the earlier one: neither is compared.
    after = run({"t1": 0.48, "t2": 0.41, "t3": 0.3005, "c1": 0.57, "c2": 0.20, "c3": 0.9})
    rows = {row["half"]: row for row in quality.paired_changes(after, before)}
    assert set(rows) == {"tuning", "confirm", "all synthetic"}
    tuning = rows["tuning"]
    assert (tuning["worlds"], tuning["better"], tuning["worse"], tuning["same"]) == (3, 1, 1, 1)
    changes = np.array([-0.02, 0.01, 0.0005])
    assert np.isclose(tuning["mean change"], changes.mean())
    assert np.isclose(tuning["s.e."], changes.std(ddof=1) / np.sqrt(3))
    assert tuning["largest"] == "t1 -0.0200; t2 +0.0100"
    assert (rows["confirm"]["worlds"], rows["confirm"]["better"]) == (2, 1)
    assert rows["all synthetic"]["worlds"] == 5
    report = quality.compare_runs({"this run": after, "before": before})
    assert "| before | tuning | 3 | 1 | 1 | 1 |" in report


def test_compare_arguments_that_cannot_work_are_refused(tmp_path: Path, capsys) -> None:
    import pytest

    quality = _quality_module()
    run = tmp_path / "run.csv"
    pd.DataFrame({"world": ["t1"], "half": ["tuning"], "method": ["winmodel"]}).to_csv(run)
    cases = {
        "needs at least one --compare": ["--results", str(run)],
        "give LABEL=CSV": ["--results", str(run), "--compare", str(run)],
        "no such file": ["--results", str(tmp_path / "none.csv"), "--compare", f"a={run}"],
        "given twice": ["--results", str(run), "--compare", f"a={run}", "--compare", f"a={run}"],
        "a label other than run.csv": ["--results", str(run), "--compare", f"run.csv={run}"],
    }
    for says, arguments in cases.items():
        with pytest.raises(SystemExit) as exit_:
            quality.main(arguments)
        assert exit_.value.code == 2
        assert says in capsys.readouterr().err, arguments
