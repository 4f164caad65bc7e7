"""The canonical data contract: every column winmodel knows, its type, its range and its meaning.

This module is the single owner of the contract in ``DESIGN.md``. Everything
else (mapping, validation, features, reasons) imports the specs from here, so a
column is described once.

Canonical frames use these dtypes:

* ``string`` and ``category`` columns: pandas string dtype (``str``), values
  normalised (closed sets lower-cased with underscores);
* ``date``: ``datetime64[ns]`` at day precision;
* ``bool``: pandas nullable ``boolean``;
* ``number`` and ``integer``: ``float64`` (``NaN`` for missing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

ColumnKind = Literal["string", "date", "category", "bool", "number", "integer"]
Table = Literal["opportunities", "snapshots", "field_history"]

#: Where a column sits in the sales method; drives features, reasons and the profile.
Group = Literal[
    "identity",
    "outcome",
    "segment",
    "problem",
    "trigger",
    "competition",
    "champion",
    "qualification",
    "economics",
    "progress",
    "crm",
    "activity",
]

STATUS_VALUES = ("open", "won", "lost")
CLOSED_STATUSES = ("won", "lost")


def long_cycle_days(cycle_days: pd.Series) -> int | None:
    """Give a long deal cycle: the 80th percentile of closed deals' created-to-close days (None: none).

    The one measure of "a deal cycle" behind the maturity cut-off
    (:func:`winmodel.modeling.train.default_maturity_days`) and the late field-history warning
    (:func:`winmodel.data.field_history.log_starts_late`).
    """
    cycle = cycle_days.dropna()
    return None if cycle.empty else int(np.percentile(cycle, 80))


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the contract.

    ``allowed`` lists the values of a closed set (anything else is an error);
    ``examples`` lists typical values of an open set (anything is accepted).
    ``ordered`` marks closed sets whose order means something (none < low < high).
    """

    name: str
    kind: ColumnKind
    group: Group
    label: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    ordered: bool = False
    examples: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: the range is a percentage (0-100) or a share (0-1): used to detect the other scale.
    scale: Literal["percent", "share"] | None = None
    description: str = ""
    #: Whether the value may change during a deal's life. A mutable value is a training feature only
    #: as of a snapshot or history date before the close; on a closed deal's opportunities row it is
    #: the final state (see FIXED_AT_CREATION).
    mutable: bool = True

    @property
    def is_closed_set(self) -> bool:
        """Give True when only the ``allowed`` values are valid."""
        return self.allowed is not None


#: Fixed when the deal is created: identity, segment, deal type and primary pain. Everything else may
#: change during the deal (qualification, competition, champion, economics, milestones, engagement,
#: amount, close date).
FIXED_AT_CREATION = frozenset(
    {
        "opportunity_id",
        "account_id",
        "owner_id",
        "created_date",
        "industry",
        "region",
        "employees",
        "annual_revenue",
        "growth_stage",
        "pe_backed",
        "deal_type",
        "primary_pain",
    }
)


def _spec(name: str, kind: ColumnKind, group: Group, label: str, **kwargs: Any) -> ColumnSpec:
    return ColumnSpec(
        name=name,
        kind=kind,
        group=group,
        label=label,
        mutable=name not in FIXED_AT_CREATION,
        **kwargs,
    )


# --------------------------------------------------------------------------- opportunities

_IDENTITY = (
    _spec(
        "opportunity_id",
        "string",
        "identity",
        "Opportunity",
        required=True,
        description="Unique id of the deal.",
    ),
    _spec("account_id", "string", "identity", "Account"),
    _spec("owner_id", "string", "identity", "Deal owner"),
    _spec(
        "created_date",
        "date",
        "identity",
        "Created",
        required=True,
        description="When the deal was created (or first engaged).",
    ),
    _spec(
        "close_date",
        "date",
        "identity",
        "Close date",
        required=True,
        description="Actual close date for closed deals, expected close date for open ones.",
    ),
    _spec(
        "status",
        "category",
        "outcome",
        "Status",
        required=True,
        allowed=STATUS_VALUES,
        description="open, won or lost: the label for closed deals.",
    ),
    _spec(
        "amount",
        "number",
        "economics",
        "Deal amount",
        minimum=0,
        description="Contract value. Optional: without it, expected values and money figures are left out.",
    ),
)

_SEGMENT = (
    _spec("industry", "category", "segment", "Industry"),
    _spec("region", "category", "segment", "Region"),
    _spec("employees", "number", "segment", "Company size (employees)", minimum=0),
    _spec("annual_revenue", "number", "segment", "Company revenue", minimum=0),
    _spec(
        "growth_stage",
        "category",
        "segment",
        "Growth stage",
        examples=("startup", "scaleup", "mature", "declining"),
    ),
    _spec("pe_backed", "bool", "segment", "Private-equity backed"),
)

