"""Segment shifts: a planted gap is found and shifted, chance is not, and the shift tree adds up."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from winmodel.features.builder import FeatureBuilder
from winmodel.modeling.calibrate import Calibrator, logit, sigmoid
from winmodel.modeling.segment_shift import (
    SegmentShift,
    chance_it_moved,
    find_segment_shifts,
    penalised_shift,
    raw_shift,
    with_shift_trees,
)
from winmodel.modeling.treeshap import FastTreeShap

REGIONS = ["apac", "emea", "latam", "north_america"]
INDUSTRIES = ["finance", "health", "retail", "software", "manufacturing"]


def _newest_deals(
    seed: int, gap: float, deals: int = 1500
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Deals whose outcomes follow the model's probabilities, except latam's, off by ``gap`` log-odds."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"region": rng.choice(REGIONS, deals), "industry": rng.choice(INDUSTRIES, deals)}
    )
    probability = rng.uniform(0.05, 0.8, deals)
    truth = logit(probability) + gap * frame["region"].eq("latam").to_numpy()
    won = (rng.random(deals) < sigmoid(truth)).astype(float)
    return frame, probability, won


def test_a_planted_collapse_is_found_shifted_towards_its_win_rate_and_nothing_else() -> None:
    frame, probability, won = _newest_deals(seed=1, gap=-1.2)
    shifts = find_segment_shifts(frame, probability, won, ["region", "industry"])
    assert [(s.dimension, s.value) for s in shifts] == [("region", "latam")]
    (shift,) = shifts
    latam = frame["region"].eq("latam").to_numpy()
    assert shift.z < -4 and shift.won_rate < shift.predicted_rate
    # Shrunk a little towards 0 by the prior, and close to the planted gap.
    assert -1.2 - 0.3 < shift.logit_shift < -0.8
    shifted = sigmoid(logit(probability[latam]) + shift.logit_shift).mean()
    assert abs(shifted - won[latam].mean()) < 0.03
    assert "region=latam" in shift.describe() and "log-odds" in shift.describe()


def test_without_a_gap_no_segment_is_shifted_on_most_draws() -> None:
    shifted = sum(
        bool(find_segment_shifts(*_newest_deals(seed, gap=0.0), ["region", "industry"]))
        for seed in range(20)
    )
    # Bonferroni at 5 % over nine values: about one draw in twenty may shift by chance.
    assert shifted <= 3


def test_the_prior_shrinks_a_shift_on_few_deals() -> None:
    base = np.zeros(10)
    won = np.ones(10)
    assert 0 < penalised_shift(base, won, prior_sd=0.5) < penalised_shift(base, won, prior_sd=5.0)


def test_below_the_test_a_gap_is_shifted_by_the_chance_that_it_moved() -> None:
    # 300 deals, latam 0.5 log-odds below the model: the family-wise test does not pass (z -2.7).
    frame, probability, won = _newest_deals(seed=4, gap=-0.5, deals=300)
    dimensions = ["region", "industry"]
    assert find_segment_shifts(frame, probability, won, dimensions) == []
    (shift,) = find_segment_shifts(frame, probability, won, dimensions, below_test=True)
    assert (shift.dimension, shift.value) == ("region", "latam") and -3.2 < shift.z < -2.0
    latam = frame["region"].eq("latam").to_numpy()
    full = penalised_shift(logit(probability[latam]), won[latam], prior_sd=1.0)
    chance = chance_it_moved(logit(probability[latam]), won[latam], full, 1.0, prior=1 / 9)
    assert 0.2 < chance < 0.9
    assert shift.logit_shift == pytest.approx(full * chance) and shift.moved_chance == chance
    assert f"times a {chance:.0%} chance that it moved" in shift.describe()
    # A value that passes the test keeps its whole shift.
    strong = _newest_deals(seed=1, gap=-1.2)
    (passed,) = find_segment_shifts(*strong, dimensions, below_test=True)
    (tested,) = find_segment_shifts(*strong, dimensions)
    assert passed.moved_chance == 1.0 and passed.logit_shift == pytest.approx(tested.logit_shift)
    # One segment alone (every deal in emea, z -1.3: under the test) has nothing to be weighed against.
    alone = pd.DataFrame({"region": ["emea"] * 60})
    outcome = np.r_[np.ones(25), np.zeros(35)]
    assert find_segment_shifts(alone, np.full(60, 0.5), outcome, ["region"], below_test=True) == []


def test_without_a_gap_the_chance_weighted_shifts_stay_small() -> None:
    total = [
        sum(
            abs(shift.logit_shift)
            for shift in find_segment_shifts(
                *_newest_deals(seed, gap=0.0), ["region", "industry"], below_test=True
            )
        )
        for seed in range(20)
    ]
    # Measured: about 0.03 log-odds a draw in all, against 1.2 for a real collapse.
    assert np.mean(total) < 0.1 and max(total) < 0.5


def test_the_chance_that_a_segment_moved_grows_with_the_evidence() -> None:
    base = np.zeros(200)
    chances = []
    for wins in (100, 80, 60):
        outcome = np.r_[np.ones(wins), np.zeros(200 - wins)]
        shift = penalised_shift(base, outcome, prior_sd=1.0)
        chances.append(chance_it_moved(base, outcome, shift, 1.0, prior=0.1))
    # 50 % won as predicted: less likely moved than the 10 % prior; 40 % and 30 %: ever more likely.
    assert chances[0] < 0.1 < chances[1] < chances[2] and chances[2] > 0.99


def _booster_and_builder() -> tuple[lgb.Booster, FeatureBuilder, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    rows = pd.DataFrame(
        {
            "region": rng.choice(REGIONS, 800),
            "industry": rng.choice(INDUSTRIES, 800),
            "amount": rng.lognormal(10, 1, 800),
        }
    )
    builder = FeatureBuilder(
        extra_features=[
            ("region", "categorical"),
            ("industry", "categorical"),
            ("amount", "numeric"),
        ]
    ).fit(rows)
    matrix = builder.transform(rows)
    won = (rng.random(800) < 0.3 + 0.3 * rows["region"].eq("emea")).astype(int)
    dataset = lgb.Dataset(
        matrix, won, categorical_feature=builder.categorical_indices_, free_raw_data=False
    )
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": 1}
    return lgb.train(params, dataset, 20), builder, rows, matrix


def test_a_shift_tree_adds_its_shift_to_the_segments_raw_score_only_and_reasons_add_up() -> None:
    booster, builder, rows, matrix = _booster_and_builder()
    shift = SegmentShift("region", "latam", 120, 0.1, 0.3, -5.0, -0.9, raw_shift=-0.75)
    shifted = with_shift_trees(booster, builder, [shift], matrix)
    assert shifted.num_trees() == booster.num_trees() + 1
    moved = shifted.predict(matrix, raw_score=True) - booster.predict(matrix, raw_score=True)
    latam = rows["region"].eq("latam").to_numpy()
    np.testing.assert_allclose(moved[latam], -0.75, atol=1e-9)
    np.testing.assert_allclose(moved[~latam], 0.0, atol=1e-12)
    # Exact TreeSHAP (winmodel's and LightGBM's) attribute the shift to the region and add up.
    contributions = FastTreeShap(shifted).contributions(matrix)
    np.testing.assert_allclose(contributions, shifted.predict(matrix, pred_contrib=True), atol=1e-9)
    np.testing.assert_allclose(
        contributions.sum(axis=1), shifted.predict(matrix, raw_score=True), atol=1e-9
    )
    region = builder.feature_names_.index("region")
    before = booster.predict(matrix, pred_contrib=True)
    assert (contributions[latam, region] < before[latam, region]).all()
    # The model file round-trips (what the saved model and the pyfunc load).
    reloaded = lgb.Booster(model_str=shifted.model_to_string())
    np.testing.assert_allclose(
        reloaded.predict(matrix, raw_score=True), shifted.predict(matrix, raw_score=True)
    )


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_the_raw_shift_moves_the_calibrated_mean_as_the_log_odds_shift_says(method: str) -> None:
    rng = np.random.default_rng(8)
    raw = rng.normal(-0.5, 1.2, 4000)
    won = (rng.random(4000) < sigmoid(0.7 * raw)).astype(int)
    calibrator = Calibrator(method).fit(raw, won)
    segment = raw[:300]
    shift = raw_shift(calibrator, segment, -0.6)
    target = sigmoid(logit(calibrator.transform(segment)) - 0.6).mean()
    assert abs(calibrator.transform(segment + shift).mean() - target) < 0.01


@pytest.fixture(scope="module")
def collapsed_world(tmp_path_factory):
    """A flat 6,000-deal world whose one segment collapsed ten months ago: its rows and one-shape config."""
    from winmodel.data.dataset import load_crm_data
    from winmodel.data.mapping import Mapping
    from winmodel.features.rows import build_training_rows
    from winmodel.settings import TrainConfig
    from winmodel.synth.worlds import draw_world_spec, generate_world

    world = generate_world(
        draw_world_spec(
            43, deals=6_000, snapshots=False, win_rate=0.45, drift="segment_collapse",
            drift_months=10, months=30, missing_share=0.0,
        )
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("collapsed")
    world.opportunities.to_parquet(folder / "opportunities.parquet")
    crm = load_crm_data(folder, Mapping(name="collapsed", fixed_fields=list(world.fixed_fields)))
    config = TrainConfig.model_validate(
        {
            "model": {"candidates": [{"num_leaves": 7, "max_depth": 3}], "search_folds": 1},
            "splits": {"peers": False},
        }
    )
    rows, _ = build_training_rows(crm, config)
    return world, crm, rows, config


def _train(collapsed_world, **segment_shift):
    from winmodel.modeling.train import train_win_model

    _, crm, rows, config = collapsed_world
    config = config.model_copy(
        update={"segment_shift": config.segment_shift.model_copy(update=segment_shift)}
    )
    return train_win_model(
        rows, config, extra_features=[(f.name, f.kind) for f in crm.extra_features]
    )


def test_training_shifts_the_planted_collapse_and_scoring_says_so(collapsed_world) -> None:
    from winmodel.features.rows import open_deal_rows
    from winmodel.scoring.reasons import load_catalogue
    from winmodel.scoring.score import score_deals
    from winmodel.settings import ScoreConfig

    world, crm, _, _ = collapsed_world
    column, value, _ = world.drifted
    shifted = _train(collapsed_world)
    plain = _train(collapsed_world, enabled=False)
    shifts = shifted.model.metadata["segment_shifts"]
    found = [s for s in shifts if (s["dimension"], s["value"]) == (column, value)]
    assert len(found) == 1 and found[0]["logit_shift"] < -0.3, shifts
    assert found[0]["won_rate"] < found[0]["predicted_rate"]
    assert plain.model.metadata["segment_shifts"] == []
    # The drift report names the segment; unshifted, the model lags there and its deals are warned;
    # shifted, they carry the shift's warning instead.
    (plain_line,) = [
        line
        for line in plain.model.metadata["drifted_segments"]
        if line.startswith(f"{column}={value}:")
    ]
    assert plain_line.endswith("the model lags, scored deals are warned")
    assert [column, value] in plain.model.metadata["drifted_values"]
    assert [column, value, "less"] in plain.model.metadata["drifted_lags"]
    (shifted_line,) = [
        line
        for line in shifted.model.metadata["drifted_segments"]
        if line.startswith(f"{column}={value}:")
    ]
    assert "the model shifts this segment" in shifted_line
    assert [column, value] not in shifted.model.metadata["drifted_values"]
    assert shifted.model.booster.num_trees() == plain.model.booster.num_trees() + len(shifts)
    from winmodel.mlops.modelcard import render_model_card

    learned = plain.model.booster.num_trees()
    assert f"{learned} (+ {len(shifts)} segment-shift) trees" in render_model_card(
        shifted, facts={}
    )
    # The open deals of the segment score lower than without the shift, the others as before.
    open_rows, _ = open_deal_rows(crm)
    inside = open_rows[column].astype("str").eq(value).to_numpy()
    moved = shifted.model.predict_proba(open_rows) - plain.model.predict_proba(open_rows)
    # Rows clipped at the calibration's floor cannot move; the segment as a whole does.
    assert (moved[inside] <= 0).all() and moved[inside].mean() < -0.02
    others = [s for s in shifts if s is not found[0]]
    if not others:
        np.testing.assert_allclose(moved[~inside], 0.0, atol=1e-12)
    scored = score_deals(shifted.model, open_rows, ScoreConfig(), load_catalogue("en"), "test")
    warned = scored.loc[inside, "data_warnings"].str.contains(
        f"label drift: {column}={value} won less than the model expected"
    )
    assert warned.all()


def test_a_shift_tree_reaches_codes_past_the_first_bitset_word_and_leaves_blanks_alone() -> None:
    rng = np.random.default_rng(9)
    values = [f"competitor_{number:02d}" for number in range(40)]
    rows = pd.DataFrame(
        {"primary_competitor": rng.choice(values, 1200), "amount": rng.random(1200)}
    )
    rows.loc[rows.index[:50], "primary_competitor"] = None
    builder = FeatureBuilder(
        extra_features=[("primary_competitor", "categorical"), ("amount", "numeric")]
    ).fit(rows)
    matrix = builder.transform(rows)
    won = (rng.random(1200) < 0.4).astype(int)
    dataset = lgb.Dataset(matrix, won, categorical_feature=builder.categorical_indices_)
    booster = lgb.train({"objective": "binary", "num_leaves": 3, "verbose": -1}, dataset, 5)
    late = "competitor_37"
    assert builder.categories_["primary_competitor"].index(late) >= 32
    shift = SegmentShift("primary_competitor", late, 40, 0.1, 0.4, -4.0, -1.0, raw_shift=-1.0)
    moved = with_shift_trees(booster, builder, [shift], matrix).predict(
        matrix, raw_score=True
    ) - booster.predict(matrix, raw_score=True)
    inside = rows["primary_competitor"].eq(late).fillna(False).to_numpy(dtype=bool)
    np.testing.assert_allclose(moved[inside], -1.0, atol=1e-9)
    np.testing.assert_allclose(moved[~inside], 0.0, atol=1e-12)  # blanks included


def test_a_recent_collapse_is_shifted_again_on_the_deals_created_since_and_lands_closer_to_the_truth(
    tmp_path,
) -> None:
    """A segment that collapsed four months ago: the newest closes are mostly deals created before it.

    With ``closed_and_created``, the deals created (and closed) in the newest months are judged
    after the first shift and shift the segment further; the open deals' probabilities land closer
    to their true ones than with the first shift alone, and the scored warning gives the total.
    """
    from winmodel.data.dataset import load_crm_data
    from winmodel.data.mapping import Mapping
    from winmodel.features.rows import build_training_rows, open_deal_rows
    from winmodel.modeling.train import train_win_model
    from winmodel.scoring.reasons import load_catalogue
    from winmodel.scoring.score import score_deals
    from winmodel.settings import ScoreConfig, TrainConfig
    from winmodel.synth.worlds import draw_world_spec, generate_world

    world = generate_world(
        draw_world_spec(
            44, deals=12_000, snapshots=False, win_rate=0.45, drift="segment_collapse",
            drift_months=4, months=30, missing_share=0.0,
        )
    )  # fmt: skip
    world.opportunities.to_parquet(tmp_path / "opportunities.parquet")
    crm = load_crm_data(tmp_path, Mapping(name="recent", fixed_fields=list(world.fixed_fields)))
    config = TrainConfig.model_validate(
        {
            "model": {"candidates": [{"num_leaves": 7, "max_depth": 3}], "search_folds": 1},
            "segment_shift": {"evidence": "closed_and_created"},
            "splits": {"peers": False},
        }
    )
    rows, _ = build_training_rows(crm, config)
    model = train_win_model(
        rows, config, extra_features=[(f.name, f.kind) for f in crm.extra_features]
    ).model
    column, value, _ = world.drifted
    shifts = model.metadata["segment_shifts"]
    assert [(s["dimension"], s["value"], s["evidence"]) for s in shifts] == [
        (column, value, "closed"),
        (column, value, "created"),
    ], shifts
    assert all(s["logit_shift"] < 0 for s in shifts)
    assert "deals created and closed in the newest months" in SegmentShift(**shifts[1]).describe()

    open_rows, _ = open_deal_rows(crm)
    inside = open_rows[column].astype("str").eq(value).to_numpy()
    truth = (
        world.truth.set_index("opportunity_id")
        .loc[open_rows["opportunity_id"], "true_probability"]
        .to_numpy()
    )
    matrix = model.feature_builder.transform(open_rows)
    trees = model.booster.num_trees()

    def calibrated(num_trees: int) -> np.ndarray:
        raw = model.booster.predict(matrix, raw_score=True, num_iteration=num_trees)
        return model.calibrator.transform(raw)

    both, first_only = calibrated(trees), calibrated(trees - 1)
    # The second stage judged the deals created and closed in the holdout months (each by its last
    # row) against the scores with the first shift applied: its "predicted" is theirs.
    start, end = (pd.Timestamp(day) for day in model.metadata["holdout_window"].split(" to "))
    late = rows[
        rows["is_last_before_close"]
        & rows["close_date"].between(start, end, inclusive="left")
        & (rows["created_date"] >= start)
        & rows[column].astype("str").eq(value)
    ]
    assert len(late) == shifts[1]["deals"]
    late_raw = model.booster.predict(
        model.feature_builder.transform(late), raw_score=True, num_iteration=trees - 1
    )
    assert abs(model.calibrator.transform(late_raw).mean() - shifts[1]["predicted_rate"]) < 1e-9
    np.testing.assert_allclose(both, model.predict_proba(open_rows), atol=1e-9)
    assert both[inside].mean() < first_only[inside].mean()
    np.testing.assert_allclose(both[~inside], first_only[~inside], atol=1e-12)
    error = {
        name: float(np.mean((p[inside] - truth[inside]) ** 2))
        for name, p in (("both", both), ("first", first_only))
    }
    assert error["both"] < error["first"], error

    scored = score_deals(model, open_rows, ScoreConfig(), load_catalogue("en"), "test")
    total = shifts[0]["logit_shift"] + shifts[1]["logit_shift"]
    assert (
        scored.loc[inside, "data_warnings"]
        .str.contains(
            f"{column}={value} won less than the model expected in the newest months; "
            f"score shifted {total:+.2f} log-odds",
            regex=False,
        )
        .all()
    )


def test_a_shift_record_reads_back_with_fields_older_or_newer_than_this_winmodel() -> None:
    shift = SegmentShift("region", "emea", 112, 0.03, 0.09, -2.5, -0.42, -0.4, "closed", 0.4)
    assert SegmentShift.from_dict(shift.to_dict()) == shift
    older = {key: value for key, value in shift.to_dict().items() if key != "moved_chance"}
    assert SegmentShift.from_dict(older).moved_chance == 1.0
    assert SegmentShift.from_dict({**older, "added_later": "x"}).describe() == (
        SegmentShift.from_dict(older).describe()
    )
