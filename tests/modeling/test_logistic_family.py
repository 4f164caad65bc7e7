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


def _world_rows(
    seed: int, folder, deals: int = 600, snapshots: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 600-deal snapshot export (by default): closed rows, the older 80 % and the newer 20 %."""
    from winmodel.data.dataset import load_crm_data
    from winmodel.data.io import write_table_atomic
    from winmodel.features.rows import build_training_rows

    world = generate_world(
        draw_world_spec(
            seed, deals=deals, snapshots=snapshots, win_rate=0.45, signal=2.5, months=24,
            label_noise=0.0, drift="none", missing_share=0.1,
        )
    )  # fmt: skip
    write_table_atomic(world.opportunities, folder / "opportunities.parquet")
    assert (world.snapshots is not None) == snapshots
    if world.snapshots is not None:
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


def _search(rows: pd.DataFrame, **model: object):
    said: list[str] = []
    # The family alone (blends of it with a booster: the tests at the end).
    config = TrainConfig.model_validate(
        {"model": {"blend_weights": [], **model}, "splits": {"peers": False}}
    )
    result = train_win_model(rows, config, progress=said.append)
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
    # A flat export whose truth the stumps follow better than the regression (search log loss
    # 0.599 against 0.662). In snapshot worlds the milestones' waits make the truth additive in
    # log-odds, and the regression wins there (seed 3's snapshots: 0.121 against 0.146).
    train, _ = _world_rows(11, tmp_path, deals=1000, snapshots=False)
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


# --------------------------------------------------------------------------- blends


def test_a_blend_is_one_booster_whose_raw_score_is_the_weighted_sum() -> None:
    import lightgbm as lgb

    from winmodel.modeling.blend import blend_boosters

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(2000, 5))
    matrix[:, 4] = rng.integers(0, 40, 2000)  # a categorical past the first 32-bit word
    won = (matrix[:, 0] + np.sin(matrix[:, 1]) + (matrix[:, 4] % 3 == 0) > 0.5).astype(int)
    params = {"verbose": -1, "min_data_per_group": 5}
    trees = lgb.train(
        {**params, "objective": "binary", "num_leaves": 7},
        lgb.Dataset(matrix, won, categorical_feature=[4]),
        60,
    )
    stumps = lgb.train(
        {**params, "objective": "cross_entropy", "num_leaves": 2},
        lgb.Dataset(matrix, 0.8 * won + 0.1, categorical_feature=[4]),
        90,
    )
    blend = blend_boosters(trees, 0.3, stumps)
    assert blend.num_trees() == 150
    raw = blend.predict(matrix, raw_score=True)
    expected = 0.3 * trees.predict(matrix, raw_score=True) + 0.7 * stumps.predict(
        matrix, raw_score=True
    )
    assert np.abs(raw - expected).max() < 1e-9
    # TreeSHAP: LightGBM's and ours add up to the blended raw score.
    from winmodel.modeling.treeshap import FastTreeShap

    ours = FastTreeShap(blend).contributions(matrix[:200])
    assert np.abs(ours.sum(axis=1) - raw[:200]).max() < 1e-6
    assert np.abs(ours - blend.predict(matrix[:200], pred_contrib=True)).max() < 1e-6
    # The saved text round-trips.
    again = lgb.Booster(model_str=blend.model_to_string())
    assert np.abs(again.predict(matrix, raw_score=True) - raw).max() < 1e-12
    with pytest.raises(ValueError, match="weight"):
        blend_boosters(trees, 0.0, stumps)


def test_a_blend_the_search_chooses_is_shipped_saved_explained_and_read(tmp_path_factory, tmp_path):
    """With the noise rule off (blend_min_z 0), this 600-deal world's folds prefer a blend.

    Seed 3: with a closed deal's last snapshot at 0.3 of its weight, seed 7's folds (the other
    tests' world) no longer prefer one.
    """
    from winmodel.mlops.modelcard import render_model_card

    train, later = _world_rows(3, tmp_path_factory.mktemp("world-3"))
    said: list[str] = []
    config = TrainConfig.model_validate({"model": {"blend_min_z": 0}, "splits": {"peers": False}})
    result = train_win_model(train, config, progress=said.append)
    tried = result.search.set_index("candidate")
    blends = tried[tried["blend_with"].notna()]
    # Three weights judged and said; those not above the best single shape are no candidates.
    assert sum("search: blend" in line for line in said) == 3
    assert len(blends) >= 1 and (blends["gain_z"] >= 0).all()
    shape = result.model.metadata["shape"]
    assert shape["blend_with"] and shape["blend_with"]["family"] == "logistic", tried
    assert tried.loc[tried["chosen"], "log_loss"].iloc[0] <= tried["log_loss"].min() * 1.001
    card = render_model_card(result, facts={})
    assert "A blend, " in card and "logistic (L2" in card
    # Trained without the peers (splits.peers: false): no peer paragraph, the note says why.
    assert "HistGradientBoostingClassifier" not in card
    assert "peers not fitted (splits.peers: false)" in card
    # The replay of the recipe (refit_at) rebuilds the blend from the saved shape.
    from winmodel.modeling.train import refit_at

    replay = refit_at(result.model, train, train["close_date"].max(), config)
    assert replay.booster.num_trees() > config.model.max_trees  # both parts' trees
    folder = save_model(result.model, tmp_path / "model")
    loaded = load_model(folder)
    probability = loaded.predict_proba(later)
    assert np.allclose(probability, result.model.predict_proba(later))
    raw = loaded.booster.predict(loaded.matrix(later), raw_score=True)
    contributions = loaded.contributions(loaded.matrix(later))
    assert np.abs(contributions.sum(axis=1) - raw).max() < 1e-6
    # Scored as open deals, it reads as any model: reasons add up, decisions name their rule.
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
    rows = later.groupby("opportunity_id").nth(2).reset_index(drop=True)
    scored = finish_scores(score_deals(loaded, rows, ScoreConfig(), load_catalogue("en"), "test"))
    assert len(scored) == len(rows) > 50
    assert reading.reading_problems(scored) == []
    scored.head(10).to_csv(tmp_path / "ten.csv", index=False)