_PROBLEM = (
    _spec(
        "primary_pain",
        "category",
        "problem",
        "Primary pain",
        examples=("legacy_not_scaling", "cost", "compliance", "growth"),
    ),
    _spec(
        "deal_type",
        "category",
        "problem",
        "Deal type",
        allowed=("legacy_replacement", "greenfield", "expansion", "renewal"),
    ),
    _spec("problem_quantified", "bool", "problem", "Business problem quantified"),
    _spec(
        "urgency", "category", "problem", "Urgency", allowed=("none", "low", "high"), ordered=True
    ),
)

_TRIGGER = (
    _spec(
        "trigger_event",
        "category",
        "trigger",
        "Trigger event",
        examples=(
            "none",
            "new_executive",
            "funding",
            "m_and_a",
            "regulation",
            "legacy_end_of_life",
        ),
    ),
)

_COMPETITION = (
    _spec("primary_competitor", "category", "competition", "Main competitor", examples=("none",)),
    _spec("competitor_count", "integer", "competition", "Number of competitors", minimum=0),
    _spec(
        "competitive_position",
        "category",
        "competition",
        "Competitive position",
        allowed=("strength", "parity", "weakness"),
    ),
)

_CHAMPION = (
    _spec(
        "champion_role",
        "category",
        "champion",
        "Champion's level",
        allowed=("none", "manager", "director", "vp", "c_level"),
        ordered=True,
    ),
)

_QUALIFICATION = (
    _spec("executive_sponsor", "bool", "qualification", "Executive sponsor with budget authority"),
    _spec("buying_process_defined", "bool", "qualification", "Buying process and timeline defined"),
    _spec(
        "customization_required",
        "category",
        "qualification",
        "Customisation required",
        allowed=("none", "moderate", "extensive"),
        ordered=True,
    ),
)

_ECONOMICS = (
    _spec(
        "discount_pct", "number", "economics", "Discount", minimum=0, maximum=100, scale="percent"
    ),
    _spec(
        "gross_margin_pct",
        "number",
        "economics",
        "Gross margin",
        minimum=-100,
        maximum=100,
        scale="percent",
    ),
    _spec(
        "services_share",
        "number",
        "economics",
        "Services share",
        minimum=0,
        maximum=1,
        scale="share",
    ),
    _spec(
        "third_party_share",
        "number",
        "economics",
        "Third-party share",
        minimum=0,
        maximum=1,
        scale="share",
    ),
    _spec("custom_dev_required", "bool", "economics", "Custom development required"),
    _spec("cac_estimate", "number", "economics", "Cost to win", minimum=0),
    _spec(
        "expansion_potential",
        "category",
        "economics",
        "Expansion potential",
        allowed=("low", "medium", "high"),
        ordered=True,
    ),
    _spec(
        "strategic_value",
        "category",
        "economics",
        "Strategic value",
        allowed=("none", "reference", "displacement", "new_segment"),
    ),
)

# --------------------------------------------------------------------------- snapshots

_SNAPSHOT_KEYS = (
    _spec("opportunity_id", "string", "identity", "Opportunity", required=True),
    _spec(
        "snapshot_date",
        "date",
        "identity",
        "Snapshot date",
        required=True,
        description="The day the CRM showed this state.",
    ),
)

_CRM = (
    _spec("stage", "category", "crm", "CRM stage"),
    _spec(
        "crm_probability",
        "number",
        "crm",
        "CRM stage probability",
        minimum=0,
        maximum=100,
        scale="percent",
    ),
)

_SNAPSHOT_DEAL = (
    _spec("amount", "number", "economics", "Deal amount", minimum=0),
    _spec("close_date", "date", "identity", "Expected close date"),
)

#: Progress milestones: what the buyer has done, not what the seller did.
MILESTONES = (
    _spec("problem_confirmed", "bool", "progress", "Business problem confirmed by the buyer"),
    _spec("evaluation_criteria_defined", "bool", "progress", "Evaluation criteria defined"),
    _spec(
        "stakeholders_identified",
        "number",
        "progress",
        "Buying group identified",
        minimum=0,
        maximum=1,
        scale="share",
    ),
    _spec("budget_confirmed", "bool", "progress", "Budget confirmed"),
    _spec("timeline_confirmed", "bool", "progress", "Decision timeline confirmed"),
    _spec("economic_buyer_aware", "bool", "progress", "Economic buyer aware of the deal"),
    _spec("exec_support_signalled", "bool", "progress", "Executive support signalled"),
    _spec("business_case_built", "bool", "progress", "Business case built"),
    _spec("value_metric_agreed", "bool", "progress", "Value metric agreed"),
    _spec(
        "champion_engagement",
        "category",
        "progress",
        "Champion engagement",
        allowed=("none", "passive", "responsive", "active", "coaching"),
        ordered=True,
    ),
)

ACTIVITY = (
    _spec("calls", "integer", "activity", "Calls logged", minimum=0),
    _spec("emails", "integer", "activity", "Emails logged", minimum=0),
    _spec("meetings", "integer", "activity", "Meetings logged", minimum=0),
)

