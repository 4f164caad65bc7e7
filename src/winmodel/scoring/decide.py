"""Decisions: the cost still ahead, expected margin and value, the decision table, deal-desk flags.

Expected margin = P(won) x amount x gross margin. The cost still ahead to win a deal is the
remaining effort by stage (days, from the share of milestones met) x the loaded cost of a day,
bounded by a share of the amount (:class:`~winmodel.settings.CostModel`). Expected value =
expected margin - cost still ahead. A deal without an amount has neither: its money figures
stay blank and its reason says so, never computed from a forced 0.

The decision table (thresholds in ``pipelines/score.yaml``, chosen with the triage replay of
:mod:`winmodel.analysis.triage`); the first rule that matches decides, and its id is the row's
``decision_rule``:

==================================  ================================================================
``qualify.check_amount``            the amount is implausible for this export (see data.validate)
``decline.low_probability``         win probability below ``decline_below_probability`` and below
                                    the pursue line (never band A)
``qualify.no_amount``               no amount: no expected margin to weigh
``qualify.red_flags``               at least ``qualify_min_red_flags`` red flags (when set)
``pursue.expected_margin``          expected margin at least ``pursue_min_expected_margin`` and not
                                    below the cost still ahead
``pursue.long_shot``                the same, with a win probability below the floor: a large deal
                                    whose expected margin still clears the line
``decline.negative_value``          expected margin below the cost still ahead (never band A)
``qualify.band_a_negative_value``   band A, but the cost still ahead exceeds the expected margin
``qualify.below_pursue_line``       everything else
==================================  ================================================================

The pursue list is therefore the deals of highest expected margin (above the line), so it never
holds less than ranking the pipeline by the model's own expected margin would.
Red flags of the qualification table never decline a deal on their own: the model already weighs
them. A qualify or pursue reason lists them as what the conversation must resolve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from winmodel.features.milestones import milestone_count
from winmodel.features.qualification import qualification_flags
from winmodel.scoring.reasons import MINUS, Catalogue, fill, milestone_labels
from winmodel.settings import CostModel, DealDeskLimits, RecommendationRules

RED_FLAGS = (
    "flag_no_senior_sponsor",
    "flag_vague_pain",
    "flag_parity",
    "flag_just_exploring",
    "flag_extensive_customisation",
)

#: The decision table's rules in the order they are tried (stable ids, written to decision_rule).
DECISION_RULES = (
    "qualify.check_amount",
    "decline.low_probability",
    "qualify.no_amount",
    "qualify.red_flags",
    "pursue.expected_margin",
    "pursue.long_shot",
    "decline.negative_value",
    "qualify.band_a_negative_value",
    "qualify.below_pursue_line",
)

#: The column a scoring job may add to flag deals whose amount is implausible for the export.
AMOUNT_FLAG = "amount_implausible"
#: ... and the limit it was judged against (the same on every row).
AMOUNT_LIMIT = "amount_limit"

STAGES = ("early", "mid", "late")


def _numbers(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype="float64")


def deal_stage(rows: pd.DataFrame) -> np.ndarray:
    """Give early / mid / late per row from the share of milestones met (else the CRM probability, else mid)."""
    count, shown = milestone_count(rows)
    if shown:
        share = count.to_numpy(dtype=float) / shown
        return np.select([share < 0.3, share >= 0.7], ["early", "late"], "mid").astype(object)
    crm = _numbers(rows, "crm_probability")
    return np.select([crm < 25, crm > 55], ["early", "late"], "mid").astype(object)


@dataclass(frozen=True)
class Economics:
    """A deal's money figures (NaN where the amount is missing) and what they were computed from."""

    amount: np.ndarray
    margin_pct: np.ndarray
    expected_margin: np.ndarray
    cost_ahead: np.ndarray
    expected_value: np.ndarray
    stage: np.ndarray
    days: np.ndarray
    per_day: float
    cap_share: float
    cost_capped: np.ndarray


def economics(rows: pd.DataFrame, probability: np.ndarray, cost: CostModel) -> Economics:
    """Give expected margin, cost still ahead and expected value per deal.

    Needs ``amount`` (NaN stays NaN); uses ``gross_margin_pct`` (else the cost model's default)
    and the milestone columns (else ``crm_probability``) for the stage.
    """
    amount = _numbers(rows, "amount")
    margin = _numbers(rows, "gross_margin_pct")
    margin = np.where(np.isnan(margin), cost.default_gross_margin_pct, margin)
    stage = deal_stage(rows)
    days = np.select(
        [stage == "early", stage == "late"],
        [cost.remaining_days.early, cost.remaining_days.late],
        cost.remaining_days.mid,
    )
    effort = days * cost.loaded_cost_per_day
    cap = cost.max_share_of_amount * amount
    capped = ~np.isnan(amount) & (cap < effort)
    cost_ahead = np.where(np.isnan(amount), np.nan, np.minimum(effort, cap))
    expected_margin = np.asarray(probability, dtype=float) * amount * margin / 100.0
    return Economics(
        amount=amount,
        margin_pct=margin,
        expected_margin=expected_margin,
        cost_ahead=cost_ahead,
        expected_value=expected_margin - cost_ahead,
        stage=stage,
        days=days,
        per_day=cost.loaded_cost_per_day,
        cap_share=cost.max_share_of_amount,
        cost_capped=capped,
    )


