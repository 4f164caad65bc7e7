"""The fitted feature builder: point-in-time rows -> the numeric matrix the booster sees.

Ordered categories become ranks, unordered ones integer codes learned at fit time,
booleans 0/1, plus derived counts (qualification, milestones, activity).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from winmodel.data import contract
from winmodel.features.milestones import (
    MILESTONE_WAITS,
    MILESTONES,
    milestone_count,
    milestone_spec,
    ordered_rank,
)
from winmodel.features.qualification import ORDERED, qualification_flags

log = logging.getLogger(__name__)

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
    "problem_quantified": "problem_quantified",
    "deal_type": "deal_type",
    "urgency": "urgency",
    "trigger_event": "trigger_event",
    "primary_competitor": "competition",
    "competitor_count": "competition",
    "competitive_position": "competitive_position",
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
    **{wait: "momentum" for wait in MILESTONE_WAITS.values()},
    "deal_age_days": "deal_age",
    "days_to_expected_close": "expected_close",
    "close_date_pushes": "close_date_pushes",
    "calls": "activity",
    "emails": "activity",
    "meetings": "activity",
    "activity_per_week": "activity",
}

#: Columns whose order carries meaning for the model although the contract leaves them unordered:
#: a strong position is better than parity, parity better than weakness (so the model can be
#: constrained to respect it, see MONOTONE).
MODEL_ORDERED: dict[str, tuple[str, ...]] = {
    "competitive_position": ("weakness", "parity", "strength"),
}

#: The direction the model must respect for a feature (+1: never lowers the probability when it
#: rises; -1: never raises it): meeting a milestone, deepening champion engagement and meeting a
#: qualification criterion can never lower a deal's probability. These are the features a
#: milestone's what-if moves (winmodel.scoring.explain.WHAT_IF_MOVES and Milestone.mark_met) and
#: the qualification table's criteria and red flags.
MONOTONE: dict[str, int] = {
    # milestones, and what meeting one moves
    "problem_confirmed": 1,
    "evaluation_criteria_defined": 1,
    "stakeholders_identified": 1,
    "budget_confirmed": 1,
    "timeline_confirmed": 1,
    "economic_buyer_aware": 1,
    "exec_support_signalled": 1,
    "business_case_built": 1,
    "value_metric_agreed": 1,
    "champion_engagement": 1,
    "champion_engagement_trend": 1,
    "milestones_met": 1,
    "milestone_share": 1,
    "milestone_velocity": 1,
    "days_since_last_milestone": -1,
    # qualification criteria (features/qualification.py) and their counts
    "executive_sponsor": 1,
    "buying_process_defined": 1,
    "problem_quantified": 1,
    "urgency": 1,
    "competitive_position": 1,
    "champion_role": 1,
    "customization_required": -1,
    "qualification_criteria_met": 1,
    "qualification_red_flags": -1,
}

#: The items that are progress milestones (what-if candidates for the next best milestone).
MILESTONE_ITEMS = tuple(milestone.key for milestone in MILESTONES)

_CONTRACT_FEATURES = (
    # win dimensions and qualification
    "industry",
    "region",
    "employees",
    "annual_revenue",
    "growth_stage",
    "pe_backed",
    "primary_pain",
    "deal_type",
    "problem_quantified",
    "urgency",
    "trigger_event",
    "primary_competitor",
    "competitor_count",
    "competitive_position",
    "champion_role",
    "executive_sponsor",
    "buying_process_defined",
    "customization_required",
    # economics
    "amount",
    "discount_pct",
    "gross_margin_pct",
    "services_share",
    "third_party_share",
    "custom_dev_required",
    "cac_estimate",
    "expansion_potential",
    "strategic_value",
    # progress milestones on the day
    "problem_confirmed",
    "evaluation_criteria_defined",
    "stakeholders_identified",
    "budget_confirmed",
    "timeline_confirmed",
    "economic_buyer_aware",
    "exec_support_signalled",
    "business_case_built",
    "value_metric_agreed",
    "champion_engagement",
    # history up to the day
    "deal_age_days",
    "days_to_expected_close",
    "close_date_pushes",
    "amount_change_pct",
    "days_since_last_milestone",
    "champion_engagement_trend",
    *MILESTONE_WAITS.values(),
)

_ACTIVITY_FEATURES = ("calls", "emails", "meetings")

#: Raw columns the derived features read.
_DERIVED_INPUTS = (
    "executive_sponsor",
    "buying_process_defined",
    "problem_quantified",
    "urgency",
    "competitive_position",
    "champion_role",
    "customization_required",
    "cac_estimate",
    "amount",
    "gross_margin_pct",
    "deal_age_days",
    *(c for m in MILESTONES for c in m.columns),
    *_ACTIVITY_FEATURES,
)

_DERIVED_FEATURES = (
    "qualification_criteria_met",
    "qualification_red_flags",
    "cac_to_gross_profit",
    "milestones_met",
    "milestone_share",
    "milestone_velocity",
    "activity_per_week",
)


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
    ignore_inputs : sequence of str
        Input columns treated as absent, for features and the features derived from them alike:
        final-state columns (a mutable value known only as it stood at close) and columns the
        leakage guard refused. Scoring ignores them too, so training and scoring agree.

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

    def __init__(
        self,
        extra_features: Sequence[tuple[str, str]] = (),
        exclude: Sequence[str] = (),
        include_activity: bool = True,
        ignore_inputs: Sequence[str] = (),
    ):
        # Each (name, kind) pair, kept as a tuple.
        self.extra_features = cast(
            tuple[tuple[str, str], ...], tuple(tuple(item) for item in extra_features)
        )
        self.exclude = tuple(exclude)
        self.include_activity = include_activity
        self.ignore_inputs = tuple(ignore_inputs)

    def _visible(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Give ``rows`` without the ignored input columns."""
        ignored = [column for column in self.ignore_inputs if column in rows]
        return rows.drop(columns=ignored) if ignored else rows

    # -- fitting

    def candidate_columns(self, rows: pd.DataFrame) -> list[str]:
        """Give the features these rows can supply, before the leakage guard."""
        rows = self._visible(rows)
        candidates = list(_CONTRACT_FEATURES)
        if self.include_activity:
            candidates += list(_ACTIVITY_FEATURES)
        candidates += [name for name, _ in self.extra_features]
        derived = self._derived(rows)
        available = [c for c in candidates if c in rows and rows[c].notna().any()]
        available += [
            c
            for c in _DERIVED_FEATURES
            if c in derived
            and derived[c].notna().any()
            and (c != "activity_per_week" or self.include_activity)
        ]
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
        self.levels_ = {
            name: list(MODEL_ORDERED.get(name) or ORDERED[name])
            for name in chosen
            if self.kinds_[name] == "ordered"
        }
        self.feature_names_ = chosen
        self.categorical_features_ = [n for n in chosen if self.kinds_[n] == "categorical"]
        self.items_ = {name: ITEM_OF_FEATURE.get(name, name) for name in chosen}
        needed = [name for name in chosen if name not in _DERIVED_FEATURES]
        needed += [column for column in _DERIVED_INPUTS if column not in needed]
        self.input_columns_ = [
            column for column in needed if column in rows and column not in self.ignore_inputs
        ]
        return self

    @staticmethod
    def _kind(name: str, extra_kinds: dict[str, str]) -> str:
        if name in extra_kinds:
            return "categorical" if extra_kinds[name] == "categorical" else "numeric"
        if name in ORDERED or name in MODEL_ORDERED:
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
        rows = self._visible(rows)
        flags = qualification_flags(rows)
        criteria = flags.filter(like="crit_").sum(axis=1).astype("float64")
        red_flags = flags.filter(like="flag_").sum(axis=1).astype("float64")
        derived: dict[str, pd.Series | np.ndarray] = {
            "qualification_criteria_met": criteria,
            "qualification_red_flags": red_flags,
        }
        if {"cac_estimate", "amount", "gross_margin_pct"} <= set(rows):
            gross_profit = _numeric(rows["amount"]) * _numeric(rows["gross_margin_pct"]) / 100.0
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(
                    gross_profit > 0, _numeric(rows["cac_estimate"]) / gross_profit, np.nan
                )
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
        rows = self._visible(rows)
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
                matrix[:, position] = ordered_rank(values, self.levels_[name]).to_numpy()
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
        missing = [
            name
            for name in self.feature_names_
            if name not in rows and name not in _DERIVED_FEATURES
        ]
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

    def monotone_constraints(self) -> list[int]:
        """Give LightGBM's monotone_constraints for ``feature_names_`` (see :data:`MONOTONE`).

        A feature gets its direction only when its encoding is ordered the same way (a milestone,
        a rank, a count): a saved model whose builder encodes a column as unordered codes keeps 0.
        """
        return [
            MONOTONE.get(name, 0) if self.kinds_[name] != "categorical" else 0
            for name in self.feature_names_
        ]

    @property
    def categorical_indices_(self) -> list[int]:
        """Give the positions of unordered categoricals in the matrix (for LightGBM)."""
        return [self.feature_names_.index(name) for name in self.categorical_features_]

    def to_spec(self) -> dict[str, Any]:
        """Give everything the fitted builder learned, as plain JSON types (the saved model's features.json)."""
        return {
            "extra_features": [list(item) for item in self.extra_features],
            "exclude": list(self.exclude),
            "ignore_inputs": list(self.ignore_inputs),
            "include_activity": self.include_activity,
            "feature_names": list(self.feature_names_),
            "kinds": dict(self.kinds_),
            "categories": {name: list(values) for name, values in self.categories_.items()},
            "levels": {name: list(values) for name, values in self.levels_.items()},
            "items": dict(self.items_),
            "input_columns": list(self.input_columns_),
            "milestones": milestone_spec(),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureBuilder:
        """Give the fitted builder described by :meth:`to_spec` (raises ValueError when it does not fit this code)."""
        saved = spec.get("milestones")
        if saved is not None and saved != milestone_spec():
            raise ValueError(
                "the model's milestone definitions differ from this version of winmodel's"
            )
        builder = cls(
            extra_features=[tuple(item) for item in spec["extra_features"]],
            exclude=spec["exclude"],
            ignore_inputs=spec.get("ignore_inputs", []),
            include_activity=spec["include_activity"],
        )
        builder.feature_names_ = list(spec["feature_names"])
        builder.kinds_ = dict(spec["kinds"])
        builder.categories_ = {name: list(values) for name, values in spec["categories"].items()}
        builder.levels_ = {name: list(values) for name, values in spec["levels"].items()}
        builder.items_ = dict(spec["items"])
        builder.input_columns_ = list(spec["input_columns"])
        builder.categorical_features_ = [
            n for n in builder.feature_names_ if builder.kinds_[n] == "categorical"
        ]
        unknown = {kind for kind in builder.kinds_.values()} - {
            "numeric",
            "bool",
            "ordered",
            "categorical",
        }
        if unknown:
            raise ValueError(f"unknown feature kinds {sorted(unknown)}")
        return builder

    def input_columns(self) -> list[str]:
        """Give the point-in-time columns the builder reads (the model's input signature)."""
        return list(self.input_columns_)
