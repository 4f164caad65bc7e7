"""Recommendation rules, expected value and deal-desk flags on tiny frames."""

import numpy as np
import pandas as pd
import pytest

from winmodel.scoring.decide import deal_desk_flags, expected_value, recommend
from winmodel.scoring.reasons import load_catalogue
from winmodel.settings import CostModel, DealDeskLimits, RecommendationRules

CATALOGUE = load_catalogue("en")


def _deal(**values):
    base = {
        "amount": 100_000.0,
        "gross_margin_pct": 80.0,
        "cac_estimate": 10_000.0,
        "executive_sponsor": True,
        "champion_role": "vp",
        "problem_quantified": True,
        "urgency": "high",
        "competitive_position": "strength",
        "buying_process_defined": True,
        "customization_required": "none",
        "discount_pct": 10.0,
        "services_share": 0.1,
        "custom_dev_required": False,
    }
    base.update(values)
    frame = pd.DataFrame([base])
    for column in (
        "executive_sponsor",
        "problem_quantified",
        "buying_process_defined",
        "custom_dev_required",
    ):
        frame[column] = frame[column].astype("boolean")
    return frame


def _recommend(rows, probability):
    value = expected_value(rows, np.array([probability]), CostModel())
    milestone = pd.Series([""], index=rows.index)
    return recommend(
        rows,
        np.array([probability]),
        value,
        milestone,
        pd.Series([0.0]),
        RecommendationRules(),
        CATALOGUE,
    )


def test_expected_value_is_probability_times_margin_minus_remaining_cost():
    rows = _deal()
    value = expected_value(rows, np.array([0.5]), CostModel())
    # no milestone columns: the whole CAC is still ahead
    assert value[0] == pytest.approx(0.5 * 100_000 * 0.8 - 10_000)
    half_done = rows.assign(
        problem_confirmed=pd.array([True], dtype="boolean"),
        evaluation_criteria_defined=pd.array([False], dtype="boolean"),
    )
    assert expected_value(half_done, np.array([0.5]), CostModel())[0] == pytest.approx(
        40_000 - 5_000
    )


def test_a_qualified_likely_deal_is_pursued():
    kind, reason = _recommend(_deal(), 0.6)
    assert kind.item() == "pursue" and reason.item().startswith("Pursue: 60% win chance")


def test_three_red_flags_mean_decline_whatever_the_probability():
    rows = _deal(
        executive_sponsor=False,
        champion_role="manager",
        competitive_position="parity",
        buying_process_defined=False,
    )
    kind, reason = _recommend(rows, 0.7)
    assert kind.item() == "decline"
    for flag in (
        "no executive sponsor above middle management",
        "parity positioning",
        "just exploring",
    ):
        assert flag in reason.item()


def test_low_probability_or_negative_value_means_decline_and_the_middle_qualifies():
    assert _recommend(_deal(), 0.05)[0].item() == "decline"
    assert _recommend(_deal(cac_estimate=90_000.0), 0.3)[0].item() == "decline"  # value < 0
    kind, reason = _recommend(_deal(urgency="none", problem_quantified=False), 0.25)
    assert kind.item() == "qualify" and "vague pain without a time frame" in reason.item()


def test_deal_desk_flags_follow_the_limits():
    rows = _deal(
        discount_pct=32.0,
        services_share=0.45,
        gross_margin_pct=40.0,
        custom_dev_required=True,
        customization_required="extensive",
    )
    flags = deal_desk_flags(rows, DealDeskLimits(), CATALOGUE).item()
    for text in (
        "discount 32% above the 25% approval limit",
        "custom development",
        "services 45%",
        "gross margin 40% below the 50% floor",
        "roadmap",
    ):
        assert text in flags
    assert deal_desk_flags(_deal(), DealDeskLimits(), CATALOGUE).item() == ""
