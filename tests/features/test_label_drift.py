"""Label drift: a planted collapsing segment is named; scoring warns for deals in it."""

from __future__ import annotations

import pandas as pd

from winmodel.synth.worlds import draw_world_spec, generate_world


def test_the_label_drift_report_names_a_planted_collapsing_segment() -> None:
    from winmodel.features.label_drift import describe_drift, label_drift

    world = generate_world(
        draw_world_spec(
            43, deals=6_000, snapshots=False, win_rate=0.45, drift="segment_collapse",
            drift_months=10, months=30, missing_share=0.0,
        )
    )  # fmt: skip
    column, value, _ = world.drifted
    closed = world.opportunities[world.opportunities["status"].ne("open")]
    table = label_drift(closed, recent_days=200)
    flagged = table[table["drifted"]]
    hit = flagged[(flagged["dimension"] == column) & (flagged["value"] == value)]
    assert len(hit) == 1 and hit["change"].iloc[0] == "fell"
    assert any(line.startswith(f"{column}={value}:") for line in describe_drift(table))
    # A segment nobody moved is rarely flagged: most compared values are not drifted.
    assert table["drifted"].mean() < 0.3


def test_deals_in_a_drifted_segment_get_a_scoring_warning() -> None:
    from winmodel.features.label_drift import add_drift_warnings

    rows = pd.DataFrame({"industry": ["retail", "software", None], "region": ["emea"] * 3})
    before = pd.Series(["unseen region: mars", "", ""])
    warned = add_drift_warnings(before, rows, [["industry", "retail"], ["urgency", "high"]])
    assert warned.iloc[0] == (
        "unseen region: mars; label drift: industry=retail win rate moved recently"
    )
    assert list(warned.iloc[1:]) == ["", ""]
    # A model trained now records how the segment's newest closes went against it; a blank
    # value is the segment '(blank)', as the report names it.
    lagged = add_drift_warnings(
        pd.Series(["", "", ""]),
        rows,
        [["industry", "retail"], ["industry", "(blank)"]],
        None,
        [["industry", "retail", "less"], ["industry", "(blank)", "more"]],
    )
    assert list(lagged) == [
        "label drift: industry=retail won less in the newest months than the model predicts "
        "there; its score may be too high",
        "",
        "label drift: industry=(blank) won more in the newest months than the model predicts "
        "there; its score may be too low",
    ]


def test_a_shift_below_the_test_says_the_chance_that_weighted_it() -> None:
    from winmodel.features.label_drift import (
        add_drift_warnings,
        below_test_chances,
        shifted_segments,
    )

    shifts = [
        {"dimension": "region", "value": "emea", "logit_shift": -0.42, "moved_chance": 0.4},
        # Passed the test (a model trained before moved_chance existed has none): no chance said.
        {"dimension": "industry", "value": "retail", "logit_shift": 0.5},
        {"dimension": "industry", "value": "software", "logit_shift": 0.3, "moved_chance": 1.0},
        {"dimension": "industry", "value": "software", "logit_shift": 0.1, "moved_chance": 0.2},
    ]
    assert below_test_chances(shifts) == {("region", "emea"): 0.4}
    rows = pd.DataFrame({"industry": ["retail", "software"], "region": ["emea", "apac"]})
    warned = add_drift_warnings(
        pd.Series(["", ""]), rows, [], shifted_segments(shifts), [], below_test_chances(shifts)
    )
    assert list(warned) == [
        "label drift: region=emea won less than the model expected in the newest months; score "
        "shifted -0.42 log-odds for it, weighted by a 40% chance that it moved; label drift: "
        "industry=retail won more than the model expected in the newest months; score shifted "
        "+0.50 log-odds for it",
        "label drift: industry=software won more than the model expected in the newest months; "
        "score shifted +0.40 log-odds for it",
    ]


def test_scored_deals_are_warned_only_where_the_shipped_model_lags() -> None:
    import numpy as np

    from winmodel.features.label_drift import describe_lag, model_lag

    table = pd.DataFrame(
        {
            "dimension": ["industry", "region", "region", "urgency"],
            "value": ["retail", "emea", "apac", "high"],
            "drifted": [True, True, True, False],
            "change": ["fell", "fell", "rose", "rose"],
        }
    )
    n = 400
    retail = np.arange(n) < 200
    # emea's raw win rate fell because it holds mostly retail deals now (composition).
    deals = pd.DataFrame(
        {
            "industry": np.where(retail, "retail", "software"),
            "region": np.where(np.arange(n) < 180, "emea", "na"),
        }
    )
    deals.loc[:4, "region"] = "apac"  # five newest closes: too few to tell
    truth = np.where(retail, 0.15, 0.45)
    # Outcomes exactly at those rates, spread over each region (no sampling noise in the test).
    won = np.zeros(n)
    for group in (retail, ~retail):
        index = np.flatnonzero(group)
        won[
            index[np.linspace(0, len(index) - 1, round(truth[index[0]] * len(index))).astype(int)]
        ] = 1

    # A model that still scores retail at its old 40 % lags there, and so in emea.
    lagging = model_lag(table, deals, np.where(retail, 0.40, 0.45), won).set_index("value")
    assert list(lagging.index) == ["retail", "emea", "apac"]  # the drifted rows only
    assert lagging.loc["retail", "newest_deals"] == 200
    assert lagging.loc["retail", "newest_z"] < -3
    assert lagging["lagging"].all()
    assert list(lagging["lag"]) == ["less", "less", "unknown"]
    assert "the model lags, scored deals are warned" in describe_lag(lagging.loc["retail"])
    # A model that follows the move (retail scored at 15 %): no warning, except where it cannot tell.
    following = model_lag(table, deals, truth, won).set_index("value")
    assert list(following["lagging"]) == [False, False, True]
    assert "the model follows the move" in describe_lag(following.loc["emea"])
    assert "too few to tell" in describe_lag(following.loc["apac"])
    # A segment the model shifts carries the shift's warning instead.
    shifted = model_lag(table, deals, np.where(retail, 0.40, 0.45), won, [("industry", "retail")])
    assert list(shifted["lagging"]) == [False, True, True]
    assert "the model shifts this segment" in describe_lag(shifted.set_index("value").loc["retail"])
