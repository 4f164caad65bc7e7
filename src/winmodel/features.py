"""Point-in-time rows and model features: what was known about a deal on a given day.

Two steps, kept apart on purpose:

1. :func:`add_history_features` turns the snapshot history into one row per
   deal per snapshot date, with the deal's static attributes and what its history
   showed *up to that date* (age, close-date pushes, milestones reached so far,
   engagement trend). :func:`select_training_rows` keeps closed deals' rows
   strictly before their close date; :func:`select_latest_rows` keeps each open
   deal's latest row. These rows are the model's input (the pyfunc signature).
2. :class:`FeatureBuilder` (fitted, travels inside the model) turns those rows
   into the numeric matrix LightGBM sees: ordered categories as ranks, unordered
   ones as integer codes learned at fit time, booleans as 0/1, derived counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from winmodel import contract

log = logging.getLogger(__name__)

AS_OF = "as_of_date"
EXPECTED_CLOSE = "expected_close_date"

#: Engagement depth as a rank (none=0 ... coaching=4).
ENGAGEMENT_LEVELS = contract.SNAPSHOTS["champion_engagement"].allowed


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
                raised = np.fmax(current, ENGAGEMENT_LEVELS.index("active"))
                changes[column] = pd.Series(
                    np.asarray(ENGAGEMENT_LEVELS)[raised.astype(int)], index=rows.index, dtype="str"
                )
                if "champion_engagement_trend" in rows:
                    changes["champion_engagement_trend"] = rows["champion_engagement_trend"].fillna(0) + (
                        raised - current.fillna(0)
                    )
            else:
                changes[column] = pd.Series(True, index=rows.index, dtype="boolean")
        if "days_since_last_milestone" in rows:
            changes["days_since_last_milestone"] = 0.0
        return rows.assign(**changes)


#: The seven progress milestones of the method, in their natural order.
MILESTONES: tuple[Milestone, ...] = (
    Milestone("problem_confirmed", "Business problem confirmed", ("problem_confirmed",)),
    Milestone("evaluation_criteria", "Evaluation criteria defined", ("evaluation_criteria_defined",)),
    Milestone("stakeholders", "Buying group identified", ("stakeholders_identified",)),
    Milestone("budget_timeline", "Budget and timeline confirmed", ("budget_confirmed", "timeline_confirmed")),
    Milestone("champion_engagement", "Champion actively engaged", ("champion_engagement",)),
    Milestone("executive_awareness", "Economic buyer aware and executive support signalled",
              ("economic_buyer_aware", "exec_support_signalled")),
    Milestone("business_case", "Business case built and value metric agreed",
              ("business_case_built", "value_metric_agreed")),
)
MILESTONE_BY_KEY = {milestone.key: milestone for milestone in MILESTONES}

STAKEHOLDERS_MET_SHARE = 0.6


def _column_met(values: pd.Series, column: str) -> pd.Series:
    if column == "stakeholders_identified":
        return values.astype("float64").fillna(0) >= STAKEHOLDERS_MET_SHARE
    if column == "champion_engagement":
        return engagement_rank(values).fillna(0) >= ENGAGEMENT_LEVELS.index("active")
    return values.astype("boolean").fillna(False).astype(bool)


def engagement_rank(values: pd.Series) -> pd.Series:
    """Give champion engagement as a rank 0 (none) to 4 (coaching); NaN where unknown."""
    return ordered_rank(values, ENGAGEMENT_LEVELS)


def ordered_rank(values: pd.Series, levels: Sequence[str]) -> pd.Series:
    """Give the position of each value in ``levels`` as float; NaN for missing or unknown."""
    codes = pd.Index(list(levels), dtype="str").get_indexer(values.astype("str"))
    return pd.Series(np.where(codes < 0, np.nan, codes).astype("float64"), index=values.index)


def milestone_count(rows: pd.DataFrame) -> tuple[pd.Series, int]:
    """Give the number of milestones met per row and how many milestones the data can show."""
    shown = [milestone for milestone in MILESTONES if any(column in rows for column in milestone.columns)]
    if not shown:
        return pd.Series(np.nan, index=rows.index), 0
    count = sum(milestone.met(rows).astype("float64") for milestone in shown)
    return count, len(shown)


# --------------------------------------------------------------------------- point-in-time rows

def _static_columns(opportunities: pd.DataFrame, with_snapshots: bool) -> list[str]:
    """Give the opportunity columns that describe the deal rather than its state on a day."""
    state = set(contract.PROGRESS_COLUMNS) if with_snapshots else set()
    return [column for column in opportunities.columns if column not in state]


def add_history_features(opportunities: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Give one row per snapshot: the deal's static columns, its state that day and its history so far.

    Needs ``opportunity_id``, ``created_date``, ``close_date``, ``status`` on
    opportunities and ``opportunity_id``, ``snapshot_date`` on snapshots. The
    snapshot's ``close_date`` (the expected date that day) becomes
    ``expected_close_date``; the opportunity's ``close_date`` stays the actual one.
    History features only look backwards: ``deal_age_days``,
    ``days_to_expected_close``, ``close_date_pushes``, ``amount_change_pct``,
    ``days_since_last_milestone``, ``champion_engagement_trend``.
    """
    snaps = snapshots.rename(columns={"snapshot_date": AS_OF, "close_date": EXPECTED_CLOSE})
    static = opportunities[_static_columns(opportunities, with_snapshots=True)]
    if "amount" in snaps:
        static = static.rename(columns={"amount": "final_amount"})
    rows = snaps.merge(static, on="opportunity_id", how="inner", validate="many_to_one")
    if "amount" in snaps:
        # The amount as it stood that day; the final amount only fills gaps.
        rows = rows.assign(amount=rows["amount"].fillna(rows["final_amount"])).drop(columns="final_amount")
    rows = rows.sort_values(["opportunity_id", AS_OF], kind="stable").reset_index(drop=True)
    deal = rows["opportunity_id"]

    extra = {"deal_age_days": (rows[AS_OF] - rows["created_date"]).dt.days.astype("float64")}
    if EXPECTED_CLOSE in rows:
        expected = rows[EXPECTED_CLOSE]
        extra["days_to_expected_close"] = (expected - rows[AS_OF]).dt.days.astype("float64")
        previous = expected.groupby(deal).shift()
        pushed = (expected > previous).astype("float64")
        extra["close_date_pushes"] = pushed.groupby(deal).cumsum()
    if "amount" in rows:
        first = rows["amount"].groupby(deal).transform("first")
        extra["amount_change_pct"] = np.where(first > 0, 100.0 * (rows["amount"] / first - 1.0), np.nan)

    count, shown = milestone_count(rows)
    if shown:
        previous_count = count.groupby(deal).shift()
        changed = previous_count.isna() | (count > previous_count)
        last_change = rows[AS_OF].where(changed).groupby(deal).ffill()
        extra["days_since_last_milestone"] = (rows[AS_OF] - last_change).dt.days.astype("float64")
    if "champion_engagement" in rows:
        extra["champion_engagement_trend"] = _engagement_trend(rows)
    return rows.assign(**extra)


