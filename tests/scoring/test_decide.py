"""The decision table, the cost still ahead, expected margin and value, deal-desk flags on tiny frames."""

import numpy as np
import pandas as pd
import pytest

from winmodel.scoring.decide import deal_desk_flags, decide, economics
from winmodel.scoring.reasons import load_catalogue
from winmodel.scoring.score import band_of
from winmodel.settings import Bands, CostModel, DealDeskLimits, RecommendationRules

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


RULES = RecommendationRules(
    decline_below_probability=0.05, pursue_min_expected_margin=20_000, qualify_min_red_flags=None
)


def _decide(rows, probability, rules=RULES, band=None, amount_limit=None):
    probability = np.array([probability])
    figures = economics(rows, probability, CostModel())
    band = band or band_of(probability, Bands())
    return decide(
        rows,
        probability,
        np.asarray(band, dtype=object),
        figures,
        pd.Series([""], index=rows.index),
        pd.Series([0.0]),
        rules,
        CATALOGUE,
        amount_limit=amount_limit,
    )


def _one(decisions):
    return decisions.recommendation.item(), decisions.rule.item(), decisions.reason.item()


def test_cost_ahead_is_remaining_effort_by_stage_times_the_loaded_cost_capped_by_the_amount():
    rows = _deal()  # no milestone column, no CRM probability: mid stage
    figures = economics(rows, np.array([0.5]), CostModel())
    assert figures.stage.item() == "mid"
    assert figures.cost_ahead.item() == pytest.approx(6 * 1000)
    assert figures.expected_margin.item() == pytest.approx(0.5 * 100_000 * 0.8)
    assert figures.expected_value.item() == pytest.approx(40_000 - 6_000)
    early = rows.assign(
        problem_confirmed=pd.array([False], dtype="boolean"),
        evaluation_criteria_defined=pd.array([False], dtype="boolean"),
    )
    assert economics(early, np.array([0.5]), CostModel()).cost_ahead.item() == 10_000
    small = _deal(amount=20_000.0)
    capped = economics(small, np.array([0.5]), CostModel())
    assert capped.cost_ahead.item() == pytest.approx(0.15 * 20_000) and capped.cost_capped.item()


def test_a_missing_amount_gives_no_money_figures_and_says_so():
    rows = _deal(amount=np.nan)
    figures = economics(rows, np.array([0.7]), CostModel())
    assert np.isnan(figures.expected_value).all() and np.isnan(figures.cost_ahead).all()
    kind, rule, reason = _one(_decide(rows, 0.45))
    assert (kind, rule) == ("qualify", "qualify.no_amount")
    assert "no amount recorded" in reason and "45%" in reason
    assert _one(_decide(rows, 0.02))[1] == "decline.low_probability"


def test_above_the_pursue_line_is_pursued_with_the_figures_named():
    kind, rule, reason = _one(_decide(_deal(), 0.6))
    assert (kind, rule) == ("pursue", "pursue.expected_margin")
    assert reason.startswith(
        "Pursue (expected margin above the pursue line): 48,000 (60% × 100,000 × 80% margin)"
    )
    assert "20,000 line" in reason


def test_red_flags_never_decline_a_deal_on_their_own():
    flagged = _deal(
        executive_sponsor=False,
        champion_role="manager",
        competitive_position="parity",
        buying_process_defined=False,
    )
    kind, rule, reason = _one(_decide(flagged, 0.7))
    assert (kind, rule) == ("pursue", "pursue.expected_margin")
    for flag in (
        "no executive sponsor above middle management",
        "parity positioning",
        "no defined buying process (just exploring)",
    ):
        assert flag in reason  # listed as what to resolve
    strict = RULES.model_copy(update={"qualify_min_red_flags": 3})
    kind, rule, reason = _one(_decide(flagged, 0.7, strict))
    assert (kind, rule) == ("qualify", "qualify.red_flags") and "3 red flags" in reason
    kind, rule, _ = _one(_decide(flagged, 0.15))
    assert (kind, rule) == ("qualify", "qualify.below_pursue_line")


def test_declines_name_their_rule_and_figures_and_never_touch_band_a():
    kind, rule, reason = _one(_decide(_deal(), 0.03))
    assert (kind, rule) == ("decline", "decline.low_probability")
    assert "3% win chance is below the 5% floor" in reason
    # Near the floor, decimals tell the two apart; the floor itself still reads whole.
    _, rule, reason = _one(_decide(_deal(), 0.0467))
    assert rule == "decline.low_probability"
    assert "4.7% win chance is below the 5.0% floor" in reason
    _, _, reason = _one(_decide(_deal(), 0.04996))
    assert "4.996% win chance is below the 5.000% floor" in reason
    # A sentence without the floor keeps whole percents.
    _, rule, reason = _one(_decide(_deal(amount=10_000.0, gross_margin_pct=10.0), 0.052))
    assert rule == "decline.negative_value" and "(5% × 10,000 × 10% margin)" in reason
    cheap = _deal(amount=10_000.0, gross_margin_pct=10.0)
    kind, rule, reason = _one(_decide(cheap, 0.3))
    assert (kind, rule) == ("decline", "decline.negative_value")
    assert (
        "expected margin 300 (30% × 10,000 × 10% margin) is below the 1,500 cost still ahead"
        in reason
    )
    kind, rule, reason = _one(_decide(cheap, 0.9))  # band A: never declined
    assert (kind, rule) == ("qualify", "qualify.band_a_negative_value") and "deal desk" in reason
    assert _one(_decide(_deal(), 0.03, band=["A"]))[0] != "decline"


def test_an_implausible_amount_is_sent_to_be_checked():
    rows = _deal(amount=2_000_000_000.0)
    kind, rule, reason = _one(_decide(rows, 0.1, amount_limit=30_000_000.0))
    assert (kind, rule) == ("qualify", "qualify.check_amount")
    assert "2,000,000,000" in reason and "30,000,000" in reason


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


def test_a_long_shot_above_the_pursue_line_is_pursued_and_says_so():
    kind, rule, reason = _one(_decide(_deal(amount=2_000_000.0), 0.03))
    assert (kind, rule) == ("pursue", "pursue.long_shot")
    assert "only 3% win chance, below the 5% floor" in reason and "above the 20,000 line" in reason
