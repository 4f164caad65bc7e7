"""Tests of the synthetic CRM history and its hidden truth (winmodel.synth, winmodel.jobs.generate)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from winmodel.data.contract import OPPORTUNITIES, SNAPSHOTS, TableSpec
from winmodel.errors import InputError
from winmodel.jobs.generate import run_generate
from winmodel.synth.generator import (
    BOOL_MILESTONES,
    DEFAULT_TODAY,
    PLANTED_PATTERNS,
    SyntheticHistory,
    generate_history,
    true_win_logit,
)

TODAY = pd.Timestamp(DEFAULT_TODAY)


@pytest.fixture(scope="module")
def history() -> SyntheticHistory:
    # Large enough for stable rates (win rate vs truth, planted patterns), still ~1 s.
    return generate_history(5_000, seed=3)


@pytest.fixture(scope="module")
def closed(history: SyntheticHistory) -> pd.DataFrame:
    opportunities = history.opportunities
    return opportunities[opportunities["status"] != "open"]


def _last_pre_close(history: SyntheticHistory, deals: pd.DataFrame) -> pd.DataFrame:
    """Give the last snapshot strictly before each deal's close date, in the order of ``deals``."""
    merged = history.snapshots.merge(
        deals[["opportunity_id", "close_date"]].rename(columns={"close_date": "final_close"}),
        on="opportunity_id",
    )
    before = merged[merged["snapshot_date"] < merged["final_close"]]
    last = before.sort_values("snapshot_date").groupby("opportunity_id").tail(1)
    return last.set_index("opportunity_id").loc[deals["opportunity_id"]].reset_index()


def test_ids_are_unique(history: SyntheticHistory) -> None:
    assert history.opportunities["opportunity_id"].is_unique
    assert not history.snapshots.duplicated(["opportunity_id", "snapshot_date"]).any()
    assert history.opportunities["opportunity_id"].iloc[0] == "OPP-000001"
    assert set(history.snapshots["opportunity_id"]) == set(history.opportunities["opportunity_id"])


def test_no_snapshot_after_close(history: SyntheticHistory, closed: pd.DataFrame) -> None:
    merged = history.snapshots.merge(
        closed[["opportunity_id", "close_date"]].rename(columns={"close_date": "final_close"}),
        on="opportunity_id",
    )
    assert (merged["snapshot_date"] <= merged["final_close"]).all()
    # Only the trap row sits on the close date; every closed deal has a snapshot before it.
    on_close = merged[merged["snapshot_date"] == merged["final_close"]]
    assert on_close["opportunity_id"].is_unique
    assert on_close["stage"].isin(["closed_won", "closed_lost"]).all()
    before = merged[merged["snapshot_date"] < merged["final_close"]]
    assert set(before["opportunity_id"]) == set(closed["opportunity_id"])
    truth = history.truth.set_index("opportunity_id").loc[closed["opportunity_id"]]
    assert (truth["last_snapshot_date"].to_numpy() < closed["close_date"].to_numpy()).all()


def test_wins_close_faster_than_losses(closed: pd.DataFrame) -> None:
    cycle = (closed["close_date"] - closed["created_date"]).dt.days
    assert cycle[closed["status"] == "won"].median() < cycle[closed["status"] == "lost"].median()
    assert 45 <= cycle.median() <= 160  # roughly 2-5 months


def test_truth_matches_observed_win_rate(history: SyntheticHistory, closed: pd.DataFrame) -> None:
    truth = history.truth.set_index("opportunity_id").loc[closed["opportunity_id"]]
    observed = (closed["status"] == "won").mean()
    assert abs(truth["true_probability"].mean() - observed) < 0.02
    assert 0.30 <= observed <= 0.40
    assert 0.08 <= (history.opportunities["status"] == "open").mean() <= 0.18


def test_truth_function_reproduces_truth(history: SyntheticHistory, closed: pd.DataFrame) -> None:
    state = _last_pre_close(history, closed)
    logit = true_win_logit(closed.reset_index(drop=True), state)
    truth = history.truth.set_index("opportunity_id").loc[closed["opportunity_id"]]
    np.testing.assert_allclose(logit, truth["true_logit"].to_numpy(), atol=1e-9)


def test_planted_patterns_are_visible(closed: pd.DataFrame) -> None:
    assert len(PLANTED_PATTERNS) >= 5
    assert sum(pattern.direction == "win" for pattern in PLANTED_PATTERNS) >= 3
    assert sum(pattern.direction == "loss" for pattern in PLANTED_PATTERNS) >= 2
    won = closed["status"] == "won"
    overall = won.mean()
    visible = 0
    for pattern in PLANTED_PATTERNS:
        mask = np.ones(len(closed), dtype=bool)
        for column, value in pattern.conditions:
            mask &= (closed[column] == value).fillna(False).to_numpy(dtype=bool)
        rate = won[mask].mean()
        gap = rate - overall if pattern.direction == "win" else overall - rate
        assert gap > 0, f"{pattern.conditions}: {rate:.3f} vs {overall:.3f}"
        visible += gap >= 0.08 and mask.sum() >= 50
    assert visible >= 3


