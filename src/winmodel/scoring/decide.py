"""Decisions: expected value, pursue / qualify / decline, and deal-desk flags.

Expected value = P(won) x amount x gross margin - the cost still ahead to win
it. The cost still ahead is the deal's cost-to-win estimate (CAC; or a share of
the amount when the export has none) times the share of milestones not yet met.

The rules, in order (thresholds in ``pipelines/score.yaml``):

* **decline** when the deal shows at least ``decline_min_red_flags`` red flags
  of the qualification table, or its win probability is below
  ``decline_max_probability``, or its expected value is negative;
* **pursue** when the win probability is at least ``pursue_min_probability``
  and the expected value is positive;
* **qualify** (harder) otherwise: the reason names the red flags to clear and
  the next best milestone.
"""

from __future__ import annotations

from string import Formatter

import numpy as np
import pandas as pd

from winmodel.features.milestones import milestone_count
from winmodel.features.qualification import qualification_flags
from winmodel.scoring.reasons import MINUS, Catalogue
from winmodel.settings import CostModel, DealDeskLimits, RecommendationRules

RED_FLAGS = (
    "flag_no_senior_sponsor",
    "flag_vague_pain",
    "flag_parity",
    "flag_just_exploring",
    "flag_extensive_customisation",
)


def _numbers(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype="float64")


def expected_value(rows: pd.DataFrame, probability: np.ndarray, cost: CostModel) -> np.ndarray:
    """Give P(won) x amount x gross margin - remaining cost to pursue, per deal.

    Needs ``amount``; uses ``gross_margin_pct``, ``cac_estimate`` and the
    milestone columns when present (defaults from ``cost`` otherwise).
    """
    amount = np.nan_to_num(_numbers(rows, "amount"))
    margin = _numbers(rows, "gross_margin_pct")
    margin = np.where(np.isnan(margin), cost.default_gross_margin_pct, margin) / 100.0
    cac = _numbers(rows, "cac_estimate")
    cac = np.where(np.isnan(cac), cost.default_cac_share_of_amount * amount, cac)
    count, shown = milestone_count(rows)
    still_to_do = 1.0 - (count.to_numpy(dtype=float) / shown) if shown else np.ones(len(rows))
    remaining = cac * cost.remaining_share_of_cac * np.nan_to_num(still_to_do, nan=1.0)
    value: np.ndarray = probability * amount * margin - remaining
    return value


def money(values: np.ndarray) -> np.ndarray:
    """Give amounts as text: 12,300 / −4,100 (no currency: exports differ)."""
    rounded = np.round(np.asarray(values, dtype=float), -2)
    uniques, inverse = np.unique(rounded, return_inverse=True)
    texts = np.array(
        [f"{MINUS if value < 0 else ''}{abs(value):,.0f}" for value in uniques], dtype=object
    )
    return texts[inverse.reshape(-1)] if len(uniques) else np.array([], dtype=object)


def recommend(
    rows: pd.DataFrame,
    probability: np.ndarray,
    value: np.ndarray,
    next_milestone: pd.Series,
    next_uplift: pd.Series,
    rules: RecommendationRules,
    catalogue: Catalogue,
) -> tuple[pd.Series, pd.Series]:
    """Give the recommendation (pursue / qualify / decline) and a one-line reason per deal."""
    flags = qualification_flags(rows)[list(RED_FLAGS)].to_numpy()
    flag_count = flags.sum(axis=1)
    decline = (
        (flag_count >= rules.decline_min_red_flags)
        | (probability < rules.decline_max_probability)
        | (value < 0)
    )
    pursue = ~decline & (probability >= rules.pursue_min_probability) & (value > 0)
    recommendation = np.where(decline, "decline", np.where(pursue, "pursue", "qualify"))

    flag_names = np.array([catalogue.red_flags[name] for name in RED_FLAGS], dtype=object)
    flag_text = np.full(len(rows), "", dtype=object)
    for position, name in enumerate(flag_names):
        has = flags[:, position]
        flag_text[has] = np.where(flag_text[has] == "", name, flag_text[has] + ", " + name)
    count_text = np.array(
        [f"{n} red flag{'s' if n != 1 else ''}" for n in range(len(RED_FLAGS) + 1)], dtype=object
    )
    flag_detail = np.where(flag_text != "", count_text[flag_count] + " (" + flag_text + ")", "")

    percent = _percent(probability)
    low = fill(catalogue.recommendation["low_probability"], probability=percent)
    milestone_text = _milestone_text(next_milestone, next_uplift, catalogue)
    value_text = money(value)

    declining_detail = np.where(
        flag_detail != "",
        flag_detail,
        np.where(value < 0, catalogue.recommendation["negative_value"], low),
    )
    qualify_detail = np.where(flag_detail != "", flag_detail, low)
    qualify_detail = np.where(
        milestone_text != "", qualify_detail + "; " + milestone_text, qualify_detail
    )

    templates = catalogue.recommendation
    reason = np.where(
        recommendation == "pursue",
        fill(templates["pursue"], probability=percent, expected_value=value_text),
        np.where(
            recommendation == "decline",
            fill(templates["decline"], detail=declining_detail, expected_value=value_text),
            fill(templates["qualify"], detail=qualify_detail, expected_value=value_text),
        ),
    )
    return (
        pd.Series(recommendation, index=rows.index, dtype="object"),
        pd.Series(reason, index=rows.index, dtype="object"),
    )


