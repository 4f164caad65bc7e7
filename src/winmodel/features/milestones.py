"""The seven progress milestones of the method, and when a deal has met them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from winmodel.data import contract

#: For each yes/no milestone, the days the deal waited for it: from creation to the first
#: snapshot that showed it met, or to the row's date while it is unmet (``features.rows``). Buyers
#: who will buy tend to move sooner, so a long wait for a milestone (met late, or still open) is
#: evidence in itself, beside whether it is met now. Meeting it today leaves a known wait as it
#: stands (unmet, it already is the deal's age), so the what-ifs keep it.
MILESTONE_WAITS: dict[str, str] = {
    spec.name: f"{spec.name}_wait_days" for spec in contract.MILESTONES if spec.kind == "bool"
}

#: Engagement depth as a rank (none=0 ... coaching=4).
ENGAGEMENT_LEVELS = cast(tuple[str, ...], contract.SNAPSHOTS["champion_engagement"].allowed)


@dataclass(frozen=True)
class Milestone:
    """A progress milestone as a seller knows it, and the columns that show it."""

    key: str
    label: str
    columns: tuple[str, ...]

    def met(self, rows: pd.DataFrame) -> pd.Series:
        """Give, per row, whether the milestone is met (False where its columns are missing)."""
        present = [column for column in self.columns if column in rows]
        if not present:
            return pd.Series(False, index=rows.index)
        met = pd.Series(True, index=rows.index)
        for column in present:
            met &= _column_met(rows[column], column)
        return met

    def mark_met(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Give a copy of ``rows`` with this milestone met (for what-if re-scoring)."""
        changes = {}
        for column in self.columns:
            if column not in rows:
                continue
            if column == "stakeholders_identified":
                changes[column] = np.fmax(rows[column].astype("float64"), 1.0)
            elif column == "champion_engagement":
                current = engagement_rank(rows[column])
                raised = np.fmax(current, ENGAGEMENT_LEVELS.index(ENGAGEMENT_MET_LEVEL))
                changes[column] = pd.Series(
                    np.asarray(ENGAGEMENT_LEVELS)[raised.astype(int)], index=rows.index, dtype="str"
                )
                if "champion_engagement_trend" in rows:
                    changes["champion_engagement_trend"] = rows["champion_engagement_trend"].fillna(
                        0
                    ) + (raised - current.fillna(0))
            else:
                changes[column] = pd.Series(True, index=rows.index, dtype="boolean")
                # Met today: a wait its history left blank is the deal's age (a known wait stays:
                # unmet, it already is the age; met, it is when it was met).
                wait = MILESTONE_WAITS[column]
                if wait in rows and "deal_age_days" in rows:
                    changes[wait] = rows[wait].fillna(rows["deal_age_days"])
        if "days_since_last_milestone" in rows:
            changes["days_since_last_milestone"] = 0.0
        return rows.assign(**changes)


#: The seven progress milestones of the method, in their natural order.
MILESTONES: tuple[Milestone, ...] = (
    Milestone("problem_confirmed", "Business problem confirmed", ("problem_confirmed",)),
    Milestone(
        "evaluation_criteria", "Evaluation criteria defined", ("evaluation_criteria_defined",)
    ),
    Milestone("stakeholders", "Buying group identified", ("stakeholders_identified",)),
    Milestone(
        "budget_timeline",
        "Budget and timeline confirmed",
        ("budget_confirmed", "timeline_confirmed"),
    ),
    Milestone("champion_engagement", "Champion actively engaged", ("champion_engagement",)),
    Milestone(
        "executive_awareness",
        "Economic buyer aware and executive support signalled",
        ("economic_buyer_aware", "exec_support_signalled"),
    ),
    Milestone(
        "business_case",
        "Business case built and value metric agreed",
        ("business_case_built", "value_metric_agreed"),
    ),
)

MILESTONE_BY_KEY = {milestone.key: milestone for milestone in MILESTONES}

STAKEHOLDERS_MET_SHARE = 0.6
#: Champion engagement counts as the milestone from this level up.
ENGAGEMENT_MET_LEVEL = "active"


def _column_met(values: pd.Series, column: str) -> pd.Series:
    if column == "stakeholders_identified":
        return values.astype("float64").fillna(0) >= STAKEHOLDERS_MET_SHARE
    if column == "champion_engagement":
        return engagement_rank(values).fillna(0) >= ENGAGEMENT_LEVELS.index(ENGAGEMENT_MET_LEVEL)
    return values.astype("boolean").fillna(False).astype(bool)


def engagement_rank(values: pd.Series) -> pd.Series:
    """Give champion engagement as a rank 0 (none) to 4 (coaching); NaN where unknown."""
    return ordered_rank(values, ENGAGEMENT_LEVELS)


def ordered_rank(values: pd.Series, levels: Sequence[str]) -> pd.Series:
    """Give the position of each value in ``levels`` as float; NaN for missing or unknown."""
    codes = pd.Index(list(levels), dtype="str").get_indexer(pd.Index(values.astype("str")))
    return pd.Series(np.where(codes < 0, np.nan, codes).astype("float64"), index=values.index)


def milestone_count(rows: pd.DataFrame) -> tuple[pd.Series, int]:
    """Give the number of milestones met per row and how many milestones the data can show."""
    shown = [
        milestone for milestone in MILESTONES if any(column in rows for column in milestone.columns)
    ]
    if not shown:
        return pd.Series(np.nan, index=rows.index), 0
    # ``shown`` is not empty, so the sum is a Series (never the start value 0).
    count = cast(pd.Series, sum(milestone.met(rows).astype("float64") for milestone in shown))
    return count, len(shown)


def milestone_spec() -> dict[str, object]:
    """Give the milestones' definitions as plain data: what a saved model's milestone features assume."""
    return {
        "milestones": [{"key": m.key, "columns": list(m.columns)} for m in MILESTONES],
        "stakeholders_met_share": STAKEHOLDERS_MET_SHARE,
        "engagement_levels": list(ENGAGEMENT_LEVELS),
        "engagement_met_level": ENGAGEMENT_MET_LEVEL,
    }