def test_same_seed_same_history_other_seed_differs() -> None:
    first, again = generate_history(300, seed=11), generate_history(300, seed=11)
    other = generate_history(300, seed=12)
    for name in ("opportunities", "snapshots", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.opportunities.equals(other.opportunities)


def _assert_contract_dtypes(frame: pd.DataFrame, table: TableSpec) -> None:
    expected = {
        "string": "str",
        "category": "str",
        "date": "datetime64[ns]",
        "bool": "boolean",
        "number": "float64",
        "integer": "float64",
    }
    for name in frame.columns:
        if name not in table:
            continue
        assert str(frame[name].dtype) == expected[table[name].kind], name
        allowed = table[name].allowed
        if allowed is not None:
            assert set(frame[name].dropna().unique()) <= set(allowed), name


def test_dtypes_and_values_follow_the_contract(history: SyntheticHistory) -> None:
    opportunities, snapshots = history.opportunities, history.snapshots
    _assert_contract_dtypes(opportunities, OPPORTUNITIES)
    _assert_contract_dtypes(snapshots, SNAPSHOTS)
    assert set(SNAPSHOTS.names()) == set(snapshots.columns)
    assert set(OPPORTUNITIES.required) <= set(opportunities.columns)
    assert set(opportunities["status"].unique()) == {"open", "won", "lost"}
    assert (opportunities["created_date"] <= TODAY).all()
    assert (opportunities["created_date"] == opportunities["created_date"].dt.normalize()).all()
    assert (
        opportunities.loc[opportunities["competitor_count"] == 0, "primary_competitor"] == "none"
    ).all()
    assert opportunities["discount_pct"].between(0, 100).all()
    assert snapshots["stakeholders_identified"].between(0, 1).all()
    assert str(history.truth["true_probability"].dtype) == "float64"


def test_milestones_never_revert(history: SyntheticHistory) -> None:
    regular = history.snapshots[~history.snapshots["stage"].str.startswith("closed")]
    ordered = regular.sort_values(["opportunity_id", "snapshot_date"])
    for name in BOOL_MILESTONES:
        met = ordered[name].astype(int)
        assert (met.groupby(ordered["opportunity_id"]).diff().dropna() >= 0).all(), name


def test_leakage_trap_rows_exist(history: SyntheticHistory, closed: pd.DataFrame) -> None:
    on_close = history.snapshots.merge(
        closed[["opportunity_id", "close_date", "status"]],
        on="opportunity_id",
        suffixes=("", "_final"),
    )
    trap = on_close[on_close["snapshot_date"] == on_close["close_date_final"]]
    assert len(trap) == len(closed)
    won_trap = trap[trap["status"] == "won"]
    assert (won_trap["crm_probability"] == 100).all()
    assert (won_trap["stage"] == "closed_won").all()
    assert won_trap[list(BOOL_MILESTONES)].all(axis=None)
    assert (trap.loc[trap["status"] == "lost", "crm_probability"] == 0).all()
    assert (closed["crm_probability"].isin([0.0, 100.0])).all()


def test_open_deals_snapshots_end_today(history: SyntheticHistory) -> None:
    open_ids = history.opportunities.loc[
        history.opportunities["status"] == "open", "opportunity_id"
    ]
    last = history.snapshots.groupby("opportunity_id")["snapshot_date"].max()
    assert (last.loc[open_ids] == TODAY).all()
    truth = history.truth.set_index("opportunity_id").loc[open_ids]
    assert truth["is_open"].all()
    assert (truth["last_snapshot_date"] == TODAY).all()


def _one_deal(**changes: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    static = pd.DataFrame(
        {
            "deal_type": ["greenfield"],
            "urgency": ["low"],
            "trigger_event": ["none"],
            "competitive_position": ["parity"],
            "primary_competitor": ["Contoso"],
            "champion_role": ["director"],
            "executive_sponsor": [False],
            "buying_process_defined": [True],
            "problem_quantified": [False],
            "customization_required": ["none"],
            "custom_dev_required": [False],
            "pe_backed": [False],
            "primary_pain": ["growth"],
            "amount": [50_000.0],
            "discount_pct": [10.0],
        }
    )
    state = pd.DataFrame(
        {
            "snapshot_date": [pd.Timestamp("2025-01-04")],
            **{name: [False] for name in BOOL_MILESTONES},
            "stakeholders_identified": [0.2],
            "champion_engagement": ["responsive"],
            "calls": [3.0],
            "emails": [10.0],
            "meetings": [1.0],
        }
    )
    for name, value in changes.items():
        (static if name in static else state)[name] = [value]
    return static, state


def test_truth_terms_point_the_documented_way() -> None:
    base = true_win_logit(*_one_deal())[0]
    assert true_win_logit(*_one_deal(calls=500.0, emails=900.0, meetings=80.0))[0] == base
    assert true_win_logit(*_one_deal(snapshot_date=pd.Timestamp("2026-09-05")))[0] < base
    assert true_win_logit(*_one_deal(competitive_position="strength"))[0] > base
    assert true_win_logit(*_one_deal(budget_confirmed=True))[0] > base
    assert true_win_logit(*_one_deal(urgency="none"))[0] < base
    legacy = true_win_logit(*_one_deal(deal_type="legacy_replacement"))[0]
    legacy_urgent = true_win_logit(*_one_deal(deal_type="legacy_replacement", urgency="high"))[0]
    urgent = true_win_logit(*_one_deal(urgency="high"))[0]
    assert legacy_urgent - legacy > urgent - base  # the interaction, not just two main effects


def test_truth_refuses_misaligned_frames() -> None:
    static, state = _one_deal()
    with pytest.raises(ValueError, match="rows"):
        true_win_logit(pd.concat([static, static]), state)


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_generate_job_writes_tables(tmp_path, file_format: str) -> None:
    paths = run_generate(
        out=tmp_path / "demo",
        deals=120,
        seed=5,
        months=12,
        today="2026-06-30",
        file_format=file_format,
    )
    assert set(paths) == {"opportunities", "snapshots", "truth", "truth_timing", "version"}
    tables = {name: path for name, path in paths.items() if name != "version"}
    assert sorted(path.name for path in (tmp_path / "demo").iterdir()) == sorted(
        [f"{name}.{file_format}" for name in tables] + [Path(paths["version"]).name]
    )  # no temporary files left behind
    assert Path(paths["version"]).read_text().strip().isdigit()
    reader = pd.read_parquet if file_format == "parquet" else pd.read_csv
    opportunities = reader(paths["opportunities"])
    assert len(opportunities) == 120
    last = pd.to_datetime(reader(paths["snapshots"])["snapshot_date"]).max()
    assert last == pd.Timestamp(date(2026, 6, 30))


def test_generate_job_rejects_unknown_format(tmp_path) -> None:
    with pytest.raises(InputError, match="parquet"):
        run_generate(out=tmp_path, deals=100, seed=1, months=12, today=None, file_format="xlsx")
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        run_generate(
            out=tmp_path, deals=100, seed=1, months=12, today="31/10/2026", file_format="csv"
        )


# ---------------------------------------------------------------- the timing truth's length

#: sha256 of (dtypes, CSV text with 10 significant digits) of each table of
#: generate_history(1_500, seed=11, months=12), measured with the generator of commit bf904e5
#: (version 3, before ``timing_months`` existed): the default output must not change (the demo,
#: GENERATOR_VERSION and every figure measured on it depend on it). Ten digits absorb a last-bit
#: difference of a maths library on another CPU. A deliberate change of the generator bumps
#: GENERATOR_VERSION and these digests.
DEFAULT_DIGESTS = {
    "opportunities": "1da02774231e03eb95a563cd1501fe1842513f98a840fa06b7bee3b78b52c7f1",
    "snapshots": "4e61e959b022efa0fa704b8abe5959daa8370113df854a55905d410bf1bcb366",
    "truth": "ea9f181336a0d7dde75d50fe0d8d1e09f6d9a04b770725988008cc4686a59330",
    "truth_timing": "6f27c03e9e10f96c09b93fe64e7fcb43bf8923d42fe2b31f2a2cf38213236198",
}


def _digest(frame: pd.DataFrame) -> str:
    text = str(frame.dtypes.to_dict()) + frame.to_csv(index=False, float_format="%.10g")
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def default_small() -> SyntheticHistory:
    return generate_history(1_500, seed=11, months=12)


def test_default_output_is_unchanged(default_small: SyntheticHistory) -> None:
    digests = {name: _digest(getattr(default_small, name)) for name in DEFAULT_DIGESTS}
    assert digests == DEFAULT_DIGESTS


def test_longer_continuations_agree_with_the_default_on_the_months_both_cover(
    default_small: SyntheticHistory,
) -> None:
    longer = generate_history(1_500, seed=11, months=12, timing_months=24)
    for name in ("opportunities", "snapshots", "truth"):
        pd.testing.assert_frame_equal(getattr(longer, name), getattr(default_small, name))
    assert default_small.truth_timing is not None and longer.truth_timing is not None
    timing = longer.truth_timing
    assert sorted(timing["month_offset"].unique()) == list(range(24))
    shared = timing[timing["month_offset"] < 6].reset_index(drop=True)
    pd.testing.assert_frame_equal(shared, default_small.truth_timing)
    # Cumulative by month, and after 24 months nearly every continuation has resolved.
    won = timing.pivot(index="opportunity_id", columns="month_offset", values="p_won_by_end")
    assert (np.diff(won.to_numpy(), axis=1) >= 0).all()
    last = timing[timing["month_offset"] == 23]
    still_open = 1 - last["p_won_by_end"] - last["p_lost_by_end"]
    assert still_open.mean() < 0.001
    first_open = default_small.truth_timing.query("month_offset == 5")
    assert (1 - first_open["p_won_by_end"] - first_open["p_lost_by_end"]).mean() > 0.05


def test_timing_months_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timing_months"):
        generate_history(50, timing_months=0)
