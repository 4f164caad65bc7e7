"""The penalised logistic regression family: distilled into stumps, chosen where it wins, saved as any booster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from winmodel.data.mapping import Mapping
from winmodel.modeling.evaluate import fit_logistic_baseline
from winmodel.modeling.model_format import load_model, save_model
from winmodel.modeling.train import _Data, _distilled_logistic, train_win_model
from winmodel.settings import ModelSettings, TrainConfig
from winmodel.synth.worlds import draw_world_spec, generate_world

QUIET = {"progress": lambda message: None}
#: The default logistic candidate, as the search tries it.
LOGISTIC = next(shape for shape in ModelSettings().candidates if shape.family == "logistic")


def _world_rows(seed: int, folder) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 600-deal snapshot export: closed rows, the older 80 % and the newer 20 %."""
    from winmodel.data.dataset import load_crm_data
    from winmodel.data.io import write_table_atomic
    from winmodel.features.rows import build_training_rows

    world = generate_world(
        draw_world_spec(
            seed, deals=600, snapshots=True, win_rate=0.45, signal=2.5, months=24,
            label_noise=0.0, drift="none", missing_share=0.1,
        )
    )  # fmt: skip
    write_table_atomic(world.opportunities, folder / "opportunities.parquet")
    assert world.snapshots is not None
    write_table_atomic(world.snapshots, folder / "snapshots.parquet")
    crm = load_crm_data(folder, Mapping(fixed_fields=list(world.fixed_fields)))
    rows, _ = build_training_rows(crm, TrainConfig.model_validate({}))
    cutoff = rows["close_date"].quantile(0.8)
    return rows[rows["close_date"] < cutoff], rows[rows["close_date"] >= cutoff]


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    return _world_rows(7, tmp_path_factory.mktemp("world-7"))


def test_the_distilled_stumps_follow_the_regressions_log_odds(small_world) -> None:
    from winmodel.features.builder import FeatureBuilder

    train, _ = small_world
    config = TrainConfig.model_validate({})
    builder = FeatureBuilder().fit(train)
    matrix = builder.transform(train)
    won = train["status"].eq("won").to_numpy().astype(int)
    weight = train["sample_weight"].to_numpy(float)
    data = _Data(matrix, won, weight, np.ones(len(train), bool), train.reset_index(drop=True))
    rows = np.ones(len(train), dtype=bool)
    booster = _distilled_logistic(
        data, rows, LOGISTIC, config, builder.categorical_indices_, weight
    )
    names = [f"f{i}" for i in range(matrix.shape[1])]
    regression = fit_logistic_baseline(
        pd.DataFrame(matrix, columns=names),
        won,
        weight,
        [names[i] for i in builder.categorical_indices_],
        config.seed,
        inverse_penalty=1.0 / LOGISTIC.lambda_l2,
    )
    expected = regression.decision_function(pd.DataFrame(matrix, columns=names))
    raw = booster.predict(matrix, raw_score=True)
    # The stumps reproduce the regression (up to their steps on numbers), not the labels.
    assert np.corrcoef(raw, expected)[0, 1] > 0.98
    assert np.median(np.abs(raw - expected)) < 0.15
    # Additive: every tree splits once, so each TreeSHAP contribution is one feature's own term.
    trees = booster.dump_model()["tree_info"]
    assert trees and all(tree["num_leaves"] <= 2 for tree in trees)


def _search(rows: pd.DataFrame):
    said: list[str] = []
    result = train_win_model(rows, TrainConfig.model_validate({}), progress=said.append)
    assert any("logistic (L2 10) as stumps log loss" in line for line in said)
    assert any("logistic (L2 30) as stumps log loss" in line for line in said)
    tried = result.search.set_index("candidate")
    chosen = tried.loc[tried["chosen"], "log_loss"].iloc[0]
    # The choice is the search's best log loss over the time-ordered folds (up to the tie rule).
    assert chosen <= tried["log_loss"].min() * 1.001
    return result, tried


@pytest.fixture(scope="module")
def searched(small_world):
    return _search(small_world[0])


def test_the_search_chooses_the_logistic_family_and_the_model_saves_and_scores(
    small_world, searched, tmp_path
) -> None:
    _, later = small_world
    result, tried = searched
    # Here the truth adds up and 480 deals are few: the regression beats every booster's folds.
    assert result.model.metadata["shape"]["family"] == "logistic", tried[["family", "log_loss"]]
    boosters = tried[tried["family"] == "trees"]["log_loss"].min()
    assert tried.loc[tried["chosen"], "log_loss"].iloc[0] < boosters - 0.01
    from winmodel.mlops.modelcard import render_model_card

    card = render_model_card(result, facts={})
    penalty = result.model.metadata["shape"]["lambda_l2"]
    assert f"A penalised logistic regression (L2 {penalty}" in card and "Early stopping" not in card
    folder = save_model(result.model, tmp_path / "model")
    loaded = load_model(folder)
    probability = loaded.predict_proba(later)
    assert np.allclose(probability, result.model.predict_proba(later))
    assert ((probability > 0) & (probability < 1)).all()


def test_boosters_keep_the_histories_where_they_do_better(tmp_path) -> None:
    train, _ = _world_rows(3, tmp_path)
    result, tried = _search(train)
    assert result.model.metadata["shape"]["family"] == "trees", tried[["family", "log_loss"]]


def test_a_logistic_familys_scores_read_as_any_models(small_world, searched) -> None:
    """Reasons add up to the probability, no sentence reads against its sign, decisions name figures."""
    import importlib.util
    from pathlib import Path

    from winmodel.scoring.reasons import load_catalogue
    from winmodel.scoring.score import finish_scores, score_deals
    from winmodel.settings import ScoreConfig

    spec = importlib.util.spec_from_file_location(
        "reading_rules", Path(__file__).parents[1] / "scoring" / "test_reading.py"
    )
    assert spec is not None and spec.loader is not None
    reading = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reading)
    _, later = small_world
    result, _ = searched
    assert result.model.metadata["shape"]["family"] == "logistic"
    # The newer deals as open ones, at their third snapshot (mid-way for most).
    rows = later.groupby("opportunity_id").nth(2).reset_index(drop=True)
    scored = finish_scores(
        score_deals(result.model, rows, ScoreConfig(), load_catalogue("en"), "test")
    )
    assert len(scored) == len(rows) > 50
    assert reading.reading_problems(scored) == []