def expected_value(rows: pd.DataFrame, probability: np.ndarray, cost: CostModel) -> np.ndarray:
    """Give P(won) x amount x gross margin - the cost still ahead, per deal (NaN without an amount)."""
    return economics(rows, probability, cost).expected_value


def money(values: np.ndarray) -> np.ndarray:
    """Give amounts as text: 12,300 / −4,100 (rounded to hundreds; no currency: exports differ)."""
    rounded = np.round(np.asarray(values, dtype=float), -2) + 0.0
    uniques, inverse = np.unique(rounded, return_inverse=True)
    texts = np.array(
        [
            "?" if np.isnan(value) else f"{MINUS if value < 0 else ''}{abs(value):,.0f}"
            for value in uniques
        ],
        dtype=object,
    )
    return texts[inverse.reshape(-1)] if len(uniques) else np.array([], dtype=object)


def red_flag_matrix(rows: pd.DataFrame) -> np.ndarray:
    """Give the qualification table's red flags per row (n x len(RED_FLAGS), bool)."""
    flags: np.ndarray = qualification_flags(rows)[list(RED_FLAGS)].to_numpy(dtype=bool)
    return flags


@dataclass(frozen=True)
class Decisions:
    """The decision per deal: recommendation, the rule that decided and the reason naming its figures."""

    recommendation: pd.Series
    rule: pd.Series
    reason: pd.Series


def decide(
    rows: pd.DataFrame,
    probability: np.ndarray,
    band: np.ndarray,
    money_figures: Economics,
    next_milestone: pd.Series,
    next_uplift: pd.Series,
    rules: RecommendationRules,
    catalogue: Catalogue,
    amount_limit: float | None = None,
) -> Decisions:
    """Give each deal's recommendation by the decision table (module notes), its rule and its reason.

    ``band`` is the A-D band of each deal (a band-A deal is never declined); ``amount_limit`` the
    plausible-amount limit of the export (deals flagged in an ``amount_implausible`` column, or
    above the limit, are sent to check their amount).
    """
    n = len(rows)
    probability = np.asarray(probability, dtype=float)
    figures = money_figures
    flags = red_flag_matrix(rows)
    flag_count = flags.sum(axis=1)
    no_amount = np.isnan(figures.amount)
    flagged = (
        rows[AMOUNT_FLAG].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if AMOUNT_FLAG in rows
        else np.zeros(n, dtype=bool)
    )
    if amount_limit is not None:
        flagged |= ~no_amount & (figures.amount > amount_limit)
    band_a = np.asarray(band, dtype=object) == "A"
    negative = ~no_amount & (figures.expected_value < 0)
    many_flags = (
        flag_count >= rules.qualify_min_red_flags
        if rules.qualify_min_red_flags is not None
        else np.zeros(n, dtype=bool)
    )
    low = ~band_a & (probability < rules.decline_below_probability)
    above_line = ~negative & (figures.expected_margin >= rules.pursue_min_expected_margin)
    rules_in_order = [
        ("qualify.check_amount", flagged),
        ("decline.low_probability", no_amount & low),
        ("qualify.no_amount", no_amount),
        ("qualify.red_flags", many_flags),
        ("pursue.expected_margin", above_line & ~low),
        ("pursue.long_shot", above_line),
        ("decline.low_probability", low),
        ("decline.negative_value", ~band_a & negative),
        ("qualify.band_a_negative_value", band_a & negative),
    ]
    rule = np.select(
        [condition for _, condition in rules_in_order],
        [name for name, _ in rules_in_order],
        DECISION_RULES[-1],
    ).astype(object)
    recommendation = np.array([name.split(".")[0] for name in DECISION_RULES], dtype=object)[
        pd.Index(DECISION_RULES).get_indexer(pd.Index(rule))
    ]

    texts = catalogue.decision
    flag_names = np.array([catalogue.red_flags[name] for name in RED_FLAGS], dtype=object)
    flag_list = np.full(n, "", dtype=object)
    for position, name in enumerate(flag_names):
        has = flags[:, position]
        flag_list[has] = np.where(flag_list[has] == "", name, flag_list[has] + ", " + name)
    count_text = np.array(
        [f"{k} red flag{'s' if k != 1 else ''}" for k in range(len(RED_FLAGS) + 1)], dtype=object
    )
    # Decimals near the floor only where the sentence names the floor beside the probability.
    apart, floor = _percents_apart(probability, rules.decline_below_probability)
    whole = _percent(probability)
    values = {
        "floor": floor,
        "amount": money(figures.amount),
        "margin": np.array([f"{v:.0f}%" for v in figures.margin_pct], dtype=object),
        "expected_margin": money(figures.expected_margin),
        "expected_value": money(figures.expected_value),
        "cost": money(figures.cost_ahead),
        "cost_detail": _cost_detail(figures, catalogue),
        "line": money(np.full(n, rules.pursue_min_expected_margin)),
        "limit": money(np.full(n, np.nan if amount_limit is None else amount_limit)),
        "flags": count_text[flag_count],
        "flag_list": flag_list,
    }
    reason = np.full(n, "", dtype=object)
    for name in DECISION_RULES:
        mask = rule == name
        if mask.any():
            shown = {**values, "probability": apart if "{floor}" in texts[name] else whole}
            reason[mask] = fill(texts[name], **{key: value[mask] for key, value in shown.items()})
    # What the conversation must resolve, and the milestone that would help most.
    resolve = (flag_count > 0) & np.isin(
        rule,
        ["pursue.expected_margin", "qualify.below_pursue_line", "qualify.band_a_negative_value"],
    )
    reason[resolve] = reason[resolve] + fill(texts["resolve"], flag_list=flag_list[resolve])
    milestone_text = _milestone_text(next_milestone, next_uplift, catalogue)
    add_next = (milestone_text != "") & (recommendation == "qualify")
    reason[add_next] = reason[add_next] + "; " + milestone_text[add_next]
    return Decisions(
        recommendation=pd.Series(recommendation, index=rows.index, dtype="object"),
        rule=pd.Series(rule, index=rows.index, dtype="object"),
        reason=pd.Series(reason, index=rows.index, dtype="object"),
    )


