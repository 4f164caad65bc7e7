"""The qualification table of the method: pursue criteria and red flags per deal."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from winmodel.data import contract
from winmodel.features.milestones import ordered_rank

#: Closed-set columns whose order carries meaning: encoded as ranks.
ORDERED = {
    spec.name: spec.allowed
    for spec in contract.OPPORTUNITIES.columns
    if spec.ordered and spec.allowed is not None
}


def qualification_flags(rows: pd.DataFrame) -> pd.DataFrame:
    """Give the qualification table's pursue criteria and decline red flags per row (booleans).

    Pursue criteria: executive sponsor, defined buying process, quantified problem,
    high urgency, strong position, champion at director level or above, no
    extensive customisation. Red flags: no sponsor above middle management,
    vague pain without a time frame, parity positioning, "just exploring",
    extensive customisation. Columns the data lacks count as unknown (False).
    """

    def flag(column: str, test: Callable[[pd.Series], pd.Series]) -> pd.Series:
        if column not in rows:
            return pd.Series(False, index=rows.index)
        return test(rows[column]).fillna(False).astype(bool)

    def is_true(values: pd.Series) -> pd.Series:
        return values.astype("boolean")

    def is_false(values: pd.Series) -> pd.Series:
        return ~values.astype("boolean")

    champion_rank = (
        ordered_rank(rows["champion_role"], ORDERED["champion_role"])
        if "champion_role" in rows
        else None
    )
    senior_champion = (
        (champion_rank >= ORDERED["champion_role"].index("director"))
        if champion_rank is not None
        else pd.Series(False, index=rows.index)
    )
    return pd.DataFrame(
        {
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
            "flag_vague_pain": flag("problem_quantified", is_false)
            & flag("urgency", lambda v: v.eq("none")),
            "flag_parity": flag("competitive_position", lambda v: v.eq("parity")),
            "flag_just_exploring": flag("buying_process_defined", is_false),
            "flag_extensive_customisation": flag(
                "customization_required", lambda v: v.eq("extensive")
            ),
        },
        index=rows.index,
    )
