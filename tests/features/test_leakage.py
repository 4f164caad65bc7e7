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


def test_out_of_fold_rates_and_one_class_values_match_a_plain_count_per_fold():
    """The counted versions give what a per-fold group-by and a cross table give, value for value."""
    from winmodel.features.leakage import _out_of_fold_rate, one_class_values

    rng = np.random.default_rng(4)
    values = rng.choice(["a", "b", "c", "rare", "<blank>"], size=900, p=[0.4, 0.3, 0.2, 0.02, 0.08])
    won = rng.random(900) < np.where(values == "a", 0.6, 0.3)
    fold = np.random.default_rng(9).integers(0, 5, size=900)
    expected = np.empty(900)
    for k in range(5):
        train = pd.DataFrame({"value": values[fold != k], "won": won[fold != k]})
        stats = train.groupby("value")["won"].agg(["sum", "count"])
        rate = (stats["sum"] + 10 * won.mean()) / (stats["count"] + 10)
        expected[fold == k] = pd.Series(values[fold == k]).map(rate).fillna(won.mean())
    np.testing.assert_allclose(_out_of_fold_rate(values, won, 9, 5), expected, rtol=1e-12)

    # 'only_won' on 30 % of won deals and no lost one; 'mostly_lost' on 25 % of lost, 1 won.
    labels = values.astype(object)
    labels[np.flatnonzero(won)[: int(0.3 * won.sum())]] = "only_won"
    lost_at = np.flatnonzero(~won)
    labels[lost_at[: int(0.25 * len(lost_at))]] = "mostly_lost"
    labels[np.flatnonzero(won)[-1]] = "mostly_lost"
    table = pd.crosstab(labels, won)
    shares = table / table.sum(axis=0)
    assert one_class_values(pd.Series(labels), won, min_share=0.2) == (
        "only_won",
        float(shares.loc["only_won", True]),
        0.0,
        "won",
    )
    found = one_class_values(pd.Series(labels), won, min_share=0.2, max_other_share=0.01)
    assert found is not None and found[0] == "only_won"  # 30 % beats mostly_lost's 25 %
    assert one_class_values(pd.Series(labels), won, min_share=0.35) is None
    assert one_class_values(pd.Series(labels), np.ones(900, dtype=bool), min_share=0.2) is None
