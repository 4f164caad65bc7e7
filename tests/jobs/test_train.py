"""Training: splits, maturity, sufficiency, the gate and the whole job with MLflow in a temp folder."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from winmodel.errors import GateError
from winmodel.mlops.gate import decide_promotion
from winmodel.modeling.train import check_sufficiency, default_maturity_days, plan_folds
from winmodel.settings import GateSettings, TrainConfig

QUIET = Console(stderr=True, quiet=True)


def test_folds_are_ordered_in_time_and_the_holdout_is_newest():
    closes = pd.Series(pd.date_range("2023-01-01", "2026-10-31", freq="D"))
    folds, final, warnings = plan_folds(closes, TrainConfig())
    assert final.test_end == pd.Timestamp("2026-11-01")
    assert final.validation_end == pd.Timestamp("2026-08-01")  # 3 holdout months
    assert final.train_end == pd.Timestamp("2026-05-01")  # 3 validation months
    assert len(folds) == 3 and not warnings
    for fold in folds:
        assert fold.train_end < fold.validation_end < fold.test_end <= final.train_end


def test_short_histories_fall_back_to_time_quantiles_with_a_warning():
    closes = pd.Series(pd.date_range("2026-01-01", "2026-06-30", freq="D"))
    _, final, warnings = plan_folds(closes, TrainConfig())
    assert warnings and "quantiles" in warnings[0]
    assert final.train_end < final.validation_end < final.test_end


@pytest.mark.parametrize("months", [12, 14, 16])
def test_a_history_too_short_for_a_month_fold_still_gets_a_backtest_fold(months):
    """12-16 months leave the month plan no backtest fold: no shape search, no backtest. Quantiles do."""
    start = pd.Timestamp("2025-01-01")
    closes = pd.Series(
        pd.date_range(start, start + pd.DateOffset(months=months) - pd.Timedelta(days=1))
    )
    folds, final, warnings = plan_folds(closes, TrainConfig())
    assert (
        len(folds) == 1 and f"spans {months} months" in warnings[0] and "quantiles" in warnings[0]
    )
    (fold,) = folds
    assert fold.train_end < fold.validation_end < fold.test_end <= final.validation_end
    assert final.train_end < final.validation_end < final.test_end  # the holdout stays untouched
    # 17 months: the month plan has room for one fold of two months, and keeps it.
    longer = pd.Series(
        pd.date_range(start, start + pd.DateOffset(months=17) - pd.Timedelta(days=1))
    )
    folds, final, warnings = plan_folds(longer, TrainConfig())
    assert len(folds) == 1 and "quantiles" not in warnings[0]
    assert final.validation_end == pd.Timestamp("2026-03-01")  # 3 whole holdout months


def test_default_maturity_is_the_80th_percentile_of_cycle_length_within_bounds():
    assert default_maturity_days(pd.Series(np.arange(1, 101))) == 80
    assert default_maturity_days(pd.Series([1, 2, 3])) == 14
    assert default_maturity_days(pd.Series([1000] * 5)) == 270


def test_sufficiency_stops_below_40_and_warns_below_200():
    with pytest.raises(GateError, match="39 won"):
        check_sufficiency(39, 500, minimum=40, comfortable=200, file="x.csv")
    assert check_sufficiency(150, 500, minimum=40, comfortable=200, file="x.csv")
    assert check_sufficiency(300, 500, minimum=40, comfortable=200, file="x.csv") == []


def test_gate_promotes_without_champion_and_refuses_a_worse_challenger():
    settings = GateSettings()
    assert decide_promotion({"brier": 0.2, "roc_auc": 0.7}, None, settings).promote
    no_signal = decide_promotion(
        {"brier": 0.2303, "roc_auc": 0.46}, None, settings, base_rate_brier=0.2286
    )
    assert not no_signal.promote and "base rate" in no_signal.reason
    allowed = settings.model_copy(update={"require_beats_base_rate": False})
    assert decide_promotion(
        {"brier": 0.2303, "roc_auc": 0.46}, None, allowed, base_rate_brier=0.2286
    ).promote
    champion = {"brier": 0.150, "roc_auc": 0.850}
    assert decide_promotion({"brier": 0.152, "roc_auc": 0.845}, champion, settings).promote
    worse_brier = decide_promotion({"brier": 0.160, "roc_auc": 0.850}, champion, settings)
    assert not worse_brier.promote and "Brier" in worse_brier.reason
    worse_auc = decide_promotion({"brier": 0.150, "roc_auc": 0.830}, champion, settings)
    assert not worse_auc.promote and "AUC" in worse_auc.reason


# --------------------------------------------------------------------------- the whole job


def _champion_version(project) -> str | None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from winmodel.mlops.registry import alias_version

    mlflow.set_tracking_uri(project.tracking_uri)
    return alias_version(MlflowClient(), "winmodel", "champion")


def test_training_registers_a_champion_that_beats_the_baselines(trained_project):
    outcome = trained_project.outcome
    assert outcome.promoted and outcome.version == "1"
    assert _champion_version(trained_project) == "1"
    assert (trained_project.export_dir / "MLmodel").exists()
    card = (trained_project.export_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert (
        "`hist_gradient_boosting_defaults` is scikit-learn's HistGradientBoostingClassifier" in card
    )
    holdout = outcome.result.holdout_metrics.set_index("method")
    assert holdout.loc["winmodel", "brier"] < holdout.loc["base_rate", "brier"]
    assert holdout.loc["winmodel", "roc_auc"] > holdout.loc["crm_stage_probability", "roc_auc"]
    assert outcome.result.oracle["oracle_skill_share"] > 0.5


def test_the_run_records_metrics_artifacts_and_provenance(trained_project):
    import mlflow

    mlflow.set_tracking_uri(trained_project.tracking_uri)
    run = mlflow.get_run(trained_project.outcome.run_id)
    assert "holdout.winmodel.brier" in run.data.metrics
    assert "holdout.logistic_regression.roc_auc" in run.data.metrics
    for tag in (
        "winmodel.git_commit",
        "winmodel.config_digest",
        "winmodel.data_digest",
        "version.lightgbm",
    ):
        assert tag in run.data.tags
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"plots", "tables", "model_card.md", "leakage_report.txt"} <= artifacts
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/reliability.png",
        "plots/shap_summary.png",
        "plots/feature_importance.png",
    } <= plots


def test_the_registered_pyfunc_returns_probabilities(trained_project, small_history):
    import mlflow

    from winmodel.features.rows import add_history_features, select_latest_rows
    from winmodel.mlops.pyfunc import signature_frame

    mlflow.set_tracking_uri(trained_project.tracking_uri)
    loaded = mlflow.pyfunc.load_model("models:/winmodel@champion")
    opportunities = small_history.opportunities
    open_deals = opportunities[opportunities["status"] == "open"].head(50)
    rows = select_latest_rows(add_history_features(open_deals, small_history.snapshots))
    model = trained_project.outcome.result.model
    predicted = loaded.predict(signature_frame(model, rows))
    assert predicted.between(0, 1).all()
    np.testing.assert_allclose(predicted.to_numpy(), model.predict_proba(rows), atol=1e-12)


def test_a_planted_leak_is_excluded_and_does_not_move_the_holdout(
    tmp_path, small_history, trained_project, make_train_config
):
    from winmodel.jobs.train import run_train

    data = tmp_path / "leaky"
    data.mkdir()
    opportunities = small_history.opportunities
    leaky = opportunities.assign(outcome_flag=opportunities["status"].eq("won").astype(float))
    leaky.to_parquet(data / "opportunities.parquet")
    small_history.snapshots.to_parquet(data / "snapshots.parquet")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("extra_features:\n  numeric: [outcome_flag]\n", encoding="utf-8")
    config = make_train_config(tmp_path, data, data__mapping=str(mapping))
    outcome = run_train(config, console=QUIET)
    assert "outcome_flag" in outcome.result.leakage.excluded
    assert "outcome_flag" in outcome.result.leakage.render()
    clean = trained_project.outcome.result.holdout_metrics.set_index("method").loc["winmodel"]
    with_leak = outcome.result.holdout_metrics.set_index("method").loc["winmodel"]
    assert abs(with_leak["brier"] - clean["brier"]) < 0.005
    assert abs(with_leak["roc_auc"] - clean["roc_auc"]) < 0.01


def test_too_few_deals_stop_training_with_a_clear_message(
    tmp_path, small_history, make_train_config
):
    from winmodel.jobs.train import run_train

    data = tmp_path / "thin"
    data.mkdir()
    opportunities = small_history.opportunities
    won = opportunities[opportunities["status"] == "won"].head(30)
    rest = opportunities[opportunities["status"] != "won"]
    thin = pd.concat([won, rest], ignore_index=True)
    thin.to_parquet(data / "opportunities.parquet")
    small_history.snapshots[
        small_history.snapshots["opportunity_id"].isin(thin["opportunity_id"])
    ].to_parquet(data / "snapshots.parquet")
    with pytest.raises(GateError, match="too few closed deals"):
        run_train(make_train_config(tmp_path, data), console=QUIET)


# --------------------------------------------------------------------------- a failure at every stage

#: Every step of `winmodel train` in order; a failure at any of them must leave `champion` where it was.
TRAINING_STAGES = [
    ("winmodel.jobs.train", "load_crm_data"),
    ("winmodel.jobs.train", "build_training_rows"),
    ("winmodel.jobs.train", "train_win_model"),
    ("winmodel.jobs.train", "_measure_forecast_shift"),
    ("winmodel.jobs.train", "_log_tables"),
    ("winmodel.jobs.train", "_log_figures"),
    ("winmodel.mlops.registry", "log_win_model"),
    ("winmodel.mlops.registry", "register"),
    ("winmodel.mlops.registry", "set_alias"),
    ("winmodel.mlops.registry", "set_alias@champion"),
    ("winmodel.jobs.train", "_champion_metrics"),
    ("winmodel.mlops.gate", "decide_promotion"),
    ("winmodel.jobs.train", "render_model_card"),
    ("winmodel.mlops.export", "export_model"),
]


@pytest.fixture(scope="module")
def lifecycle_data(tmp_path_factory) -> Path:
    """A history of 2,000 deals: the stages after the fit are under test here, not the model's
    quality, and each of the many re-runs below logs, registers and exports a model of it."""
    from winmodel.synth.generator import generate_history

    history = generate_history(2_000, seed=3)
    folder = tmp_path_factory.mktemp("lifecycle-data")
    history.opportunities.to_parquet(folder / "opportunities.parquet")
    history.snapshots.to_parquet(folder / "snapshots.parquet")
    return folder


@pytest.fixture(scope="module")
def lifecycle_project(tmp_path_factory, lifecycle_data, make_train_config):
    """A project with a champion, and the fitted result that re-runs reuse (the stages after the fit are tested)."""
    from winmodel.jobs.train import run_train

    root = tmp_path_factory.mktemp("lifecycle")
    config = make_train_config(root, lifecycle_data)
    first = run_train(config, console=QUIET)
    assert first.promoted
    return type(
        "P",
        (),
        {
            "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "config": config,
            # The same project with the run's plots on (the tests' config leaves them out).
            "config_with_figures": make_train_config(root, lifecycle_data, tracking__figures=True),
            "export": root / "models" / "champion",
            "result": first.result,
        },
    )


def _reuse_fit(monkeypatch, project) -> None:
    from winmodel.jobs import train as job

    monkeypatch.setattr(job, "train_win_model", lambda *args, **kwargs: project.result)


def test_a_rerun_that_does_not_fail_moves_the_champion(lifecycle_project, monkeypatch):
    """The control for the failure tests: without a failure, the same re-run is promoted."""
    from winmodel.jobs.train import run_train

    _reuse_fit(monkeypatch, lifecycle_project)
    before = _champion_version(lifecycle_project)
    outcome = run_train(lifecycle_project.config, console=QUIET)
    assert outcome.promoted and _champion_version(lifecycle_project) == outcome.version != before
    assert (lifecycle_project.export / "WINMODEL_VERSION").read_text() == outcome.version


def test_a_worse_model_is_not_promoted(lifecycle_project, lifecycle_data, make_train_config):
    """The lifecycle project's champion stays when a one-tree model of the same data is trained."""
    # A crash at every stage leaving the champion: test_a_failure_at_any_stage_leaves_... below.
    from winmodel.jobs.train import run_train

    champion = _champion_version(lifecycle_project)
    exported = (lifecycle_project.export / "WINMODEL_VERSION").read_text()
    root = Path(lifecycle_project.config).parent
    worse = make_train_config(root, lifecycle_data, model__max_trees=1)
    refused = run_train(worse, console=QUIET)
    assert not refused.promoted and "worse" in refused.reason
    assert _champion_version(lifecycle_project) == champion
    assert (lifecycle_project.export / "WINMODEL_VERSION").read_text() == exported