#: Columns describing the state of a deal on a day: on snapshots, or on a flat export.
PROGRESS_COLUMNS = tuple(spec.name for spec in (*MILESTONES, *ACTIVITY, *_CRM))


@dataclass(frozen=True)
class TableSpec:
    """The columns of one canonical table and the key that makes a row unique."""

    name: Table
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    by_name: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {spec.name: spec for spec in self.columns})

    @property
    def required(self) -> tuple[str, ...]:
        """Give the names of the required columns."""
        return tuple(spec.name for spec in self.columns if spec.required)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def __getitem__(self, name: str) -> ColumnSpec:
        return self.by_name[name]

    def names(self) -> tuple[str, ...]:
        """Give every column name in contract order."""
        return tuple(spec.name for spec in self.columns)


OPPORTUNITIES = TableSpec(
    name="opportunities",
    columns=(
        *_IDENTITY,
        *_SEGMENT,
        *_PROBLEM,
        *_TRIGGER,
        *_COMPETITION,
        *_CHAMPION,
        *_QUALIFICATION,
        *_ECONOMICS,
        # A flat export (no snapshots) may carry the progress columns here.
        *_CRM,
        *MILESTONES,
        *ACTIVITY,
    ),
    key=("opportunity_id",),
)

#: The opportunities' mutable columns a snapshot (or a replayed field history) may hold as of its date.
_MUTABLE_DEAL = tuple(
    spec
    for spec in (*_PROBLEM, *_TRIGGER, *_COMPETITION, *_CHAMPION, *_QUALIFICATION, *_ECONOMICS)
    if spec.mutable and spec.name != "amount"
)

SNAPSHOTS = TableSpec(
    name="snapshots",
    columns=(*_SNAPSHOT_KEYS, *_CRM, *_SNAPSHOT_DEAL, *_MUTABLE_DEAL, *MILESTONES, *ACTIVITY),
    key=("opportunity_id", "snapshot_date"),
)

FIELD_HISTORY = TableSpec(
    name="field_history",
    columns=(
        _spec("opportunity_id", "string", "identity", "Opportunity", required=True),
        _spec(
            "field",
            "string",
            "identity",
            "Field",
            required=True,
            description="The contract column that changed (the mapping names the CRM's fields).",
        ),
        _spec("old_value", "string", "identity", "Value before the change"),
        _spec("new_value", "string", "identity", "Value after the change"),
        _spec(
            "changed_at",
            "date",
            "identity",
            "Changed at",
            required=True,
            description="When the change was made; the snapshot of that day shows it.",
        ),
    ),
    key=(),
)

TABLES: dict[str, TableSpec] = {
    "opportunities": OPPORTUNITIES,
    "snapshots": SNAPSHOTS,
    "field_history": FIELD_HISTORY,
}

#: The win dimensions of the method, in the order a seller reads them.
WIN_DIMENSION_GROUPS: tuple[Group, ...] = (
    "segment",
    "problem",
    "trigger",
    "competition",
    "champion",
)


def columns_in_group(*groups: Group, table: TableSpec = OPPORTUNITIES) -> tuple[str, ...]:
    """Give the column names of ``table`` that belong to any of ``groups``."""
    return tuple(spec.name for spec in table.columns if spec.group in groups)


def spec_for(name: str) -> ColumnSpec | None:
    """Give the spec of a canonical column on either table, or None for an extra column."""
    return OPPORTUNITIES.by_name.get(name) or SNAPSHOTS.by_name.get(name)


def is_mutable(name: str, *, fixed: Iterable[str] = (), mutable: Iterable[str] = ()) -> bool:
    """Give whether a column may change during a deal: the mapping's overrides, else the contract.

    A column outside the contract (an extra feature) is fixed unless the mapping says otherwise.
    """
    if name in set(mutable):
        return True
    if name in set(fixed):
        return False
    spec = spec_for(name)
    return spec.mutable if spec is not None else False


def normalise_category(value: str) -> str:
    """Give the canonical spelling of a closed-set value: ``'Legacy Replacement'`` -> ``'legacy_replacement'``."""
    text = str(value).strip().lower()
    for char in (" ", "-", "/"):
        text = text.replace(char, "_")
    while "__" in text:
        text = text.replace("__", "_")
    return text


def closest_names(name: str, candidates: Iterable[str], limit: int = 1) -> list[str]:
    """Give the candidate column names most similar to ``name`` (for "did you mean" hints)."""
    import difflib

    candidates = list(candidates)
    lowered = {candidate.lower().replace(" ", "_"): candidate for candidate in candidates}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.6)
    if not matches:
        # Substring match catches "Opportunity ID" for "opportunity_id" and "deal_amount" for "amount".
        compact = name.lower().replace("_", "")
        matches = [
            key
            for key in lowered
            if compact in key.replace("_", "") or (key.replace("_", "") in compact and len(key) > 3)
        ][:limit]
    return [lowered[match] for match in matches]
