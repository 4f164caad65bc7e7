"""Field history -> snapshots: the replay rules, the layouts, and the same rows as from snapshots."""

from __future__ import annotations

import pandas as pd
import pytest

from winmodel.data.dataset import load_crm_data
from winmodel.data.field_history import (
    ReplaySettings,
    log_starts_late,
    replay_field_history,
    wide_to_long,
)
from winmodel.features.rows import build_training_rows, final_state_columns
from winmodel.settings import TrainConfig
from winmodel.synth.generator import field_history_of, generate_history


def _deals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["A", "B"],
            "created_date": pd.to_datetime(["2024-01-01", "2024-01-10"]),
            "close_date": pd.to_datetime(["2024-02-15", "2024-03-30"]),
            "status": ["won", "open"],
            "amount": [100.0, 50.0],
            "executive_sponsor": pd.Series([True, False], dtype="boolean"),
        }
    )


def _history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["A", "A", "A", "A", "B"],
            "field": ["amount", "amount", "executive_sponsor", "stage", "stage"],
            "old_value": ["80", "90", "false", "discovery", "qualification"],
            "new_value": ["90", "100", "true", "closed_won", "proposal"],
            "changed_at": pd.to_datetime(
                [
                    "2024-01-20 09:00",
                    "2024-01-20 15:00",
                    "2024-02-01 00:00",
                    "2024-02-15 00:00",
                    "2024-02-20 00:00",
                ]
            ),
        }
    )


def _replay(every: int = 7, at_changes: bool = True) -> pd.DataFrame:
    snapshots, problems = replay_field_history(
        _deals(),
        _history(),
        tracked=["amount", "executive_sponsor", "stage"],
        as_of=pd.Timestamp("2024-03-01"),
        settings=ReplaySettings(every, at_changes),
    )
    assert problems == []
    return snapshots.set_index(["opportunity_id", "snapshot_date"])


def test_values_before_the_first_change_are_its_old_value_and_the_last_change_of_a_day_wins():
    snapshots = _replay()
    assert snapshots.loc[("A", pd.Timestamp("2024-01-19")), "amount"] == 80.0
    assert snapshots.loc[("A", pd.Timestamp("2024-01-20")), "amount"] == 100.0  # 15:00 beats 09:00
    assert not snapshots.loc[("A", pd.Timestamp("2024-01-26")), "executive_sponsor"]
    assert snapshots.loc[("A", pd.Timestamp("2024-02-01")), "executive_sponsor"]
    assert snapshots.loc[("B", pd.Timestamp("2024-02-20")), "stage"] == "proposal"


def test_a_field_that_never_changed_keeps_the_opportunitys_value():
    snapshots = _replay()
    b = snapshots.loc["B"]
    assert (b["amount"] == 50.0).all() and (~b["executive_sponsor"].astype(bool)).all()


def test_closed_deals_stop_before_their_close_and_open_deals_run_to_the_as_of_date():
    snapshots = _replay()
    assert snapshots.loc["A"].index.max() < pd.Timestamp("2024-02-15")
    assert snapshots.loc["B"].index.max() == pd.Timestamp("2024-03-01")
    # Calendar days are counted back from the as-of date, every 7 days, plus each change day.
    days = set(snapshots.loc["B"].index)
    assert {pd.Timestamp("2024-02-23"), pd.Timestamp("2024-02-20")} <= days
    assert pd.Timestamp("2024-02-21") not in days
    assert pd.Timestamp("2024-02-20") not in set(_replay(at_changes=False).loc["B"].index)


def test_a_wide_history_becomes_one_row_per_change():
    wide = pd.DataFrame(
        {
            "OpportunityId": ["A", "A", "A"],
            "CreatedDate": ["2024-01-01", "2024-01-20", "2024-02-15"],
            "StageName": ["Discovery", "Discovery", "Closed Won"],
            "Amount": ["80", "100", "100"],
        }
    )
    long = wide_to_long(
        wide,
        fields={"StageName": "stage", "Amount": "amount"},
        opportunity_id="OpportunityId",
        changed_at="CreatedDate",
    )
    changes = list(
        zip(long["field"], long["old_value"].fillna("-"), long["new_value"], strict=True)
    )
    assert sorted(changes) == sorted(
        [
            ("stage", "-", "Discovery"),
            ("amount", "-", "80"),
            ("amount", "80", "100"),
            ("stage", "Discovery", "Closed Won"),
        ]
    )