def _cost_detail(figures: Economics, catalogue: Catalogue) -> np.ndarray:
    n = len(figures.stage)
    values = {
        "stage": figures.stage,
        "days": np.array([f"{d:g}" for d in figures.days], dtype=object),
        "per_day": money(np.full(n, figures.per_day)),
        "cap_share": np.full(n, f"{figures.cap_share:.0%}", dtype=object),
    }
    return np.where(
        figures.cost_capped,
        fill(catalogue.decision["cost_capped"], **values),
        fill(catalogue.decision["cost_effort"], **values),
    ).astype(object)


def _percent(probability: np.ndarray) -> np.ndarray:
    whole = np.clip(np.round(np.asarray(probability, dtype=float) * 100), 0, 100).astype(int)
    # Never "0%" or "100%": a sales leader reads them as certain.
    labels = np.array(["under 1%", *[f"{n}%" for n in range(1, 100)], "over 99%"], dtype=object)
    texts: np.ndarray = labels[whole]
    return texts


def _percents_apart(probability: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Give the probabilities and the floor as percentages, with decimals where whole ones would tie.

    "7% win chance is below the 7% floor" reads as a broken rule: a probability that rounds
    to the floor's whole percent but is not the floor is shown, beside the floor, with the
    decimals that tell them apart (6.7% and 7.0%).
    """
    probability = np.asarray(probability, dtype=float)
    percent, floor_text = _percent(probability), _percent(np.full(len(probability), floor))
    tied = (percent == floor_text) & (probability != floor)
    for row in np.flatnonzero(tied):
        for decimals in range(1, 7):
            shown = f"{100 * probability[row]:.{decimals}f}%"
            floor_shown = f"{100 * floor:.{decimals}f}%"
            if shown != floor_shown:
                percent[row], floor_text[row] = shown, floor_shown
                break
    return percent, floor_text


def _milestone_text(
    next_milestone: pd.Series, next_uplift: pd.Series, catalogue: Catalogue
) -> np.ndarray:
    keys = next_milestone.to_numpy(dtype=object)
    labels = milestone_labels(next_milestone, catalogue) if len(keys) else keys
    uplift = (
        np.array([f"+{n:.1f} pts" for n in next_uplift.to_numpy(dtype=float)], dtype=object)
        if len(keys)
        else keys
    )
    text = fill(catalogue.decision["next_milestone"], milestone=labels, uplift=uplift)
    return np.where(keys != "", text, "")


def pipeline_shares(scored: pd.DataFrame) -> pd.DataFrame:
    """Give per recommendation the deals and amount, and their shares of the pipeline's count and value."""
    amount = pd.to_numeric(scored["amount"], errors="coerce") if "amount" in scored else None
    frame = pd.DataFrame(
        {
            "recommendation": scored["recommendation"].to_numpy(),
            "amount": np.zeros(len(scored)) if amount is None else amount.fillna(0.0).to_numpy(),
        }
    )
    table = (
        frame.groupby("recommendation")
        .agg(deals=("amount", "size"), amount=("amount", "sum"))
        .reindex(["pursue", "qualify", "decline"], fill_value=0)
    )
    table["deal_share"] = table["deals"] / max(len(frame), 1)
    total = float(table["amount"].sum())
    table["value_share"] = table["amount"] / total if total > 0 else 0.0
    return table.reset_index()


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
