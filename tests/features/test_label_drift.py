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
