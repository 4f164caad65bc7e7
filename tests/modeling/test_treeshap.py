"""The fast explainer equals LightGBM's own TreeSHAP and predictions, missing values and unseen categories included."""

import lightgbm as lgb
import numpy as np
import pytest

from winmodel.modeling.treeshap import FastTreeShap, TreeScores, UnsupportedBooster, softmax

RNG = np.random.default_rng(17)


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    categories = RNG.integers(0, 6, size=(n, 3)).astype(float)
    numbers = RNG.normal(size=(n, 5))
    flags = RNG.integers(0, 2, size=(n, 3)).astype(float)
    zeros = np.where(RNG.random(n) < 0.3, 0.0, RNG.normal(size=n))[:, None]
    matrix = np.hstack([categories, numbers, flags, zeros])
    matrix[RNG.random(matrix.shape) < 0.08] = np.nan  # missing values everywhere
    logit = (
        (categories[:, 0] == 2) * 1.5
        - (categories[:, 1] > 3)
        + numbers[:, 0] * flags[:, 0]
        + 0.5 * zeros[:, 0]
    )
    won = (RNG.random(n) < 1 / (1 + np.exp(-np.nan_to_num(logit)))).astype(int)
    return matrix, won


@pytest.fixture(
    scope="module",
    params=[
        {"num_leaves": 8, "max_depth": 3},
        {"num_leaves": 15, "max_depth": 4},
        {"num_leaves": 31, "max_depth": 5, "zero_as_missing": True},
    ],
)
def booster(request):
    matrix, won = _data(6000)
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "verbosity": -1,
        "seed": 3,
        "min_data_per_group": 20,
        "cat_smooth": 5,
        **request.param,
    }
    return lgb.train(
        params, lgb.Dataset(matrix, won, categorical_feature=[0, 1, 2]), num_boost_round=120
    )


def test_contributions_equal_lightgbm_pred_contrib(booster):
    matrix, _ = _data(3000)
    matrix[:50, 0] = 17.0  # a category never seen in training
    matrix[50:100, 1] = -1.0  # a negative code
    explainer = FastTreeShap(booster)
    expected = booster.predict(matrix, pred_contrib=True)
    np.testing.assert_allclose(explainer.contributions(matrix), expected, rtol=0, atol=1e-9)


def test_raw_scores_equal_lightgbm_predictions(booster):
    matrix, _ = _data(3000)
    explainer = FastTreeShap(booster)
    np.testing.assert_allclose(
        explainer.raw_score(matrix), booster.predict(matrix, raw_score=True), atol=1e-9
    )
    contributions = explainer.contributions(matrix)
    np.testing.assert_allclose(
        contributions.sum(axis=1), booster.predict(matrix, raw_score=True), atol=1e-9
    )


def test_tree_scores_equal_lightgbm_for_binary_and_multiclass_boosters(booster):
    matrix, won = _data(3000)
    matrix[:50, 0] = 17.0  # a category never seen in training
    binary = TreeScores(booster)
    assert binary.raw_scores(matrix).shape == (3000, 1)
    np.testing.assert_allclose(
        binary.raw_scores(matrix)[:, 0], booster.predict(matrix, raw_score=True), rtol=0, atol=1e-12
    )
    # Three classes, deeper trees than the explainer takes (the horizon model's kind).
    three = np.where(won == 1, 2, (np.nan_to_num(matrix[:, 3]) > 0).astype(int))
    multiclass = lgb.train(
        {"objective": "multiclass", "num_class": 3, "num_leaves": 40, "verbosity": -1, "seed": 3},
        lgb.Dataset(matrix, three, categorical_feature=[0, 1, 2]),
        num_boost_round=40,
    )
    scores = TreeScores(multiclass)
    np.testing.assert_allclose(
        scores.raw_scores(matrix), multiclass.predict(matrix, raw_score=True), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        softmax(scores.raw_scores(matrix)), multiclass.predict(matrix), rtol=0, atol=1e-12
    )
    # Variants of each row: the first columns shared, the last three differing per variant.
    shared, width = matrix[:500, :-3], 7
    varying = RNG.normal(size=(500, width, 3))
    varying[RNG.random(varying.shape) < 0.1] = np.nan
    varying[:, :, 1] = np.round(varying[:, :, 1])  # ties with some thresholds' sides
    full = np.hstack([np.repeat(shared, width, axis=0), varying.reshape(500 * width, 3)])
    expected = multiclass.predict(full, raw_score=True).reshape(500, width, 3)
    np.testing.assert_allclose(
        scores.variant_raw_scores(shared, varying), expected, rtol=0, atol=1e-12
    )
    with pytest.raises(ValueError, match="variants"):
        scores.variant_raw_scores(shared, np.zeros((500, 64, 3)))


def test_a_subset_of_trees_gives_the_change_of_a_what_if(booster):
    matrix, _ = _data(500)
    explainer = FastTreeShap(booster)
    changed = matrix.copy()
    changed[:, 8] = 1.0  # one flag set for everyone
    trees = explainer.trees_using({8})
    delta = explainer.raw_score(changed, trees) - explainer.raw_score(matrix, trees)
    full = booster.predict(changed, raw_score=True) - booster.predict(matrix, raw_score=True)
    np.testing.assert_allclose(delta, full, atol=1e-9)


def test_deep_boosters_are_refused():
    matrix, won = _data(3000)
    deep = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 64,
            "max_depth": -1,
            "verbosity": -1,
            "min_data_in_leaf": 2,
        },
        lgb.Dataset(np.nan_to_num(matrix), won),
        num_boost_round=5,
    )
    with pytest.raises(UnsupportedBooster):
        FastTreeShap(deep, max_path_features=4)


def test_distinct_rows_groups_identical_rows_exactly():
    from winmodel.modeling.treeshap import distinct_rows

    base = np.array([[1.0, np.nan, 3.0], [1.0, np.nan, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    matrix = np.vstack([base, base[::-1]])
    first, inverse = distinct_rows(matrix)
    assert len(first) == 3
    np.testing.assert_array_equal(matrix[first][inverse], matrix)
    empty_first, empty_inverse = distinct_rows(np.zeros((0, 3)))
    assert len(empty_first) == len(empty_inverse) == 0