FAILURES = [(module, name, RuntimeError) for module, name in TRAINING_STAGES] + [
    (module, name, KeyboardInterrupt)
    for module, name in TRAINING_STAGES
    if name in ("set_alias", "set_alias@champion", "export_model")
]


@pytest.mark.parametrize(
    ("module", "name", "failure"),
    FAILURES,
    ids=[f"{name}-{failure.__name__}" for _, name, failure in FAILURES],
)
def test_a_failure_at_any_stage_leaves_the_champion_and_its_export(
    lifecycle_project, monkeypatch, module, name, failure
):
    import importlib

    from winmodel.jobs.train import run_train

    if name != "train_win_model":
        _reuse_fit(monkeypatch, lifecycle_project)

    target = importlib.import_module(module)
    if name == "set_alias@champion":  # the challenger alias moves; moving the champion fails
        from winmodel.mlops.registry import CHAMPION, set_alias

        def fail(client, model_name, alias, version):
            if alias == CHAMPION:
                raise failure("injected failure in set_alias@champion")
            set_alias(client, model_name, alias, version)

        monkeypatch.setattr(target, "set_alias", fail)
    else:

        def fail(*args, **kwargs):
            raise failure(f"injected failure in {name}")

        monkeypatch.setattr(target, name, fail)
    before = _champion_version(lifecycle_project)
    exported = (lifecycle_project.export / "WINMODEL_VERSION").read_text()
    config = (
        lifecycle_project.config_with_figures
        if name == "_log_figures"
        else lifecycle_project.config
    )
    if failure is KeyboardInterrupt:  # Ctrl-C: said in one line, the champion unchanged
        from winmodel.jobs.train import TrainingInterrupted

        with pytest.raises(TrainingInterrupted, match="interrupted — champion unchanged"):
            run_train(config, console=QUIET)
    else:
        with pytest.raises(failure, match="injected"):
            run_train(config, console=QUIET)
    assert _champion_version(lifecycle_project) == before
    assert (lifecycle_project.export / "WINMODEL_VERSION").read_text() == exported


