"""The business directions (meeting a milestone never lowers a score) are kept unless the deals contradict them."""

from __future__ import annotations

import numpy as np

from winmodel.modeling.train import checked_monotone
from winmodel.settings import ModelSettings


def _deals(n: int = 2_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    helps = rng.random(n) < 0.5
    hurts = rng.random(n) < 0.5
    noise = rng.random(n) < 0.5
    log_odds = -0.3 + 1.2 * helps - 1.2 * hurts
    won = (rng.random(n) < 1 / (1 + np.exp(-log_odds))).astype(int)
    return np.column_stack([helps, hurts, noise, rng.normal(size=n)]).astype(float), won


def test_a_direction_the_deals_contradict_is_dropped_and_named():
    matrix, won = _deals()
    kept, dropped = checked_monotone(matrix, won, ["a", "b", "c", "d"], [1, 1, 1, 0])
    assert kept == (1, 0, 1, 0)  # "b" goes with losing: left free
    assert len(dropped) == 1 and dropped[0].startswith("b: ")
    assert "opposite" in dropped[0] and "left unconstrained" in dropped[0]


def test_agreeing_or_unclear_directions_are_kept():
    matrix, won = _deals()
    # "b" constrained downwards agrees with the deals; "c" is noise: no evidence against.
    kept, dropped = checked_monotone(matrix, won, ["a", "b", "c", "d"], [1, -1, -1, 0])
    assert kept == (1, -1, -1, 0) and not dropped


def test_few_or_constant_values_are_not_judged():
    matrix, won = _deals(n=20)
    kept, _ = checked_monotone(matrix, won, ["a", "b", "c", "d"], [1, 1, 1, 1])
    assert kept == (1, 1, 1, 1)  # 20 deals: too few to overrule the rule
    constant = np.column_stack([np.ones(500), np.full(500, np.nan)])
    kept, dropped = checked_monotone(constant, np.arange(500) % 2, ["x", "y"], [1, 1])
    assert kept == (1, 1) and not dropped


def test_how_clear_a_contradiction_must_be_is_a_setting():
    rng = np.random.default_rng(13)
    x = (rng.random(600) < 0.5).astype(float)
    won = (rng.random(600) < 1 / (1 + np.exp(0.3 * x))).astype(int)  # a weak negative effect
    z = abs(np.corrcoef(x, won)[0, 1]) * np.sqrt(600)
    assert 2.0 < z < 3.0  # between the default and the threshold before it
    matrix = x[:, None]
    assert checked_monotone(matrix, won, ["x"], [1], contradiction_z=z - 0.1)[0] == (0,)
    assert checked_monotone(matrix, won, ["x"], [1], contradiction_z=z + 0.1)[0] == (1,)
    assert checked_monotone(matrix, won, ["x"], [1], contradiction_z=3.0)[0] == (1,)
    # The default is the model setting's (pipelines/train.yaml: model.monotone_contradiction_z).
    assert ModelSettings().monotone_contradiction_z == 2.0
    assert checked_monotone(matrix, won, ["x"], [1])[0] == (0,)


def test_a_large_export_can_have_its_own_bar():
    rng = np.random.default_rng(8)
    n = 12_000
    x = (rng.random(n) < 0.5).astype(float)
    won = (rng.random(n) < 1 / (1 + np.exp(0.05 * x))).astype(int)  # a faint negative effect
    z = abs(np.corrcoef(x, won)[0, 1]) * np.sqrt(n)
    assert 1.0 < z < 2.0  # below the usual bar, above the large exports' one
    matrix = x[:, None]
    assert checked_monotone(matrix, won, ["x"], [1], 2.0, None)[0] == (1,)
    assert checked_monotone(matrix, won, ["x"], [1], 2.0, 1.0, large_deals=n)[0] == (0,)
    # judged on fewer deals than the large bar asks: the usual bar
    assert checked_monotone(matrix, won, ["x"], [1], 2.0, 1.0, large_deals=n + 1)[0] == (1,)
    # The defaults are the model settings' (pipelines/train.yaml): 1.0 from 5,000 deals.
    assert (
        ModelSettings().monotone_contradiction_z_large,
        ModelSettings().monotone_large_deals,
    ) == (
        1.0,
        5_000,
    )
    assert checked_monotone(matrix, won, ["x"], [1])[0] == (0,)
