"""Explanations add up, and the next best milestone is the best re-scored milestone."""

import numpy as np
import pytest

from winmodel.features.milestones import MILESTONE_BY_KEY
from winmodel.features.rows import open_deal_rows
from winmodel.scoring.explain import (
    item_matrix,
    milestone_uplifts,
    next_best_milestone,
    points_from_contributions,
    top_items,
)


@pytest.fixture(scope="module")
def open_rows(trained_project):
    from winmodel.data.dataset import load_crm_data

    rows, skipped = open_deal_rows(load_crm_data(trained_project.data))
    assert skipped > 0 and len(rows) > 100
    return rows


def test_points_add_up_to_the_uncalibrated_probability_for_every_open_deal(
    trained_model, open_rows
):
    matrix = trained_model.matrix(open_rows)
    contributions = trained_model.contributions(matrix)
    grouping, items = item_matrix(trained_model)
    points, baseline, _ = points_from_contributions(contributions, grouping)
    # Points as written to --shap-out (two decimals) still add up within half a point.
    rounded = np.round(points, 2).sum(axis=1) + np.round(baseline, 2)
    uncalibrated = 100 * trained_model.uncalibrated_probability(open_rows)
    assert np.abs(points.sum(axis=1) + baseline - uncalibrated).max() < 1e-8
    assert np.abs(rounded - uncalibrated).max() < 0.5
    assert len(items) == grouping.shape[1] and grouping.sum() == len(trained_model.feature_names)


def test_points_follow_the_sign_of_the_log_odds():
    contributions = np.array([[0.5, -0.2, 0.0, -1.0], [0.0, 0.0, 0.0, 0.3]])
    grouping = np.eye(3)
    points, baseline, probability = points_from_contributions(contributions, grouping)
    assert points[0, 0] > 0 > points[0, 1] and points[0, 2] == 0
    np.testing.assert_allclose(points[1], 0.0)
    np.testing.assert_allclose(points.sum(axis=1) + baseline, probability)


def test_top_items_picks_largest_effects_and_marks_missing_sides():
    points = np.array([[3.0, -1.0, 2.0, -4.0], [1.0, 2.0, 0.5, 0.1]])
    positive, negative = top_items(points, 2)
    assert positive.tolist() == [[0, 2], [1, 0]]
    assert negative.tolist() == [[3, 1], [-1, -1]]


def test_next_best_milestone_is_the_largest_re_scored_gain(trained_model, open_rows):
    rows = open_rows.head(300)
    probability = trained_model.predict_proba(rows)
    uplifts = milestone_uplifts(trained_model, rows, probability)
    chosen, gain = next_best_milestone(uplifts)
    assert (chosen != "").mean() > 0.5
    rescored = {}
    for key in uplifts.columns:
        milestone = MILESTONE_BY_KEY[key]
        unmet = ~milestone.met(rows).to_numpy()
        # each deal re-scored from scratch with this milestone met (the whole pipeline, not the
        # what-if's shortcut of re-scoring only the trees that split on a changed feature)
        rescored[key] = 100 * (trained_model.predict_proba(milestone.mark_met(rows)) - probability)
        np.testing.assert_allclose(uplifts[key].to_numpy()[unmet], rescored[key][unmet], atol=1e-9)
        assert np.isnan(uplifts[key].to_numpy()[~unmet]).all()
        # no other unmet milestone raises the probability more than the chosen one
        assert (rescored[key][unmet] <= gain.to_numpy()[unmet] + 1e-9).all()
    # the chosen milestone's gain is what meeting it alone does to that deal
    for position in np.flatnonzero(chosen.to_numpy() != ""):
        actual = rescored[chosen.iloc[position]][position]
        assert actual == pytest.approx(gain.iloc[position], abs=1e-9)


def _freed_model(metadata: dict) -> object:
    """A stand-in with what reversed_rule reads: features, their items, the saved directions."""
    from types import SimpleNamespace

    names = ["budget_confirmed", "timeline_confirmed", "executive_sponsor", "urgency"]
    builder = SimpleNamespace(
        items_={name: name for name in names},
        kinds_={**dict.fromkeys(names[:3], "bool"), "urgency": "ordered"},
        monotone_constraints=lambda: [1, 1, 1, 1],
    )
    return SimpleNamespace(feature_names=names, feature_builder=builder, metadata=metadata)


def test_an_effect_against_a_freed_rule_is_marked_only_where_it_drives_the_reason():
    from winmodel.scoring.explain import reversed_rule
    from winmodel.scoring.reasons import load_catalogue, reversal_notes

    model = _freed_model({"monotone_freed": {"budget_confirmed": 1, "urgency": 1}})
    grouping, items = item_matrix(model)
    budget_item, urgency_item = items.index("budget_timeline"), items.index("urgency")
    nan = np.nan
    # columns: budget, timeline, sponsor, urgency; contributions the same four and the base value
    matrix = np.array(
        [
            [1, 0, 1, 0],  # budget confirmed, lowering: against the rule
            [0, 0, 1, 0],  # budget not confirmed, raising: against the rule
            [1, 0, 1, 0],  # budget confirmed, raising: the usual rule
            [1, 1, 1, 0],  # budget lowers a little, the timeline raises more: not its doing
            [nan, 0, 1, 0],  # budget unknown
            [1, 0, 1, 1],  # urgency is graded: never marked, whatever its sign
        ],
        dtype=float,
    )
    phi = np.array(
        [
            [-0.8, 0.0, 0.2, 0.0],
            [0.5, -0.1, 0.2, 0.0],
            [0.6, 0.0, 0.2, 0.0],
            [-0.2, 0.5, 0.2, 0.0],
            [-0.4, 0.0, 0.2, 0.0],
            [0.3, 0.0, 0.2, -0.7],
        ]
    )
    marks, features, directions = reversed_rule(
        model, matrix, np.column_stack([phi, -1.0 + 0 * phi[:, 0]]), grouping
    )
    assert features == ["budget_confirmed"] and directions == [1]  # urgency is not readable
    assert marks[:, budget_item].tolist() == [0, 0, -1, -1, -1, -1]
    assert (marks[:, urgency_item] == -1).all()
    assert (np.delete(marks, budget_item, axis=1) == -1).all()
    notes = reversal_notes(marks, features, directions, load_catalogue("en"))
    assert notes[0, budget_item] == (
        "against the usual rule: in your closed deals a confirmed budget went with losing"
    )
    assert notes[2, budget_item] == ""
    # Nothing freed, or an older model's metadata that does not line up: nothing to mark.
    assert reversed_rule(_freed_model({"monotone_freed": {}}), matrix, phi, grouping) is None
    older = {"monotone": True, "monotone_constraints": [1, 1]}  # two values for four features
    assert reversed_rule(_freed_model(older), matrix, phi, grouping) is None
    older = {"monotone": True, "monotone_constraints": [1, 0, 1, 1]}  # the timeline freed
    marked = reversed_rule(
        _freed_model(older), matrix, np.column_stack([phi, 0 * phi[:, 0]]), grouping
    )
    assert marked is not None and marked[1] == ["timeline_confirmed"]