def test_a_forecast_range_that_cannot_be_measured_does_not_stop_the_training(
    lifecycle_project, monkeypatch, lifecycle_data, make_train_config
):
    from winmodel.jobs import train as job
    from winmodel.jobs.train import run_train

    _reuse_fit(monkeypatch, lifecycle_project)

    def broken(*args, **kwargs):
        raise ValueError("injected: no usable month")

    monkeypatch.setattr(job, "measure_shared_shift", broken)
    config = make_train_config(
        Path(lifecycle_project.config).parent, lifecycle_data, forecast__shift_months=12
    )
    outcome = run_train(config, console=QUIET)
    assert outcome.promoted
    band = outcome.result.model.metadata["forecast_shift"]
    assert band["sigma"] == 0 and "injected: no usable month" in band["description"]
    assert any("forecast range" in warning for warning in outcome.result.warnings)
    assert "independent" in (lifecycle_project.export / "FORECAST_BAND.json").read_text()


def test_a_failure_after_the_export_switched_keeps_alias_and_export_together(
    lifecycle_project, monkeypatch
):
    """Interrupted while old copies are pruned: the export holds the new model, and so does the alias."""
    from winmodel.jobs.train import TrainingInterrupted, run_train
    from winmodel.mlops import export

    _reuse_fit(monkeypatch, lifecycle_project)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("injected while pruning old exports")

    monkeypatch.setattr(export, "_prune_exports", interrupted)
    before = _champion_version(lifecycle_project)
    with pytest.raises(TrainingInterrupted) as interrupted_by:
        run_train(lifecycle_project.config, console=QUIET)
    exported = (lifecycle_project.export / "WINMODEL_VERSION").read_text()
    assert exported != before and _champion_version(lifecycle_project) == exported
    # The message tells the truth: the champion moved before the interruption.
    assert f"champion is now version {exported}" in str(interrupted_by.value)


