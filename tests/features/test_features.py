"""Point-in-time rows and the feature builder."""

import numpy as np
import pandas as pd
import pytest

from winmodel.features.builder import ITEM_OF_FEATURE, FeatureBuilder
from winmodel.features.milestones import MILESTONE_BY_KEY
from winmodel.features.rows import (
    AS_OF,
    add_history_features,
    select_latest_rows,
    select_training_rows,
)


def _deal(opportunity_id="A", status="won", close="2026-03-10"):
    return {
        "opportunity_id": opportunity_id,
        "created_date": pd.Timestamp("2026-01-01"),
        "close_date": pd.Timestamp(close),
        "status": status,
        "amount": 100.0,
        "deal_type": "greenfield",
        "urgency": "high",
    }


def _snapshots(opportunity_id="A", dates=("2026-01-08", "2026-02-05", "2026-03-05", "2026-03-10")):
    n = len(dates)
    return pd.DataFrame(
        {
            "opportunity_id": opportunity_id,
            "snapshot_date": pd.to_datetime(list(dates)),
            "close_date": pd.to_datetime(
                ["2026-02-01", "2026-03-01", "2026-03-10", "2026-03-10"][:n]
            ),
            "amount": [100.0, 120.0, 120.0, 120.0][:n],
            "problem_confirmed": pd.array([False, True, True, True][:n], dtype="boolean"),
            "budget_confirmed": pd.array([False, False, True, True][:n], dtype="boolean"),
            "timeline_confirmed": pd.array([False, False, True, True][:n], dtype="boolean"),
            "champion_engagement": pd.Series(
                ["passive", "responsive", "active", "coaching"][:n], dtype="str"
            ),
            "crm_probability": [10.0, 20.0, 60.0, 100.0][:n],
        }
    )


def test_history_features_look_only_backwards():
    rows = add_history_features(pd.DataFrame([_deal()]), _snapshots())
    assert rows["deal_age_days"].tolist() == [7, 35, 63, 68]
    assert rows["close_date_pushes"].tolist() == [0, 1, 2, 2]
    assert rows["amount_change_pct"].round(1).tolist() == [0.0, 20.0, 20.0, 20.0]
    # milestones met: 0, then problem confirmed (Feb 5), then budget+timeline and champion active (Mar 5)
    assert rows["days_since_last_milestone"].tolist() == [0, 0, 0, 5]
    assert rows["champion_engagement_trend"].tolist()[:2] == [0, 1]
    # The snapshot's own close date is the expected one; the opportunity's stays the actual one.
    assert (rows["close_date"] == pd.Timestamp("2026-03-10")).all()
    assert rows["expected_close_date"].iloc[0] == pd.Timestamp("2026-02-01")


def test_a_milestones_wait_counts_days_to_its_first_met_snapshot_or_so_far():
    rows = add_history_features(pd.DataFrame([_deal()]), _snapshots())
    # Problem confirmed on Feb 5 (day 35); budget on Mar 5 (day 63); until then the wait runs on.
    assert rows["problem_confirmed_wait_days"].tolist() == [7, 35, 35, 35]
    assert rows["budget_confirmed_wait_days"].tolist() == [7, 35, 63, 63]
    # Only yes/no milestones that the export holds get a wait.
    assert "economic_buyer_aware_wait_days" not in rows
    assert "stakeholders_identified_wait_days" not in rows


def test_a_wait_is_blank_on_a_blank_row_and_runs_on_when_a_milestone_is_undone():
    snapshots = _snapshots().assign(
        problem_confirmed=pd.array([False, True, False, pd.NA], dtype="boolean")
    )
    rows = add_history_features(pd.DataFrame([_deal()]), snapshots)
    waits = rows["problem_confirmed_wait_days"]
    assert waits.iloc[:3].tolist() == [7, 35, 63] and np.isnan(waits.iloc[3])
    # The same deal seen later: each row reads only the snapshots up to its own date.
    early = add_history_features(pd.DataFrame([_deal()]), _snapshots().iloc[:2])
    assert early["budget_confirmed_wait_days"].tolist() == [7, 35]


def test_an_open_deals_milestone_known_only_today_is_dated_today(tmp_path):
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import open_deal_rows

    deals = pd.DataFrame([_deal(name, status="open", close="2026-04-30") for name in "AB"])
    deals["problem_confirmed"] = pd.array([True, True], dtype="boolean")
    # A's latest snapshot left the milestone blank; B has no snapshot at all.
    snapshots = _snapshots("A", dates=("2026-01-08", "2026-02-05")).assign(
        problem_confirmed=pd.array([False, pd.NA], dtype="boolean")
    )
    deals.to_parquet(tmp_path / "opportunities.parquet")
    snapshots.to_parquet(tmp_path / "snapshots.parquet")
    rows = open_deal_rows(load_crm_data(tmp_path))[0].set_index("opportunity_id")
    # Both are scored on Feb 5, day 35: met as today's row says, first seen met today.
    assert rows["problem_confirmed"].tolist() == [True, True]
    assert rows["problem_confirmed_wait_days"].tolist() == [35, 35]
    assert rows["deal_age_days"].tolist() == [35, 35]
    # A known milestone keeps its history's wait; one nobody knows stays blank.
    assert rows.loc["A", "budget_confirmed_wait_days"] == 35
    assert np.isnan(rows.loc["B", "budget_confirmed_wait_days"])


