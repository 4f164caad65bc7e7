"""Point-in-time rows: what was known about a deal on a given day.

:func:`add_history_features` turns the snapshot history into one row per deal per
snapshot date, with the deal's static attributes and what its history showed *up to
that date*. :func:`select_training_rows` keeps closed deals' rows strictly before their
close date; :func:`select_latest_rows` keeps each open deal's latest row. These rows are
the model's input (the pyfunc signature).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from winmodel.data import contract
from winmodel.features.milestones import MILESTONE_WAITS, engagement_rank, milestone_count
from winmodel.settings import TrainConfig, TrainingSet

if (
    TYPE_CHECKING
):  # the pyfunc model loads rows' constants without the data layer's validation (pandera)
    from winmodel.data.dataset import CRMData

AS_OF = "as_of_date"

EXPECTED_CLOSE = "expected_close_date"


def _static_columns(opportunities: pd.DataFrame, snapshots: pd.DataFrame) -> list[str]:
    """Give the opportunity columns to join onto every snapshot: those the snapshots do not hold.

    A column the snapshots hold is taken as of each snapshot, never from the opportunities
    table (whose value on a closed deal is the final one); the progress columns always are.
    """
    state = (set(contract.PROGRESS_COLUMNS) | set(snapshots.columns)) - {"opportunity_id"}
    return [column for column in opportunities.columns if column not in state or column in _KEPT]


#: Opportunity columns kept beside a snapshot's own: the actual close date (the snapshot's becomes
#: the expected one) and the identity.
_KEPT = frozenset({"opportunity_id", "close_date", "created_date", "status"})


def add_history_features(opportunities: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Give one row per snapshot: the deal's static columns, its state that day and its history so far.

    Needs ``opportunity_id``, ``created_date``, ``close_date``, ``status`` on
    opportunities and ``opportunity_id``, ``snapshot_date`` on snapshots. The
    snapshot's ``close_date`` (the expected date that day) becomes
    ``expected_close_date``; the opportunity's ``close_date`` stays the actual one.
    History features only look backwards: ``deal_age_days``,
    ``days_to_expected_close``, ``close_date_pushes``, ``amount_change_pct``,
    ``days_since_last_milestone``, ``champion_engagement_trend`` and each yes/no milestone's
    wait (:data:`MILESTONE_WAITS`).
    """
    snaps = snapshots.rename(columns={"snapshot_date": AS_OF, "close_date": EXPECTED_CLOSE})
    static = opportunities[_static_columns(opportunities, snapshots)]
    rows = snaps.merge(static, on="opportunity_id", how="inner", validate="many_to_one")
    rows = rows.sort_values(["opportunity_id", AS_OF], kind="stable").reset_index(drop=True)
    deal = rows["opportunity_id"]

    extra: dict[str, pd.Series | np.ndarray] = {
        "deal_age_days": (rows[AS_OF] - rows["created_date"]).dt.days.astype("float64")
    }
    if EXPECTED_CLOSE in rows:
        expected = rows[EXPECTED_CLOSE]
        extra["days_to_expected_close"] = (expected - rows[AS_OF]).dt.days.astype("float64")
        previous = expected.groupby(deal).shift()
        pushed = (expected > previous).astype("float64")
        extra["close_date_pushes"] = pushed.groupby(deal).cumsum()
    if "amount" in rows:
        first = rows["amount"].groupby(deal).transform("first")
        extra["amount_change_pct"] = np.where(
            first > 0, 100.0 * (rows["amount"] / first - 1.0), np.nan
        )

    count, shown = milestone_count(rows)
    if shown:
        previous_count = count.groupby(deal).shift()
        changed = previous_count.isna() | (count > previous_count)
        last_change = rows[AS_OF].where(changed).groupby(deal).ffill()
        extra["days_since_last_milestone"] = (rows[AS_OF] - last_change).dt.days.astype("float64")
    if "champion_engagement" in rows:
        extra["champion_engagement_trend"] = _engagement_trend(rows)
    extra.update(_milestone_waits(rows))
    return rows.assign(**extra)