def test_a_failed_first_export_leaves_no_champion(
    lifecycle_project, monkeypatch, tmp_path, lifecycle_data, make_train_config
):
    from winmodel.jobs.train import run_train
    from winmodel.mlops import export

    _reuse_fit(monkeypatch, lifecycle_project)

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure in the first export")

    monkeypatch.setattr(export, "export_model", fail)
    config = make_train_config(tmp_path, lifecycle_data)
    with pytest.raises(RuntimeError, match="injected"):
        run_train(config, console=QUIET)
    fresh = type("P", (), {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    assert _champion_version(fresh) is None
    assert not (tmp_path / "models" / "champion").exists()


def test_the_logged_datasets_schema_from_a_sample_is_the_full_frames(small_history):
    """Blanks and values past the sampled head count, as MLflow's own inference says."""
    from mlflow.data.pandas_dataset import from_pandas

    from winmodel.jobs.train import dataset_schema

    def mlflows(frame: pd.DataFrame):
        return from_pandas(frame, source="x", targets="status", name="o", digest="0").schema

    frame = small_history.opportunities.copy()
    frame.loc[frame.index[-1], "industry"] = None
    frame.loc[frame.index[1500], "amount"] = np.nan
    # A field added late in the history: blank in every sampled row, text after.
    frame["late_field"] = pd.Series([None] * 1000 + ["x"] * (len(frame) - 1000), dtype="str")
    sampled = dataset_schema(frame, head=200)
    assert sampled is not None and sampled == mlflows(frame)
    assert not sampled.input_dict()["industry"].required
    assert sampled.input_dict()["region"].required
    assert sampled.input_dict()["late_field"].type.name == "string"
    # Where a sample could differ, it is left to MLflow.
    mixed = frame.assign(extra=pd.Series([1] * (len(frame) - 1) + ["a"], dtype=object))
    assert dataset_schema(mixed) is None and dataset_schema(frame.iloc[:0]) is None