def fill(template: str, **values: np.ndarray | str) -> np.ndarray:
    """Give ``template`` filled per element from arrays of text (a vectorised str.format, no format specs)."""
    out: np.ndarray | str = ""
    for literal, field, _, _ in Formatter().parse(template):
        out = out + literal
        if field is not None:
            out = out + np.asarray(values[field], dtype=object)
    return np.asarray(out, dtype=object)


def _percent(probability: np.ndarray) -> np.ndarray:
    whole = np.clip(np.round(np.asarray(probability, dtype=float) * 100), 0, 100).astype(int)
    labels = np.array([f"{n}%" for n in range(101)], dtype=object)
    texts: np.ndarray = labels[whole]
    return texts


def _milestone_text(
    next_milestone: pd.Series, next_uplift: pd.Series, catalogue: Catalogue
) -> np.ndarray:
    keys = next_milestone.to_numpy(dtype=object)
    whole = np.round(next_uplift.to_numpy(dtype=float)).astype(int)
    labels = (
        np.array([catalogue.milestones.get(key, key) for key in keys], dtype=object)
        if len(keys)
        else keys
    )
    uplift = np.array([f"+{n} pts" for n in whole], dtype=object) if len(keys) else keys
    text = fill(catalogue.recommendation["next_milestone"], milestone=labels, uplift=uplift)
    return np.where(keys != "", text, "")


def deal_desk_flags(rows: pd.DataFrame, limits: DealDeskLimits, catalogue: Catalogue) -> pd.Series:
    """Give per deal the deal-desk flags joined by '; ' ('' when none).

    Discount above the approval limit, custom development, services share above
    the limit, gross margin below the floor, and roadmap dependence (an export's
    ``roadmap_dependent`` column, else extensive customisation).
    """
    texts = catalogue.deal_desk
    n = len(rows)
    out = np.full(n, "", dtype=object)

    def add(mask: np.ndarray, text: np.ndarray | str) -> None:
        text_array = np.broadcast_to(np.asarray(text, dtype=object), (n,))
        out[mask] = np.where(out[mask] == "", text_array[mask], out[mask] + "; " + text_array[mask])

    discount = _numbers(rows, "discount_pct")
    over = np.nan_to_num(discount) > limits.max_discount_pct
    if over.any():
        add(
            over,
            np.array(
                [
                    texts["discount"].format(
                        value=f"{v:.0f}%", limit=f"{limits.max_discount_pct:.0f}%"
                    )
                    if ok
                    else ""
                    for v, ok in zip(discount, over, strict=True)
                ],
                dtype=object,
            ),
        )
    if "custom_dev_required" in rows:
        add(
            rows["custom_dev_required"].astype("boolean").fillna(False).to_numpy(dtype=bool),
            texts["custom_dev"],
        )
    services = _numbers(rows, "services_share")
    over = np.nan_to_num(services) > limits.max_services_share
    if over.any():
        add(
            over,
            np.array(
                [
                    texts["services"].format(
                        value=f"{v:.0%}", limit=f"{limits.max_services_share:.0%}"
                    )
                    if ok
                    else ""
                    for v, ok in zip(services, over, strict=True)
                ],
                dtype=object,
            ),
        )
    margin = _numbers(rows, "gross_margin_pct")
    under = ~np.isnan(margin) & (margin < limits.min_gross_margin_pct)
    if under.any():
        add(
            under,
            np.array(
                [
                    texts["margin"].format(
                        value=f"{v:.0f}%", limit=f"{limits.min_gross_margin_pct:.0f}%"
                    )
                    if ok
                    else ""
                    for v, ok in zip(margin, under, strict=True)
                ],
                dtype=object,
            ),
        )
    if "roadmap_dependent" in rows:
        roadmap = rows["roadmap_dependent"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    elif "customization_required" in rows:
        roadmap = rows["customization_required"].astype("object").eq("extensive").to_numpy()
    else:
        roadmap = np.zeros(n, dtype=bool)
    add(roadmap, texts["roadmap"])
    return pd.Series(out, index=rows.index, dtype="object")
