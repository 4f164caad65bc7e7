"""The directions the booster must respect: milestones and qualification criteria never lower a deal."""

from __future__ import annotations

import pandas as pd

from winmodel.features.builder import MONOTONE, FeatureBuilder
from winmodel.features.milestones import MILESTONES
from winmodel.scoring.explain import WHAT_IF_MOVES


def test_every_feature_a_milestone_moves_has_a_direction():
    moved = {column for milestone in MILESTONES for column in milestone.columns} | WHAT_IF_MOVES
    assert moved <= set(MONOTONE)
    assert MONOTONE["days_since_last_milestone"] == -1  # meeting one resets it to 0
    assert all(MONOTONE[name] == 1 for name in moved - {"days_since_last_milestone"})


def test_competitive_position_is_ordered_for_the_model_and_constrained():
    rows = pd.DataFrame(
        {
            "competitive_position": ["weakness", "parity", "strength", None],
            "customization_required": ["none", "moderate", "extensive", "none"],
            "industry": ["a", "b", "a", "b"],
        }
    )
    builder = FeatureBuilder().fit(
        rows, features=["competitive_position", "customization_required", "industry"]
    )
    assert builder.kinds_["competitive_position"] == "ordered"
    assert builder.transform(rows)[:3, 0].tolist() == [0.0, 1.0, 2.0]
    assert builder.monotone_constraints() == [1, -1, 0]  # unordered codes get no direction
    saved = FeatureBuilder.from_spec(
        {**builder.to_spec(), "kinds": {**builder.kinds_, "competitive_position": "categorical"}}
    )
    assert saved.monotone_constraints()[0] == 0  # an old model's unordered encoding stays free