@pytest.fixture(scope="module")
def same_deals_two_ways(tmp_path_factory):
    history = generate_history(1500, seed=3)
    snapshots_dir = tmp_path_factory.mktemp("from-snapshots")
    history_dir = tmp_path_factory.mktemp("from-history")
    for folder in (snapshots_dir, history_dir):
        history.opportunities.to_parquet(folder / "opportunities.parquet")
    history.snapshots.to_parquet(snapshots_dir / "snapshots.parquet")
    field_history_of(history.snapshots).to_parquet(history_dir / "field_history.parquet")
    return load_crm_data(snapshots_dir), load_crm_data(history_dir)


def test_the_same_deals_from_snapshots_and_from_their_field_history_give_identical_training_rows(
    same_deals_two_ways,
):
    from_snapshots, from_history = same_deals_two_ways
    assert (
        from_history.snapshot_source == "field_history"
        and from_history.as_of == from_snapshots.as_of
    )
    rows = [
        build_training_rows(data, TrainConfig())[0]
        .sort_values(["opportunity_id", "as_of_date"])
        .reset_index(drop=True)
        for data in same_deals_two_ways
    ]
    assert len(rows[0]) > 5000
    pd.testing.assert_frame_equal(rows[0], rows[1][rows[0].columns])
    assert final_state_columns(from_history) == final_state_columns(from_snapshots) == []


def test_history_problems_name_the_file_column_and_rows(tmp_path):
    history = generate_history(200, seed=2)
    history.opportunities.to_parquet(tmp_path / "opportunities.parquet")
    changes = field_history_of(history.snapshots).astype({"changed_at": "str"})
    changes.loc[changes.index[:3], "changed_at"] = "next tuesday"
    changes.to_csv(tmp_path / "field_history.csv", index=False)
    from winmodel.errors import InputError

    with pytest.raises(InputError) as error:
        load_crm_data(tmp_path)
    text = str(error.value)
    assert "field_history.csv, column 'changed_at'" in text and "'next tuesday'" in text
    assert "line 2" in text


def test_a_log_that_starts_a_deal_cycle_after_deals_were_created_is_said_and_names_them():
    """A field history cut short (Salesforce keeps 18 months) warns: those deals' early days are guesses."""
    deals = pd.concat(
        [
            _deals(),
            pd.DataFrame(
                {
                    "opportunity_id": ["OLD1", "OLD2", "NEAR"],
                    "created_date": pd.to_datetime(["2022-06-01", "2023-06-01", "2023-12-01"]),
                    "close_date": pd.to_datetime(["2022-09-01", "2024-03-30", "2024-03-30"]),
                    "status": ["lost", "open", "open"],
                    "amount": [10.0, 20.0, 30.0],
                    "executive_sponsor": pd.Series([True, True, False], dtype="boolean"),
                }
            ),
        ],
        ignore_index=True,
    )
    warning = log_starts_late(deals, _history(), "OpportunityFieldHistory.csv")
    assert warning is not None
    # The closed deals' cycles are 45 and 92 days: their 80th percentile, 82 days, is allowed.
    # NEAR was created 50 days before the log's first change (2024-01-20): not named.
    assert warning.severity == "warning" and warning.rows == 2
    assert warning.examples == ("deal OLD1", "deal OLD2")
    text = warning.render()
    assert "OpportunityFieldHistory.csv, column 'changed_at'" in text
    assert "starts on 2024-01-20" in text and "more than 82 days" in text
    assert "(amount, executive_sponsor, stage)" in text and "18 months" in text
    # Deal A was created 19 days before the log's first change: a complete log, no warning.
    assert log_starts_late(_deals(), _history(), "OpportunityFieldHistory.csv") is None


def test_loading_an_export_whose_history_was_cut_short_warns_and_a_whole_one_does_not(tmp_path):
    history = generate_history(200, seed=2)
    history.opportunities.to_parquet(tmp_path / "opportunities.parquet")
    changes = field_history_of(history.snapshots)
    changes.to_csv(tmp_path / "field_history.csv", index=False)
    assert not load_crm_data(tmp_path).report.warnings
    dates = pd.to_datetime(changes["changed_at"])
    changes[dates >= dates.max() - pd.DateOffset(months=18)].to_csv(
        tmp_path / "field_history.csv", index=False
    )
    (warning,) = load_crm_data(tmp_path).report.warnings
    assert warning.file.endswith("field_history.csv") and warning.rows > 0
    assert "the field history starts on" in warning.problem


def test_a_history_beside_opportunities_without_created_dates_gets_the_validation_error(tmp_path):
    from winmodel.errors import InputError

    history = generate_history(200, seed=2)
    history.opportunities.drop(columns="created_date").to_parquet(
        tmp_path / "opportunities.parquet"
    )
    field_history_of(history.snapshots).to_csv(tmp_path / "field_history.csv", index=False)
    with pytest.raises(InputError, match="created_date"):
        load_crm_data(tmp_path)