def test_training_rows_use_only_snapshots_strictly_before_close():
    rows = add_history_features(pd.DataFrame([_deal()]), _snapshots())
    training = select_training_rows(rows, max_per_deal=10)
    assert (training[AS_OF] < training["close_date"]).all()
    assert len(training) == 3  # the close-date snapshot (stage won, probability 100) is left out
    assert training["sample_weight"].sum() == pytest.approx(1.0)
    assert training.loc[training["is_last_before_close"], "sample_weight"].item() == pytest.approx(
        0.3
    )


def test_training_rows_skip_open_deals_and_cap_rows_per_deal():
    dates = pd.date_range("2026-01-02", periods=20, freq="7D")
    closed = _snapshots("A", dates=tuple(dates.strftime("%Y-%m-%d")[:4]))
    many = pd.DataFrame({"opportunity_id": "B", "snapshot_date": dates})
    opportunities = pd.DataFrame(
        [_deal("A", close="2026-06-01"), _deal("B", close="2026-06-01"), _deal("C", status="open")]
    )
    snaps = pd.concat([closed, many, many.assign(opportunity_id="C")], ignore_index=True)
    training = select_training_rows(add_history_features(opportunities, snaps), max_per_deal=5)
    assert "C" not in set(training["opportunity_id"])
    per_deal = training.groupby("opportunity_id")
    assert per_deal.size()["B"] == 5
    assert per_deal["sample_weight"].sum().round(9).eq(1.0).all()
    last_b = training[(training["opportunity_id"] == "B") & training["is_last_before_close"]]
    assert last_b[AS_OF].item() == dates[-1]


def test_latest_rows_respect_as_of():
    rows = add_history_features(pd.DataFrame([_deal(status="open")]), _snapshots())
    latest = select_latest_rows(rows, pd.Timestamp("2026-03-01"))
    assert latest[AS_OF].item() == pd.Timestamp("2026-02-05")


def test_the_waits_are_model_features_of_a_snapshot_export_and_momentum_in_its_reasons():
    rows = add_history_features(pd.DataFrame([_deal()]), _snapshots())
    builder = FeatureBuilder().fit(rows)
    waits = [name for name in builder.feature_names_ if name.endswith("_wait_days")]
    # The yes/no milestones the snapshots hold (not the buying group's share, not engagement).
    assert waits == [
        "problem_confirmed_wait_days",
        "budget_confirmed_wait_days",
        "timeline_confirmed_wait_days",
    ]
    assert {ITEM_OF_FEATURE[name] for name in waits} == {"momentum"}
    assert builder.transform_frame(rows)["budget_confirmed_wait_days"].tolist() == [7, 35, 63, 63]


def test_feature_builder_encodes_and_flags_unseen_categories():
    train = pd.DataFrame(
        {
            "deal_type": ["greenfield", "renewal", "greenfield"],
            "urgency": ["none", "high", "low"],
            "industry": ["retail", "software", "retail"],
            "executive_sponsor": pd.array([True, False, None], dtype="boolean"),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    builder = FeatureBuilder().fit(train)
    assert {"industry", "deal_type", "urgency", "executive_sponsor", "amount"} <= set(
        builder.feature_names_
    )
    new = pd.DataFrame(
        {
            "deal_type": ["greenfield"],
            "urgency": ["high"],
            "industry": ["mining"],
            "executive_sponsor": pd.array([True], dtype="boolean"),
        }
    )
    frame = builder.transform_frame(new)
    assert np.isnan(frame["industry"].item())  # unseen category -> missing, not an error
    assert frame["urgency"].item() == 2.0  # ordered: none < low < high
    assert frame["executive_sponsor"].item() == 1.0
    warning = builder.data_warnings(new).item()
    assert "unseen industry: mining" in warning
    assert "missing fields: amount" in warning


def test_mark_met_sets_every_column_of_the_milestone():
    rows = add_history_features(pd.DataFrame([_deal(status="open")]), _snapshots().head(2))
    milestone = MILESTONE_BY_KEY["budget_timeline"]
    assert not milestone.met(rows).any()
    changed = milestone.mark_met(rows)
    assert milestone.met(changed).all()
    assert (changed["days_since_last_milestone"] == 0).all()
    # Met today: its wait is the deal's age, as it stood while unmet (what-ifs leave waits alone).
    for wait in ("budget_confirmed_wait_days", "timeline_confirmed_wait_days"):
        assert changed[wait].equals(rows[wait])
        assert changed[wait].equals(rows["deal_age_days"])
    assert not milestone.met(rows).any()  # the input is not mutated
    # A milestone the history left blank, met today: its wait is the deal's age.
    blank = rows.assign(budget_confirmed_wait_days=np.nan)
    assert milestone.mark_met(blank)["budget_confirmed_wait_days"].equals(rows["deal_age_days"])