def _milestone_waits(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """Give each yes/no milestone's wait in days on rows sorted by deal and date (see MILESTONE_WAITS).

    Blank while the milestone is blank on the row. Met, then unmet again: the wait runs on
    from creation, as for a milestone never met; met once more, it is back to the first date it
    was shown met.
    """
    deal = rows["opportunity_id"]
    waits: dict[str, pd.Series] = {}
    for column, name in MILESTONE_WAITS.items():
        if column not in rows:
            continue
        shown = rows[column].astype("boolean")
        met = shown.fillna(False)
        # On a met row, the first date it was shown met so far (cummin carries it forward).
        until = rows[AS_OF].where(met).groupby(deal).cummin().where(met, rows[AS_OF])
        wait = (until - rows["created_date"]).dt.days.astype("float64")
        waits[name] = wait.where(shown.notna())
    return waits


def _engagement_trend(rows: pd.DataFrame, window_days: int = 28) -> pd.Series:
    """Give engagement rank now minus its rank about four weeks earlier (0 for young deals)."""
    rank = engagement_rank(rows["champion_engagement"])
    current = pd.DataFrame(
        {
            "opportunity_id": rows["opportunity_id"],
            AS_OF: rows[AS_OF],
            "rank": rank,
            "position": np.arange(len(rows)),
        }
    )
    earlier = current.assign(**{AS_OF: current[AS_OF] + pd.Timedelta(days=window_days)})
    merged = pd.merge_asof(
        current.sort_values(AS_OF),
        earlier.sort_values(AS_OF)[["opportunity_id", AS_OF, "rank"]],
        on=AS_OF,
        by="opportunity_id",
        suffixes=("", "_earlier"),
        direction="backward",
    ).sort_values("position")
    earlier_rank = merged["rank_earlier"].to_numpy()
    first_rank = rank.groupby(rows["opportunity_id"]).transform("first").to_numpy()
    earlier_rank = np.where(np.isnan(earlier_rank), first_rank, earlier_rank)
    return pd.Series(merged["rank"].to_numpy() - earlier_rank, index=rows.index)


def flat_rows(opportunities: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Give one row per deal for a flat export (no snapshots).

    Open deals are seen as of ``as_of``. Closed deals have no known as-of date, so
    no age or timing feature is built for anyone (a duration up to close would
    leak the outcome); progress columns may hold the final state.
    """
    return opportunities.assign(**{AS_OF: pd.Timestamp(as_of)})


def select_training_rows(
    rows: pd.DataFrame,
    *,
    max_per_deal: int,
    last_share: float = TrainingSet.model_fields["last_snapshot_share"].default,
) -> pd.DataFrame:
    """Give closed deals' rows strictly before close, at most ``max_per_deal`` each, with weights.

    Every deal counts once in total: its last pre-close row (the state the
    decision was made on) carries ``last_share`` of the deal's weight and the
    earlier rows share the rest; a deal with a single row weighs 1. The last
    pre-close row is always kept; the others are spread evenly over the deal's
    life (deterministic). Adds ``sample_weight`` and ``is_last_before_close``.
    """
    closed = rows[rows["status"].isin(contract.CLOSED_STATUSES)]
    before = closed[closed[AS_OF] < closed["close_date"]]
    before = before.sort_values(["opportunity_id", AS_OF], kind="stable")
    deal = before["opportunity_id"]
    position = before.groupby(deal, sort=False).cumcount().to_numpy()
    size = before.groupby(deal, sort=False)["opportunity_id"].transform("size").to_numpy()
    kept = before[_evenly_spaced(position, size, max_per_deal)]
    kept_size = (
        kept.groupby("opportunity_id", sort=False)["opportunity_id"].transform("size").to_numpy()
    )
    is_last = (kept.groupby("opportunity_id", sort=False).cumcount(ascending=False) == 0).to_numpy()
    earlier = np.maximum(kept_size - 1, 1)
    weight = np.where(
        kept_size == 1, 1.0, np.where(is_last, last_share, (1.0 - last_share) / earlier)
    )
    return kept.assign(sample_weight=weight, is_last_before_close=is_last)


def _evenly_spaced(position: np.ndarray, size: np.ndarray, limit: int) -> np.ndarray:
    """Give a mask keeping up to ``limit`` evenly spaced positions per group, the last one always."""
    if limit == 1:
        last: np.ndarray = position == size - 1
        return last
    step = np.maximum((size - 1) / (limit - 1), 1.0)
    from_end = (size - 1) - position
    target_index = np.round(from_end / step)
    nearest = np.round(target_index * step)
    keep: np.ndarray = (size <= limit) | (from_end == nearest)
    return keep


def select_latest_rows(rows: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Give each deal's latest row on or before ``as_of`` (all rows when None)."""
    if as_of is not None:
        rows = rows[rows[AS_OF] <= pd.Timestamp(as_of)]
    latest = (
        rows.sort_values(["opportunity_id", AS_OF], kind="stable")
        .groupby("opportunity_id", sort=False)
        .tail(1)
    )
    return latest.reset_index(drop=True)


def open_deal_rows(data: CRMData) -> tuple[pd.DataFrame, int]:
    """Give one point-in-time row per open deal (its latest snapshot) and the number of closed deals skipped."""
    opportunities = data.opportunities
    is_open = opportunities["status"].eq("open")
    skipped = int((~is_open).sum())
    open_deals = opportunities[is_open]
    if data.has_snapshots:
        assert data.snapshots is not None  # has_snapshots: a table with rows
        snapshots = data.snapshots[
            data.snapshots["opportunity_id"].isin(open_deals["opportunity_id"])
        ]
        history = add_history_features(open_deals, snapshots)
        rows = _fill_from_current(select_latest_rows(history, data.as_of), open_deals)
        # Open deals without any snapshot are still scored, from the opportunity row alone.
        unseen = open_deals[~open_deals["opportunity_id"].isin(rows["opportunity_id"])]
        if len(unseen):
            rows = pd.concat([rows, flat_rows(unseen, data.as_of)], ignore_index=True)
    else:
        rows = flat_rows(open_deals, data.as_of).reset_index(drop=True)
    rows = _dated_today(rows)
    return rows.sort_values("opportunity_id", kind="stable").reset_index(drop=True), skipped


def _dated_today(rows: pd.DataFrame) -> pd.DataFrame:
    """Give open deals' rows with the age and waits their history could not date, as of the row.

    A flat export's open deals get their age here; it has no waits.

    A milestone the latest snapshot left blank but today's opportunities row holds (or a deal
    with no snapshot at all) is first seen on the row's own date: unmet, it has waited the deal's
    age; met, it was first shown met today. Training never sees a known milestone without its
    wait, so a blank here would be read as a blank milestone.
    """
    since_creation = (rows[AS_OF] - rows["created_date"]).dt.days.astype("float64")
    age = rows["deal_age_days"] if "deal_age_days" in rows else pd.Series(np.nan, index=rows.index)
    dated: dict[str, pd.Series] = {"deal_age_days": age.fillna(since_creation)}
    for column, wait in MILESTONE_WAITS.items():
        if column in rows and wait in rows:
            known = rows[column].notna() & rows[wait].isna()
            dated[wait] = rows[wait].mask(known, since_creation)
    return rows.assign(**dated)


def _fill_from_current(rows: pd.DataFrame, open_deals: pd.DataFrame) -> pd.DataFrame:
    """Give open deals' latest rows with blanks filled from the opportunities table.

    For an open deal the opportunities row is its state on the export date, the day it is scored
    on: where its latest snapshot left a column blank, today's value is what a scorer knows.
    """
    current = open_deals.drop_duplicates("opportunity_id").set_index("opportunity_id")
    fills = {}
    for column in rows.columns:
        if column in _KEPT or column not in current.columns or not rows[column].isna().any():
            continue
        today = current[column].reindex(rows["opportunity_id"].to_numpy())
        fills[column] = rows[column].where(
            rows[column].notna(), pd.Series(today.to_numpy(), index=rows.index)
        )
    return rows.assign(**fills) if fills else rows


def final_state_columns(data: CRMData) -> list[str]:
    """Give the mutable columns a closed deal knows only from its opportunities row (their final state).

    A mutable column is knowable before the close only as of a snapshot or history date: one the
    snapshots (own or replayed) hold is point-in-time; one that only the opportunities table holds
    is the value at close, which may give the outcome away.
    """
    held = set()
    if data.snapshots is not None and len(data.snapshots):
        held = {column for column in data.snapshots.columns if data.snapshots[column].notna().any()}
    return [
        column
        for column in data.opportunities.columns
        if column not in _KEPT and column not in held and data.is_mutable(column)
    ]


FLAT_EXPORT_WARNING = (
    "flat export (no snapshots or field history): a closed deal is known only as it stood at close; "
    "fields that change during a deal are left out unless the config allows them, and the model "
    "cannot learn how deals progress"
)


def build_training_rows(
    data: CRMData, config: TrainConfig, history: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Give the point-in-time training rows of closed deals and any warnings about their shape.

    ``history`` is :func:`winmodel.features.rows.add_history_features` of ``data`` when the caller has it already.
    """
    warnings = []
    if data.has_snapshots:
        if history is None:
            assert data.snapshots is not None  # has_snapshots: a table with rows
            history = add_history_features(data.opportunities, data.snapshots)
        rows = select_training_rows(
            history,
            max_per_deal=config.training.max_snapshots_per_deal,
            last_share=config.training.last_snapshot_share,
        )
    else:
        warnings.append(FLAT_EXPORT_WARNING)
        rows = flat_rows(data.opportunities, data.as_of)
        rows = rows[rows["status"].isin(["won", "lost"])].assign(
            sample_weight=1.0, is_last_before_close=True
        )
        # A flat export knows a closed deal only as it stood at close.
        rows = rows.assign(**{AS_OF: rows["close_date"]})
    rows = rows[rows["close_date"].notna()]
    return rows.reset_index(drop=True), warnings
