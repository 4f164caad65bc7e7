"""The leakage guard names what gives the outcome away."""

import numpy as np
import pandas as pd
import pytest

from winmodel.features.leakage import check_leakage, refused_by_name, univariate_auc

RNG = np.random.default_rng(5)
N = 600
WON = RNG.random(N) < 0.4


def _report(frame, **kwargs):
    return check_leakage(frame, WON, list(frame.columns), seed=1, **kwargs)


@pytest.mark.parametrize(
    "name",
    [
        "crm_probability",
        "Probability",
        "stage",
        "StageName",
        "forecast_category",
        "close_value",
        "days_to_close",
        "days_identification_to_close",
        "stage_changes",
        "is_won",
        "loss_reason",
    ],
)
def test_columns_set_at_close_are_refused_by_name(name):
    assert refused_by_name(name) is not None


def test_point_in_time_contract_features_pass_the_name_check():
    assert refused_by_name("days_to_expected_close") is None
    assert refused_by_name("discount_pct") is None


def test_label_copy_and_planted_leaks_are_excluded_and_named():
    frame = pd.DataFrame(
        {
            "copy_of_label": WON.astype(float),
            "close_amount_booked": np.where(WON, RNG.integers(1_000, 9_000, N), 0).astype(float),
            "signed_checkbox": pd.array(
                np.where(WON & (RNG.random(N) < 0.6), True, False), dtype="boolean"
            ),
            "honest": RNG.normal(size=N) + 0.3 * WON,
        }
    )
    report = _report(frame)
    assert set(report.excluded) == {"copy_of_label", "close_amount_booked", "signed_checkbox"}
    text = report.render()
    for name in report.excluded:
        assert name in text
    assert "honest" not in report.excluded


def test_close_value_zero_on_every_lost_deal_is_caught_even_under_another_name():
    value = np.where(WON, RNG.integers(500, 5_000, N), 0).astype(float)
    report = _report(pd.DataFrame({"revenue_figure": value}))
    assert report.excluded == ["revenue_figure"]
    assert report.findings[0].check in ("univariate_auc", "one_class_value")


def test_free_text_that_states_the_outcome_is_caught():
    notes = [
        f"call {i}: customer signed, deal won" if w else f"call {i}: no budget, lost to rival"
        for i, w in enumerate(WON)
    ]
    report = _report(pd.DataFrame({"notes": notes}))
    assert report.excluded == ["notes"]


def test_unique_ids_do_not_fake_a_high_auc():
    ids = pd.Series([f"ID-{i}" for i in range(N)], dtype="str")
    assert univariate_auc(ids, WON, seed=0) < 0.6


def test_allowed_features_are_kept_but_reported():
    frame = pd.DataFrame({"copy_of_label": WON.astype(float)})
    report = _report(frame, allow=["copy_of_label"])
    assert report.excluded == []
    assert report.findings[0].action == "allowed"