def _engagement_trend(rows: pd.DataFrame, window_days: int = 28) -> pd.Series:
    """Give engagement rank now minus its rank about four weeks earlier (0 for young deals)."""
    rank = engagement_rank(rows["champion_engagement"])
    current = pd.DataFrame({"opportunity_id": rows["opportunity_id"], AS_OF: rows[AS_OF], "rank": rank,
                            "position": np.arange(len(rows))})
    earlier = current.assign(**{AS_OF: current[AS_OF] + pd.Timedelta(days=window_days)})
    merged = pd.merge_asof(
        current.sort_values(AS_OF), earlier.sort_values(AS_OF)[["opportunity_id", AS_OF, "rank"]],
        on=AS_OF, by="opportunity_id", suffixes=("", "_earlier"), direction="backward",
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
    rows: pd.DataFrame, *, max_per_deal: int, last_share: float = 0.5
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
    kept_size = kept.groupby("opportunity_id", sort=False)["opportunity_id"].transform("size").to_numpy()
    is_last = (kept.groupby("opportunity_id", sort=False).cumcount(ascending=False) == 0).to_numpy()
    earlier = np.maximum(kept_size - 1, 1)
    weight = np.where(kept_size == 1, 1.0, np.where(is_last, last_share, (1.0 - last_share) / earlier))
    return kept.assign(sample_weight=weight, is_last_before_close=is_last)


def _evenly_spaced(position: np.ndarray, size: np.ndarray, limit: int) -> np.ndarray:
    """Give a mask keeping up to ``limit`` evenly spaced positions per group, the last one always."""
    if limit == 1:
        return position == size - 1
    step = np.maximum((size - 1) / (limit - 1), 1.0)
    from_end = (size - 1) - position
    target_index = np.round(from_end / step)
    nearest = np.round(target_index * step)
    return (size <= limit) | (from_end == nearest)


def select_latest_rows(rows: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Give each deal's latest row on or before ``as_of`` (all rows when None)."""
    if as_of is not None:
        rows = rows[rows[AS_OF] <= pd.Timestamp(as_of)]
    latest = rows.sort_values(["opportunity_id", AS_OF], kind="stable").groupby(
        "opportunity_id", sort=False).tail(1)
    return latest.reset_index(drop=True)


# --------------------------------------------------------------------------- model features

#: Closed-set columns whose order carries meaning: encoded as ranks.
ORDERED = {spec.name: spec.allowed for spec in contract.OPPORTUNITIES.columns if spec.ordered}

#: Business items a reason speaks of, and the model features that belong to each.
#: Features not listed here are their own item (extra features).
ITEM_OF_FEATURE: dict[str, str] = {
    "industry": "industry",
    "region": "region",
    "employees": "company_size",
    "annual_revenue": "company_size",
    "growth_stage": "ownership",
    "pe_backed": "ownership",
    "primary_pain": "pain",
    "problem_quantified": "pain",
    "deal_type": "deal_type",
    "urgency": "urgency",
    "trigger_event": "trigger_event",
    "primary_competitor": "competition",
    "competitor_count": "competition",
    "competitive_position": "competition",
    "champion_role": "champion_role",
    "executive_sponsor": "executive_sponsor",
    "buying_process_defined": "buying_process",
    "customization_required": "customisation",
    "custom_dev_required": "customisation",
    "qualification_criteria_met": "qualification",
    "qualification_red_flags": "qualification",
    "discount_pct": "discount",
    "gross_margin_pct": "margin",
    "services_share": "services",
    "third_party_share": "services",
    "cac_estimate": "cost_to_win",
    "cac_to_gross_profit": "cost_to_win",
    "amount": "deal_size",
    "amount_change_pct": "deal_size",
    "expansion_potential": "expansion",
    "strategic_value": "strategic_value",
    "problem_confirmed": "problem_confirmed",
    "evaluation_criteria_defined": "evaluation_criteria",
    "stakeholders_identified": "stakeholders",
    "budget_confirmed": "budget_timeline",
    "timeline_confirmed": "budget_timeline",
    "champion_engagement": "champion_engagement",
    "champion_engagement_trend": "champion_engagement",
    "economic_buyer_aware": "executive_awareness",
    "exec_support_signalled": "executive_awareness",
    "business_case_built": "business_case",
    "value_metric_agreed": "business_case",
    "milestones_met": "momentum",
    "milestone_share": "momentum",
    "days_since_last_milestone": "momentum",
    "milestone_velocity": "momentum",
    "deal_age_days": "timing",
    "days_to_expected_close": "timing",
    "close_date_pushes": "timing",
    "calls": "activity",
    "emails": "activity",
    "meetings": "activity",
    "activity_per_week": "activity",
}

#: The items that are progress milestones (what-if candidates for the next best milestone).
MILESTONE_ITEMS = tuple(milestone.key for milestone in MILESTONES)

_CONTRACT_FEATURES = (
    # win dimensions and qualification
    "industry", "region", "employees", "annual_revenue", "growth_stage", "pe_backed",
    "primary_pain", "deal_type", "problem_quantified", "urgency", "trigger_event",
    "primary_competitor", "competitor_count", "competitive_position", "champion_role",
    "executive_sponsor", "buying_process_defined", "customization_required",
    # economics
    "amount", "discount_pct", "gross_margin_pct", "services_share", "third_party_share",
    "custom_dev_required", "cac_estimate", "expansion_potential", "strategic_value",
    # progress milestones on the day
    "problem_confirmed", "evaluation_criteria_defined", "stakeholders_identified",
    "budget_confirmed", "timeline_confirmed", "economic_buyer_aware", "exec_support_signalled",
    "business_case_built", "value_metric_agreed", "champion_engagement",
    # history up to the day
    "deal_age_days", "days_to_expected_close", "close_date_pushes", "amount_change_pct",
    "days_since_last_milestone", "champion_engagement_trend",
)
_ACTIVITY_FEATURES = ("calls", "emails", "meetings")
#: Raw columns the derived features read.
_DERIVED_INPUTS = (
    "executive_sponsor", "buying_process_defined", "problem_quantified", "urgency",
    "competitive_position", "champion_role", "customization_required", "cac_estimate", "amount",
    "gross_margin_pct", "deal_age_days", *(c for m in MILESTONES for c in m.columns), *_ACTIVITY_FEATURES,
)
_DERIVED_FEATURES = (
    "qualification_criteria_met", "qualification_red_flags", "cac_to_gross_profit",
    "milestones_met", "milestone_share", "milestone_velocity", "activity_per_week",
)


def qualification_flags(rows: pd.DataFrame) -> pd.DataFrame:
    """Give the qualification table's pursue criteria and decline red flags per row (booleans).

    Pursue criteria: executive sponsor, defined buying process, quantified problem,
    high urgency, strong position, champion at director level or above, no
    extensive customisation. Red flags: no sponsor above middle management,
    vague pain without a time frame, parity positioning, "just exploring",
    extensive customisation. Columns the data lacks count as unknown (False).
    """
    def flag(column: str, test) -> pd.Series:
        if column not in rows:
            return pd.Series(False, index=rows.index)
        return test(rows[column]).fillna(False).astype(bool)

    def is_true(values: pd.Series) -> pd.Series:
        return values.astype("boolean")

    def is_false(values: pd.Series) -> pd.Series:
        return ~values.astype("boolean")

    champion_rank = ordered_rank(rows["champion_role"], ORDERED["champion_role"]) if "champion_role" in rows else None
    senior_champion = (champion_rank >= ORDERED["champion_role"].index("director")) if champion_rank is not None \
        else pd.Series(False, index=rows.index)
    return pd.DataFrame({
        "crit_executive_sponsor": flag("executive_sponsor", is_true),
        "crit_buying_process": flag("buying_process_defined", is_true),
        "crit_problem_quantified": flag("problem_quantified", is_true),
        "crit_urgency_high": flag("urgency", lambda v: v.eq("high")),
        "crit_strong_position": flag("competitive_position", lambda v: v.eq("strength")),
        "crit_senior_champion": senior_champion.fillna(False).astype(bool),
        "crit_fit": flag("customization_required", lambda v: v.isin(["none", "moderate"])),
        "flag_no_senior_sponsor": (
            flag("executive_sponsor", is_false) & ~senior_champion.fillna(False).astype(bool)
            if "executive_sponsor" in rows or "champion_role" in rows
            else pd.Series(False, index=rows.index)
        ),
        "flag_vague_pain": flag("problem_quantified", is_false) & flag("urgency", lambda v: v.eq("none")),
        "flag_parity": flag("competitive_position", lambda v: v.eq("parity")),
        "flag_just_exploring": flag("buying_process_defined", is_false),
        "flag_extensive_customisation": flag("customization_required", lambda v: v.eq("extensive")),
    }, index=rows.index)


def _bool_to_float(values: pd.Series) -> np.ndarray:
    return values.astype("boolean").astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def _numeric(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()


class FeatureBuilder:
    """Turn point-in-time rows into the numeric matrix the booster sees (fitted, scikit-learn style).

    Parameters
    ----------
    extra_features : sequence of (name, kind)
        Columns beyond the contract to learn from; kind is "numeric" or "categorical".
    exclude : sequence of str
        Feature names never to use.
    include_activity : bool
        Keep activity volume (calls, emails, meetings) as features.

    Attributes (after ``fit``)
    --------------------------
    feature_names_ : list of str
    categorical_features_ : list of str
        Unordered categoricals, encoded as integer codes of ``categories_``.
    categories_ : dict of str to list of str
    kinds_ : dict of str to str ("numeric", "bool", "ordered", "categorical")
    items_ : dict of str to str
        The business item (reason) each feature belongs to.
    """

    def __init__(self, extra_features: Sequence[tuple[str, str]] = (), exclude: Sequence[str] = (),
                 include_activity: bool = True):
        self.extra_features = tuple(tuple(item) for item in extra_features)
        self.exclude = tuple(exclude)
        self.include_activity = include_activity

    # -- fitting

    def candidate_columns(self, rows: pd.DataFrame) -> list[str]:
        """Give the features these rows can supply, before the leakage guard."""
        candidates = list(_CONTRACT_FEATURES)
        if self.include_activity:
            candidates += list(_ACTIVITY_FEATURES)
        candidates += [name for name, _ in self.extra_features]
        derived = self._derived(rows)
        available = [c for c in candidates if c in rows and rows[c].notna().any()]
        available += [c for c in _DERIVED_FEATURES if c in derived and derived[c].notna().any()
                      and (c != "activity_per_week" or self.include_activity)]
        return [c for c in dict.fromkeys(available) if c not in self.exclude]

    def fit(self, rows: pd.DataFrame, features: Sequence[str] | None = None) -> FeatureBuilder:
        """Learn which features exist and the categories of each unordered categorical; give self."""
        chosen = list(features) if features is not None else self.candidate_columns(rows)
        extra_kinds = dict(self.extra_features)
        frame = self._with_derived(rows)
        self.kinds_ = {}
        self.categories_ = {}
        for name in chosen:
            kind = self._kind(name, extra_kinds)
            self.kinds_[name] = kind
            if kind == "categorical":
                values = frame[name].dropna().astype("str")
                self.categories_[name] = sorted(values.unique().tolist())
        self.feature_names_ = chosen
        self.categorical_features_ = [n for n in chosen if self.kinds_[n] == "categorical"]
        self.items_ = {name: ITEM_OF_FEATURE.get(name, name) for name in chosen}
        needed = [name for name in chosen if name not in _DERIVED_FEATURES]
        needed += [column for column in _DERIVED_INPUTS if column not in needed]
        self.input_columns_ = [column for column in needed if column in rows]
        return self

    @staticmethod
    def _kind(name: str, extra_kinds: dict[str, str]) -> str:
        if name in extra_kinds:
            return "categorical" if extra_kinds[name] == "categorical" else "numeric"
        if name in ORDERED:
            return "ordered"
        spec = contract.spec_for(name)
        if spec is None:
            return "numeric"
        if spec.kind == "bool":
            return "bool"
        if spec.kind == "category":
            return "categorical"
        return "numeric"

    # -- transforming

    def _derived(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Give the derived features that are pure functions of one row."""
        flags = qualification_flags(rows)
        criteria = flags.filter(like="crit_").sum(axis=1).astype("float64")
        red_flags = flags.filter(like="flag_").sum(axis=1).astype("float64")
        derived = {"qualification_criteria_met": criteria, "qualification_red_flags": red_flags}
        if {"cac_estimate", "amount", "gross_margin_pct"} <= set(rows):
            gross_profit = _numeric(rows["amount"]) * _numeric(rows["gross_margin_pct"]) / 100.0
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(gross_profit > 0, _numeric(rows["cac_estimate"]) / gross_profit, np.nan)
            derived["cac_to_gross_profit"] = ratio
        count, shown = milestone_count(rows)
        if shown:
            derived["milestones_met"] = count
            derived["milestone_share"] = count / shown
            if "deal_age_days" in rows:
                months = np.maximum(_numeric(rows["deal_age_days"]), 7.0) / 30.0
                derived["milestone_velocity"] = count.to_numpy() / months
        activity = [c for c in _ACTIVITY_FEATURES if c in rows]
        if activity and "deal_age_days" in rows:
            total = sum(np.nan_to_num(_numeric(rows[c])) for c in activity)
            weeks = np.maximum(_numeric(rows["deal_age_days"]), 7.0) / 7.0
            derived["activity_per_week"] = total / weeks
        return pd.DataFrame(derived, index=rows.index)

    def _with_derived(self, rows: pd.DataFrame) -> pd.DataFrame:
        derived = self._derived(rows)
        return pd.concat([rows.drop(columns=[c for c in derived if c in rows]), derived], axis=1)

    def transform(self, rows: pd.DataFrame, only: Sequence[str] | None = None) -> np.ndarray:
        """Give the float64 feature matrix (rows x ``feature_names_``); missing -> NaN.

        With ``only``, just those features are computed (the other columns stay NaN):
        what-if re-scoring recomputes what a change can move and copies the rest.
        """
        derived = self._derived(rows)
        wanted = set(self.feature_names_ if only is None else only)
        matrix = np.full((len(rows), len(self.feature_names_)), np.nan, dtype="float64")
        for position, name in enumerate(self.feature_names_):
            if name not in wanted:
                continue
            if name in derived:
                values = derived[name]
            elif name in rows:
                values = rows[name]
            else:
                continue
            kind = self.kinds_[name]
            if kind == "bool":
                matrix[:, position] = _bool_to_float(values)
            elif kind == "ordered":
                matrix[:, position] = ordered_rank(values, ORDERED[name]).to_numpy()
            elif kind == "categorical":
                codes = pd.Index(self.categories_[name]).get_indexer(values.astype("str"))
                matrix[:, position] = np.where(codes < 0, np.nan, codes)
            else:
                matrix[:, position] = _numeric(values)
        return matrix

    def transform_frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Give the feature matrix as a DataFrame named by feature (for analysts and baselines)."""
        return pd.DataFrame(self.transform(rows), columns=self.feature_names_, index=rows.index)

    def data_warnings(self, rows: pd.DataFrame) -> pd.Series:
        """Give per row a short text listing unseen categories and features the input lacks ('' if none)."""
        missing = [name for name in self.feature_names_
                   if name not in rows and name not in _DERIVED_FEATURES]
        parts: list[pd.Series] = []
        if missing:
            parts.append(pd.Series(f"missing fields: {', '.join(missing)}", index=rows.index))
        for name in self.categorical_features_:
            if name not in rows:
                continue
            values = rows[name]
            unseen = values.notna() & ~values.astype("str").isin(self.categories_[name])
            if unseen.any():
                text = pd.Series("", index=rows.index)
                text[unseen] = f"unseen {name}: " + values[unseen].astype("str")
                parts.append(text)
        if not parts:
            return pd.Series("", index=rows.index, dtype="str")
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.str.cat(part, sep="; ")
        return joined.str.strip("; ").str.replace(r"(; )+", "; ", regex=True).astype("str")

    @property
    def categorical_indices_(self) -> list[int]:
        """Give the positions of unordered categoricals in the matrix (for LightGBM)."""
        return [self.feature_names_.index(name) for name in self.categorical_features_]

    def input_columns(self) -> list[str]:
        """Give the point-in-time columns the builder reads (the model's input signature)."""
        return list(self.input_columns_)
