"""Reproducibility: a run records what produced it, and the same inputs give the same model and scores.

Two small trainings in all: the session's trained project and one more in a
separate folder (its own export, and a copy of the session's MLflow store) with the same settings and data.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import pandas as pd
import pytest
from rich.console import Console

from winmodel.data.dataset import data_digest, load_crm_data
from winmodel.jobs.score import run_score
from winmodel.jobs.train import _package_versions, run_train
from winmodel.settings import load_train_config

QUIET = Console(stderr=True, quiet=True)


@pytest.fixture(scope="module")
def twin_project(tmp_path_factory, trained_project, small_data_dir, make_train_config):
    """Give (root, outcome) of a second training on the same data with the same settings, in its own folder.

    Its store starts as a copy of the session project's, so the gate judges the twin against the
    session's champion (the copy moves, the session's store does not).
    """
    root = tmp_path_factory.mktemp("twin")
    trained_project.copy_store(root)
    # The horizon model as in the session's project: its columns are in the scored files compared.
    outcome = run_train(make_train_config(root, small_data_dir, horizon__fit=True), console=QUIET)
    return root, outcome


def _run_tags(tracking_uri: str, run_id: str) -> dict[str, str]:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.get_run(run_id).data.tags


def test_the_run_records_versions_commit_and_digests(trained_project):
    tags = _run_tags(trained_project.tracking_uri, trained_project.outcome.run_id)
    for package in ("winmodel", "lightgbm", "scikit-learn", "pandas", "numpy", "mlflow", "shap"):
        assert tags[f"version.{package}"] == version(package)
    assert _package_versions() == {
        key.removeprefix("version."): value
        for key, value in tags.items()
        if key.startswith("version.")
    }
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", tags["winmodel.git_commit"])
    assert tags["winmodel.config_digest"] == load_train_config(trained_project.config).digest()
    assert tags["winmodel.data_digest"] == data_digest(load_crm_data(trained_project.data))


def test_digests_are_stable_across_loads_and_follow_the_content(
    trained_project, small_history, tmp_path
):
    first = data_digest(load_crm_data(trained_project.data))
    second = data_digest(load_crm_data(trained_project.data))
    assert first == second and re.fullmatch(r"[0-9a-f]{16}", first)
    assert (
        load_train_config(trained_project.config).digest()
        == load_train_config(trained_project.config).digest()
    )

    changed = small_history.opportunities.copy()
    changed.loc[changed.index[0], "amount"] = changed["amount"].iloc[0] + 1.0
    changed.to_parquet(tmp_path / "opportunities.parquet")
    small_history.snapshots.to_parquet(tmp_path / "snapshots.parquet")
    assert data_digest(load_crm_data(tmp_path)) != first  # one amount changed, another digest

    # The same rows in another order (as a database may give them) are the same data.
    small_history.opportunities.iloc[::-1].to_parquet(tmp_path / "opportunities.parquet")
    small_history.snapshots.sample(frac=1.0, random_state=1).to_parquet(
        tmp_path / "snapshots.parquet"
    )
    assert data_digest(load_crm_data(tmp_path)) == first


def test_the_same_inputs_give_the_same_model(trained_project, twin_project):
    root, twin = twin_project
    first = trained_project.outcome.result.model
    assert twin.result.model.booster.model_to_string() == first.booster.model_to_string()
    assert twin.result.model.feature_names == first.feature_names
    pd.testing.assert_frame_equal(
        twin.result.holdout_predictions, trained_project.outcome.result.holdout_predictions
    )
    assert twin.promoted  # not worse than itself: judged against the session's champion
    twin_tags = _run_tags(f"sqlite:///{root / 'mlflow.db'}", twin.run_id)
    first_tags = _run_tags(trained_project.tracking_uri, trained_project.outcome.run_id)
    assert twin_tags["winmodel.data_digest"] == first_tags["winmodel.data_digest"]


def test_the_same_inputs_give_the_same_scores(trained_project, twin_project, tmp_path):
    root, _ = twin_project
    outputs = []
    for name, model in (
        ("first", trained_project.export_dir),
        ("twin", root / "models" / "champion"),
    ):
        output = tmp_path / f"{name}.csv"
        run_score(
            config_path=None,
            input_path=trained_project.data,
            output=output,
            model_uri=str(model),
            console=QUIET,
            log_to_mlflow=False,
        )
        outputs.append(pd.read_csv(output, dtype=str, keep_default_na=False))
    # The registry version number differs by project history (another test may have retrained the
    # session's project); every score, reason and recommendation must not.
    first, twin = (
        frame.drop(columns=[c for c in frame.columns if c == "model_version"]) for frame in outputs
    )
    pd.testing.assert_frame_equal(first, twin)
    assert len(first) > 100
