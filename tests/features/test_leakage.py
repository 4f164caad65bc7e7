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


def _one_class_by_cross_table(values: pd.Series, won: np.ndarray, min_share: float, other: float):
    """The cross-table reading of one_class_values: the reference its counted version must match."""
    text = values.astype("str").astype("object").where(values.notna(), "<blank>")
    table = pd.crosstab(text.to_numpy(), won)
    if table.shape[1] < 2:
        return None
    shares = table / table.sum(axis=0)
    best = None
    for cls, rest in ((True, False), (False, True)):
        hits = shares[(shares[cls] >= min_share) & (shares[rest] <= other)]
        if not hits.empty:
            value = hits[cls].idxmax()
            found = (str(value), float(shares.loc[value, cls]), float(shares.loc[value, rest]))
            found += ("won" if cls else "lost",)
            if best is None or found[1] > best[1]:
                best = found
    return best


def test_out_of_fold_rates_and_one_class_values_match_a_plain_count_per_fold():
    """The counted versions give what a per-fold group-by and a cross table give, value for value."""
    from winmodel.features.leakage import _out_of_fold_rate, one_class_values

    rng = np.random.default_rng(4)
    values = rng.choice(["a", "b", "c", "rare", "<blank>"], size=900, p=[0.4, 0.3, 0.2, 0.02, 0.08])
    values[7] = "once"  # in one fold only: the prior there
    won = rng.random(900) < np.where(values == "a", 0.6, 0.3)
    # A prior that smoothing over no deals would not give back exactly ((10 p + 0) / 10 != p).
    while (10 * won.mean()) / 10 == won.mean():
        won[np.flatnonzero(~won)[0]] = True
    fold = np.random.default_rng(9).integers(0, 5, size=900)
    expected = np.empty(900)
    for k in range(5):
        train = pd.DataFrame({"value": values[fold != k], "won": won[fold != k]})
        stats = train.groupby("value")["won"].agg(["sum", "count"])
        rate = (stats["sum"] + 10 * won.mean()) / (stats["count"] + 10)
        expected[fold == k] = pd.Series(values[fold == k]).map(rate).fillna(won.mean())
    np.testing.assert_array_equal(_out_of_fold_rate(values, won, 9, 5), expected)

    # Planted: 'only_won' on 30 % of won deals, no lost one; 'mostly_lost' on 25 % of lost, 1 won.
    labels = values.astype(object)
    labels[np.flatnonzero(won)[: int(0.3 * won.sum())]] = "only_won"
    lost_at = np.flatnonzero(~won)
    labels[lost_at[: int(0.25 * len(lost_at))]] = "mostly_lost"
    labels[np.flatnonzero(won)[-1]] = "mostly_lost"
    found = one_class_values(pd.Series(labels), won, min_share=0.2)
    assert found is not None and found[0] == "only_won" and found[2:] == (0.0, "won")
    assert one_class_values(pd.Series(labels), won, min_share=0.35) is None
    assert one_class_values(pd.Series(labels), np.ones(900, dtype=bool), min_share=0.2) is None
    # Against the cross table on columns of every kind, with blanks and tied values.
    tied = np.where(won, np.where(np.arange(900) % 2 == 0, "b_tie", "a_tie"), "lost")
    numbers = pd.Series(np.where(won, 1.5, rng.choice([2.0, np.nan], size=900)))
    flags = pd.Series(pd.array(np.where(rng.random(900) < 0.1, None, won), dtype="boolean"))
    columns = [pd.Series(labels), pd.Series(tied), numbers, flags]
    columns.append(pd.Series(np.where(rng.random(900) < 0.5, None, labels), dtype="str"))
    for column in columns:
        for share, other in ((0.2, 0.005), (0.4, 0.05), (0.9, 0.5)):
            assert one_class_values(column, won, min_share=share, max_other_share=other) == (
                _one_class_by_cross_table(column, won, share, other)
            ), (column.dtype, share)
