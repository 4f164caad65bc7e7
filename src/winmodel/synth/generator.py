"""Give a synthetic CRM history whose outcomes follow a known, documented truth.

The history is the embedded demo data (``winmodel generate``, ``make train`` on a
fresh machine) and the yardstick downstream checks are measured against: a
RevOps person should recognise the deals, and the truth behind the outcomes is
exact, so a model's skill can be compared with the best possible (the oracle).

What is generated
-----------------
* ``opportunities``: one row per deal with the canonical static columns of
  :data:`winmodel.data.contract.OPPORTUNITIES` (segment, problem, trigger,
  competition, champion, qualification, economics) plus three CRM columns that
  are *final state* and leak the outcome: ``stage`` (closed_won / closed_lost, or
  the current stage of an open deal), ``crm_probability`` (100 / 0 on closed
  deals) and ``forecast_category`` (an extra column: closed / omitted, or
  pipeline / best_case / commit on open deals).
* ``snapshots``: the state of every deal on a weekly snapshot calendar (every
  7 days back from ``today``) while it is open: CRM stage and default
  probability, amount, expected close date, the progress milestones, champion
  engagement and cumulative activity. Closed deals also carry one *leakage trap*
  row exactly on their close date (stage closed_won / closed_lost, probability
  100 / 0, every milestone met on won deals). No snapshot exists after a close.
* ``truth``: for evaluation only. ``opportunity_id``, ``status``,
  ``true_probability`` (the probability the outcome was drawn from; for open
  deals, as of their latest snapshot), ``last_snapshot_date`` (the state it was
  computed on), ``is_open``, ``true_logit`` and its components ``logit_main``,
  ``logit_interaction``, ``logit_progress``, ``logit_drift``.
* ``truth_timing``: for evaluation only. Per deal open at ``today`` and calendar
  month (``month_offset`` 0 = today's month ... 5, or ``timing_months - 1``):
  ``p_won_by_end`` and ``p_lost_by_end``, the true chances of being won (lost)
  by the month's end.

How a deal lives
----------------
Deals are created over ``months`` months up to ``today`` with mild growth.
Week by week (a loop over weeks, numpy over deals) each open deal progresses:
milestones are met in a rough natural order at a speed set by a latent
*momentum* (drawn from the static attributes plus noise); milestones never
revert; the share of the buying group identified grows and saturates; champion
engagement deepens or fades. Activity (calls, emails, meetings) accumulates
from the owner's habits and the deal's age, and is chased harder on stalled
deals: it is loud and carries no weight in the truth. The CRM's expected close
date starts optimistic and is pushed by 2-6 weeks each time it passes (further
on big and heavily customised deals, less on urgent ones).

A decision is *scheduled* with a weekly hazard that rises steeply with progress
(advanced deals decide soon) plus, for stalled deals, with age (closed out,
mostly at quarter-end cleanups). Once scheduled, the close date is fixed a
few days (cleanups) to three weeks (decisions) ahead, often on a quarter end,
and the CRM shows it as the expected close date from then on. The outcome is then drawn once, from the state at the last weekly
snapshot strictly before the close date::

    won ~ Bernoulli(sigmoid(true_win_logit(static, state at last pre-close snapshot)))

Nothing else depends on the outcome (the close date, every snapshot before it,
the amount and the static attributes are fixed before the draw), except the
trap rows on the close date and the final stage, probability and forecast
category. So the outcome is conditionally independent of all the data given
``true_probability``. Deals whose close date falls after ``today`` are open.

Timing depends on deal traits, never on the outcome: big deals (amount >=
150,000) and extensive customisation decide slowly and sign later, urgent
deals and expansions or renewals decide fast, private-equity owners slow
procurement, and some deals arrive *ready to buy* (problem, criteria, budget
and timeline settled) and often close inside the month they were opened.
With 20,000 deals (seed 7): 10 % of won deals are created and won in the same
month (6 % of bookings), 19 % are pulled in before the month the CRM first
expected, 52 % slip past it (median slip 44 days on big deals, 10 on others).
``truth_timing`` continues every deal open at ``today`` 200 times with the
same weekly rules (its own random stream) to give its true P(won) and P(lost)
by the end of each of the next six calendar months (``timing_months=24``: long
enough that nearly every open deal resolves, for its chance of being won
eventually).

The truth (:func:`true_win_logit`)
----------------------------------
``logit = intercept + main effects + interactions + progress + drift``, with
intercept -3.1 (closed win rate about 37 %). Effects are few and large so a
tree model can learn them from ~15,000 closed deals; several main effects
*cross* their interaction (the combination flips the sign), so a linear model
on one-hot columns cannot reproduce them.

main effects (static opportunity columns)
    deal_type legacy_replacement +0.2, greenfield -0.2; urgency none -0.3,
    high +0.1; trigger_event legacy_end_of_life / new_executive / regulation
    +0.3, none -0.3; competitive_position strength +0.5, parity 0, weakness
    -0.5; champion_role none -0.6, c_level -0.5 (a title without authority);
    buying_process_defined False ("just exploring") -0.5; problem_quantified
    +0.25; customization_required extensive -0.3; custom_dev_required -0.1;
    pe_backed -0.5; primary_pain cost -0.7 (price shoppers);
    primary_competitor Contoso +0.5 (beatable when we have an edge).
interactions (invisible to a linear model on one-hot columns)
    legacy_replacement x urgency high +1.8; greenfield x urgency none -1.8;
    pe_backed x primary_pain cost +2.4 (margin pressure makes the cost case);
    executive_sponsor x champion_role c_level +2.2 / vp +1.2;
    competitive_position parity x primary_competitor Contoso -2.0 (Contoso
    wins ties); customization_required extensive x custom_dev_required -2.0;
    big (amount >= 150,000) x heavy discount (discount_pct > 25) x custom work
    (any customisation or custom dev) -2.0: a threshold, beyond what the
    amount says.
progress (the snapshot state)
    milestones met: problem_confirmed +0.4, budget_confirmed +0.5,
    exec_support_signalled +0.4, value_metric_agreed +0.2,
    evaluation_criteria_defined / timeline_confirmed / economic_buyer_aware /
    business_case_built +0.1 each, and business_case_built x
    economic_buyer_aware +1.1; stakeholders_identified ``1 - exp(-5 s)``
    (saturating); champion_engagement none -0.5, passive -0.2, responsive 0,
    active +0.3, coaching +0.6. Activity counts (calls, emails, meetings) have
    zero weight.
drift
    primary_competitor Contoso -0.5 when the snapshot date lies within the last
    6 months before ``today`` (Contoso got stronger).

With 20,000 deals (seed 7) the oracle AUC on closed deals is about 0.89; a
default LightGBM on the last pre-close snapshot reaches about 90 % of the
oracle's Brier skill on the newest four months (87-93 % over six seeds), a
one-hot logistic regression about 82 %.

:data:`PLANTED_PATTERNS` lists the static combinations whose win rates the
interaction terms move, for tools that should find them (``winmodel profile``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from winmodel.data.contract import OPPORTUNITIES, SNAPSHOTS, TableSpec

log = logging.getLogger("winmodel")

#: The last day of the default history: fixed so the same seed gives the same data.
DEFAULT_TODAY = date(2026, 10, 31)

#: Bumped whenever generated data changes shape or truth; written beside generated data so a
#: project's demo folder written by an older winmodel is regenerated rather than misread.
GENERATOR_VERSION = 3

#: Months after today's month the timing truth covers (month 0 is today's month).
TIMING_MONTHS = 6

#: Continuations simulated per open deal for the timing truth.
TIMING_REPLICATES = 200


#: Months before ``today`` in which Contoso is stronger (the drift term).
DRIFT_MONTHS = 6


@dataclass(frozen=True)
class SyntheticHistory:
    """A generated CRM history: the two canonical tables and the hidden truth.

    ``truth`` is for evaluation only (oracle scores, checks); training never reads it.
    """

    opportunities: pd.DataFrame
    snapshots: pd.DataFrame
    truth: pd.DataFrame
    #: With ``mutable="final_state"``: the snapshots with the mutable fields as they stood on each
    #: date (what an honest export would hold); the exported ``snapshots`` lack them. None otherwise.
    honest_snapshots: pd.DataFrame | None = None
    #: The timing truth of the deals open at ``today``: one row per deal and calendar month
    #: (``month`` "YYYY-MM", ``month_offset`` 0 for today's month ... 5) with ``p_won_by_end`` and
    #: ``p_lost_by_end``, the true chances that the deal is won (lost) by the month's last day.
    truth_timing: pd.DataFrame | None = None


@dataclass(frozen=True)
class PlantedPattern:
    """A combination of static opportunity values whose win rate an interaction term moves."""

    conditions: tuple[tuple[str, object], ...]
    direction: Literal["win", "loss"]
    description: str


PLANTED_PATTERNS: tuple[PlantedPattern, ...] = (
    PlantedPattern(
        (("deal_type", "legacy_replacement"), ("urgency", "high")),
        "win",
        "Replacing a legacy system that hurts now: the sweet spot.",
    ),
    PlantedPattern(
        (("pe_backed", True), ("primary_pain", "cost")),
        "win",
        "Private-equity owners under margin pressure buy a cost case.",
    ),
    PlantedPattern(
        (("champion_role", "c_level"), ("executive_sponsor", True)),
        "win",
        "A C-level champion who is also the sponsor with budget authority.",
    ),
    PlantedPattern(
        (("deal_type", "greenfield"), ("urgency", "none")),
        "loss",
        "A new initiative with no time pressure: nice to have, rarely bought.",
    ),
    PlantedPattern(
        (("competitive_position", "parity"), ("primary_competitor", "Contoso")),
        "loss",
        "Head to head with Contoso without an edge: Contoso wins the tie.",
    ),
    PlantedPattern(
        (("customization_required", "extensive"), ("custom_dev_required", True)),
        "loss",
        "Heavy customisation on top of custom development: poor fit, stalls.",
    ),
)

# --------------------------------------------------------------------------- value sets

INDUSTRIES = (
    "software",
    "financial_services",
    "healthcare",
    "manufacturing",
    "retail",
    "public_sector",
    "logistics",
)
REGIONS = ("north_america", "emea", "apac", "latam")
GROWTH_STAGES = ("startup", "scaleup", "mature")
PAINS = ("legacy_not_scaling", "cost", "compliance", "growth", "integration")
DEAL_TYPES = ("legacy_replacement", "greenfield", "expansion", "renewal")
URGENCIES = ("none", "low", "high")
TRIGGERS = ("none", "new_executive", "funding", "m_and_a", "regulation", "legacy_end_of_life")
COMPETITORS = ("none", "Contoso", "Fabrikam", "Northwind", "Globex")
POSITIONS = ("strength", "parity", "weakness")
CHAMPION_ROLES = ("none", "manager", "director", "vp", "c_level")
CUSTOMIZATIONS = ("none", "moderate", "extensive")
EXPANSION_LEVELS = ("low", "medium", "high")
STRATEGIC_VALUES = ("none", "reference", "displacement", "new_segment")
ENGAGEMENTS = ("none", "passive", "responsive", "active", "coaching")
OPEN_STAGES = ("qualification", "discovery", "evaluation", "proposal", "negotiation")
STAGE_PROBABILITY = (10.0, 20.0, 40.0, 60.0, 80.0)
FORECAST_BY_STAGE = ("pipeline", "pipeline", "best_case", "best_case", "commit")

#: Boolean milestones in their natural order (stakeholders share and engagement are apart).
BOOL_MILESTONES = (
    "problem_confirmed",
    "evaluation_criteria_defined",
    "budget_confirmed",
    "timeline_confirmed",
    "economic_buyer_aware",
    "exec_support_signalled",
    "business_case_built",
    "value_metric_agreed",
)

# --------------------------------------------------------------------------- the truth
# Log-odds terms, documented in the module docstring. Changing one changes the demo data
# and the figures quoted there (oracle AUC, share of oracle skill): re-measure them.

INTERCEPT = -3.1
DEAL_TYPE_EFFECT = {"legacy_replacement": 0.2, "greenfield": -0.2, "expansion": 0.0, "renewal": 0.0}
URGENCY_EFFECT = {"none": -0.3, "low": 0.0, "high": 0.1}
TRIGGER_EFFECT = {
    "none": -0.3,
    "new_executive": 0.3,
    "funding": 0.0,
    "m_and_a": 0.0,
    "regulation": 0.3,
    "legacy_end_of_life": 0.3,
}
POSITION_EFFECT = {"strength": 0.5, "parity": 0.0, "weakness": -0.5}
CHAMPION_EFFECT = {"none": -0.6, "manager": 0.0, "director": 0.0, "vp": 0.0, "c_level": -0.5}
CUSTOMIZATION_EFFECT = {"none": 0.0, "moderate": 0.0, "extensive": -0.3}
SPONSOR_BY_CHAMPION = {"vp": 1.2, "c_level": 2.2}
PAIN_EFFECT = {
    "legacy_not_scaling": 0.0,
    "cost": -0.7,
    "compliance": 0.0,
    "growth": 0.0,
    "integration": 0.0,
}
COMPETITOR_EFFECT = {"none": 0.0, "Contoso": 0.5, "Fabrikam": 0.0, "Northwind": 0.0, "Globex": 0.0}
PE_BACKED_EFFECT = -0.5
EXPLORING_EFFECT = -0.5
PROBLEM_QUANTIFIED_EFFECT = 0.25
CUSTOM_DEV_EFFECT = -0.1
LEGACY_URGENT_EFFECT = 1.8
GREENFIELD_NO_URGENCY_EFFECT = -1.8
PE_COST_EFFECT = 2.4
PARITY_CONTOSO_EFFECT = -2.0
EXTENSIVE_CUSTOM_DEV_EFFECT = -2.0
BIG_DISCOUNTED_CUSTOM_EFFECT = -2.0
BIG_DEAL_AMOUNT = 150_000.0
HEAVY_DISCOUNT_PCT = 25.0
MILESTONE_EFFECT = {
    "problem_confirmed": 0.4,
    "evaluation_criteria_defined": 0.1,
    "budget_confirmed": 0.5,
    "timeline_confirmed": 0.1,
    "economic_buyer_aware": 0.1,
    "exec_support_signalled": 0.4,
    "business_case_built": 0.1,
    "value_metric_agreed": 0.2,
}
BUSINESS_CASE_BUYER_EFFECT = 1.1
STAKEHOLDERS_EFFECT = 1.0
ENGAGEMENT_EFFECT = (-0.5, -0.2, 0.0, 0.3, 0.6)
CONTOSO_DRIFT_EFFECT = -0.5


def true_win_logit(
    static: pd.DataFrame, state: pd.DataFrame, *, today: date | None = None
) -> np.ndarray:
    """Give the log-odds of winning each deal: the hidden truth of the synthetic history.

    See the module docstring for every term. Row ``i`` of ``state`` is the state
    of the deal in row ``i`` of ``static``.

    Parameters
    ----------
    static
        One row per deal with deal_type, urgency, trigger_event,
        competitive_position, primary_competitor, champion_role,
        executive_sponsor, buying_process_defined, problem_quantified,
        customization_required, custom_dev_required, pe_backed, primary_pain,
        amount and discount_pct.
    state
        One snapshot row per deal, aligned with ``static``: snapshot_date, the
        boolean milestones, stakeholders_identified and champion_engagement.
        Activity columns are ignored (they carry no truth).
    today
        The last day of the history, which places the Contoso drift window;
        default :data:`DEFAULT_TODAY`.

    Returns
    -------
    numpy.ndarray
        float64 log-odds, one per row.
    """
    components = true_logit_components(static, state, today=today)
    return components.sum(axis=1).to_numpy(dtype=float)


def true_logit_components(
    static: pd.DataFrame, state: pd.DataFrame, *, today: date | None = None
) -> pd.DataFrame:
    """Give the truth's log-odds split into main, interaction, progress and drift parts.

    Same inputs as :func:`true_win_logit`; the columns ``logit_main``,
    ``logit_interaction``, ``logit_progress`` and ``logit_drift`` sum to it.
    """
    if len(static) != len(state):
        raise ValueError(f"static has {len(static)} rows but state has {len(state)}; align them")
    if "opportunity_id" in static and "opportunity_id" in state:
        same = static["opportunity_id"].to_numpy(dtype=object) == state["opportunity_id"].to_numpy(
            dtype=object
        )
        if not same.all():
            raise ValueError("static and state are not aligned on opportunity_id")
    main, interaction = _static_logit(static)
    engagement = _codes(state["champion_engagement"], ENGAGEMENTS)
    progress = _progress_logit(
        {name: _flags(state[name]) for name in BOOL_MILESTONES},
        state["stakeholders_identified"].to_numpy(dtype=float, na_value=0.0),
        engagement,
    )
    snapshot_days = _days(state["snapshot_date"])
    drift = _drift_logit(
        static["primary_competitor"].to_numpy(dtype=object) == "Contoso",
        snapshot_days,
        _drift_start_day(today or DEFAULT_TODAY),
    )
    return pd.DataFrame(
        {
            "logit_main": main,
            "logit_interaction": interaction,
            "logit_progress": progress,
            "logit_drift": drift,
        },
        index=static.index,
    )


def _static_logit(static: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Give the main-effect and interaction log-odds of the static attributes."""

    def values(name: str) -> np.ndarray:
        return static[name].to_numpy(dtype=object)

    def effect(name: str, table: Mapping[str, float]) -> np.ndarray:
        return static[name].map(table).to_numpy(dtype=float, na_value=0.0)

    deal_type, urgency = values("deal_type"), values("urgency")
    champion, customization = values("champion_role"), values("customization_required")
    custom_dev = _flags(static["custom_dev_required"])
    main = (
        INTERCEPT
        + effect("deal_type", DEAL_TYPE_EFFECT)
        + effect("urgency", URGENCY_EFFECT)
        + effect("trigger_event", TRIGGER_EFFECT)
        + effect("competitive_position", POSITION_EFFECT)
        + effect("champion_role", CHAMPION_EFFECT)
        + effect("customization_required", CUSTOMIZATION_EFFECT)
        + effect("primary_pain", PAIN_EFFECT)
        + effect("primary_competitor", COMPETITOR_EFFECT)
        + EXPLORING_EFFECT * ~_flags(static["buying_process_defined"], missing=True)
        + PROBLEM_QUANTIFIED_EFFECT * _flags(static["problem_quantified"])
        + PE_BACKED_EFFECT * _flags(static["pe_backed"])
        + CUSTOM_DEV_EFFECT * custom_dev
    )
    sponsor = _flags(static["executive_sponsor"])
    big_discounted_custom = (
        (static["amount"].to_numpy(dtype=float, na_value=0.0) >= BIG_DEAL_AMOUNT)
        & (static["discount_pct"].to_numpy(dtype=float, na_value=0.0) > HEAVY_DISCOUNT_PCT)
        & ((customization != "none") | custom_dev)
    )
    interaction = (
        LEGACY_URGENT_EFFECT * ((deal_type == "legacy_replacement") & (urgency == "high"))
        + GREENFIELD_NO_URGENCY_EFFECT * ((deal_type == "greenfield") & (urgency == "none"))
        + PE_COST_EFFECT * (_flags(static["pe_backed"]) & (values("primary_pain") == "cost"))
        + sponsor * pd.Series(champion).map(SPONSOR_BY_CHAMPION).to_numpy(dtype=float, na_value=0.0)
        + PARITY_CONTOSO_EFFECT
        * (
            (values("competitive_position") == "parity")
            & (values("primary_competitor") == "Contoso")
        )
        + EXTENSIVE_CUSTOM_DEV_EFFECT * ((customization == "extensive") & custom_dev)
        + BIG_DISCOUNTED_CUSTOM_EFFECT * big_discounted_custom
    )
    return np.asarray(main, dtype=float), np.asarray(interaction, dtype=float)


def _progress_logit(
    milestones: Mapping[str, np.ndarray], stakeholders: np.ndarray, engagement: np.ndarray
) -> np.ndarray:
    """Give the log-odds of a deal's progress: milestones met, buying group, champion depth."""
    logit: np.ndarray = STAKEHOLDERS_EFFECT * (1.0 - np.exp(-5.0 * np.clip(stakeholders, 0.0, 1.0)))
    for name, weight in MILESTONE_EFFECT.items():
        logit = logit + weight * milestones[name]
    logit = logit + BUSINESS_CASE_BUYER_EFFECT * (
        milestones["business_case_built"] & milestones["economic_buyer_aware"]
    )
    logit = logit + np.asarray(ENGAGEMENT_EFFECT)[engagement]
    return logit


def _drift_logit(is_contoso: np.ndarray, snapshot_days: np.ndarray, drift_start: int) -> np.ndarray:
    """Give the drift log-odds: Contoso is stronger on snapshots inside the drift window."""
    return np.where(is_contoso & (snapshot_days >= drift_start), CONTOSO_DRIFT_EFFECT, 0.0)


def _drift_start_day(today: date) -> int:
    """Give the first day (days since 1970) of the drift window ending on ``today``."""
    start = pd.Timestamp(today) - pd.DateOffset(months=DRIFT_MONTHS)
    return int(np.datetime64(start.date(), "D").astype(np.int64))


def _flags(column: pd.Series, missing: bool = False) -> np.ndarray:
    """Give a boolean column as a numpy bool array, missing values as ``missing``."""
    return column.astype("boolean").fillna(missing).to_numpy(dtype=bool)


def _codes(column: pd.Series, values: tuple[str, ...]) -> np.ndarray:
    """Give the position of each value in ``values`` (unknown or missing -> 0)."""
    lookup = {value: code for code, value in enumerate(values)}
    return column.map(lookup).to_numpy(dtype=float, na_value=0.0).astype(np.int64)


def _days(column: pd.Series) -> np.ndarray:
    """Give dates as whole days since 1970-01-01."""
    days: np.ndarray = pd.to_datetime(column).to_numpy(dtype="datetime64[D]").astype(np.int64)
    return days


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    """Give probabilities from log-odds."""
    probability: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return probability


# --------------------------------------------------------------------------- generation


#: Opportunity columns that may change during a deal and that snapshots can carry (the generator's
#: static draw holds them; amount and the close date have snapshot values of their own).
MUTABLE_STATIC = tuple(
    name
    for name in SNAPSHOTS.names()
    if name in OPPORTUNITIES
    and OPPORTUNITIES[name].mutable
    and name not in ("amount", "close_date", "stage", "crm_probability")
    and OPPORTUNITIES[name].group not in ("progress", "activity", "crm")
)


def generate_history(
    n_deals: int = 20_000,
    *,
    seed: int = 7,
    months: int = 36,
    today: date | None = None,
    mutable: Literal["static", "final_state"] = "static",
    timing_replicates: int = TIMING_REPLICATES,
    timing_months: int = TIMING_MONTHS,
) -> SyntheticHistory:
    """Give a synthetic CRM history of ``n_deals`` deals created over ``months`` months.

    Parameters
    ----------
    n_deals
        Number of deals (opportunities).
    seed
        Seed of the only random generator used; the same arguments give identical frames.
    months
        Months of history before ``today``.
    today
        The last day of the history (the last snapshot date); default :data:`DEFAULT_TODAY`.
    mutable
        ``"static"``: the mutable opportunity fields (sponsor, position, champion role,
        discount ...) keep their value all along and every snapshot carries it.
        ``"final_state"``: five of them change during the deal (a sponsor confirmed, a process
        defined, a champion found, the position against the competition learned, the discount
        negotiated up) and reps rewrite some at close to match the outcome; the opportunities
        table holds their final values and the snapshots do not carry those five (they carry
        the fields that keep their value; :attr:`SyntheticHistory.honest_snapshots` carries all,
        as they stood on each date). The outcomes are the same in both modes.
    timing_replicates
        Forward continuations per open deal behind ``truth_timing`` (0: no timing truth).
    timing_months
        Calendar months ``truth_timing`` covers (``month_offset`` 0 .. ``timing_months - 1``).
        Longer continuations only add weeks after the default ones: the months both cover get
        the same values, and every other table is unchanged. With 24 months nearly every open
        deal resolves, so the last month's ``p_won_by_end`` is the deal's chance of being won
        eventually (``benchmarks/demo_oracle.py``).

    Returns
    -------
    SyntheticHistory
        ``opportunities``, ``snapshots`` (canonical columns and dtypes) and ``truth``.
    """
    if n_deals < 1:
        raise ValueError(f"n_deals must be at least 1, got {n_deals}")
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    if timing_months < 1:
        raise ValueError(f"timing_months must be at least 1, got {timing_months}")
    today = today or DEFAULT_TODAY
    rng = np.random.default_rng(seed)
    today_day = int(np.datetime64(today, "D").astype(np.int64))
    start_day = int(
        np.datetime64((pd.Timestamp(today) - pd.DateOffset(months=months)).date(), "D").astype(
            np.int64
        )
    )

    static = _draw_static(rng, n_deals, start_day, today_day)
    static_main, static_interaction = _static_logit(static)
    simulation = _simulate(
        rng, static, static_main + static_interaction, start_day, today_day, _drift_start_day(today)
    )
    history = _assemble(
        static, simulation, static_main, static_interaction, today_day, _drift_start_day(today)
    )
    history = replace(
        history,
        truth_timing=_timing_truth(
            simulation,
            static["opportunity_id"].to_numpy(dtype=object),
            today_day,
            seed,
            timing_replicates,
            timing_months,
        ),
    )
    if mutable == "final_state":
        return _final_state(history, static, np.random.default_rng([seed, 1]))
    return _with_static_state(history, static)


def _static_values(snapshots: pd.DataFrame, static: pd.DataFrame) -> dict[str, np.ndarray]:
    """Give each snapshot row's deal's static value of every mutable field."""
    position = pd.Index(static["opportunity_id"]).get_indexer(snapshots["opportunity_id"])
    return {name: static[name].to_numpy()[position] for name in MUTABLE_STATIC if name in static}


def _with_static_state(history: SyntheticHistory, static: pd.DataFrame) -> SyntheticHistory:
    """Give the history whose snapshots carry the mutable fields (constant over each deal's life)."""
    snapshots = history.snapshots.assign(**_static_values(history.snapshots, static))
    return replace(history, snapshots=_canonical(snapshots, SNAPSHOTS))


def _final_state(
    history: SyntheticHistory, static: pd.DataFrame, rng: np.random.Generator
) -> SyntheticHistory:
    """Give the history of the ``final_state`` mode (see :func:`generate_history`).

    The value that decided the outcome (the static draw, at the deciding snapshot) is reached
    during the deal: a sponsor or a defined process is confirmed, a senior champion found, at a
    random point between 20 % and 80 % of the life before the last snapshot, and the position
    against the competition between 30 % and 90 %; before it the deal showed no sponsor, no defined
    process, a manager as champion, parity. The discount is quoted at 60 % of its final level and
    negotiated up linearly. At close, reps rewrite fields to match the
    outcome on 70 % of closed deals: won -> sponsor confirmed, strong position, process defined;
    lost -> weak position, no sponsor.
    """
    opportunities, snapshots = history.opportunities, history.snapshots
    ids = static["opportunity_id"].to_numpy()
    n = len(ids)
    position = pd.Index(ids).get_indexer(snapshots["opportunity_id"])
    day = snapshots["snapshot_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    created = static["created_day"].to_numpy(dtype=np.int64)
    close = opportunities.set_index("opportunity_id").loc[ids, "close_date"]
    last = close.to_numpy(dtype="datetime64[D]").astype(np.int64) - 1
    life = np.maximum(last - created, 1)
    honest = _static_values(snapshots, static)

    def reached_at(fraction_low: float, fraction_high: float) -> np.ndarray:
        moment: np.ndarray = created + np.round(
            rng.uniform(fraction_low, fraction_high, n) * life
        ).astype(np.int64)
        return moment

    before = {}
    for name, early in (("executive_sponsor", False), ("buying_process_defined", False)):
        decided = static[name].to_numpy(dtype=bool)
        moment = reached_at(0.2, 0.8)
        not_yet = decided[position] & (day < moment[position])
        values = honest[name].astype(object)
        values[not_yet] = early
        before[name] = values
    # The position against the competition is learned during the evaluation: parity until then.
    decided_position = static["competitive_position"].to_numpy(dtype=object)
    moment = reached_at(0.3, 0.9)
    values = honest["competitive_position"].astype(object)
    values[(decided_position[position] != "parity") & (day < moment[position])] = "parity"
    before["competitive_position"] = values
    role = static["champion_role"].to_numpy(dtype=object)
    senior = np.isin(role, ["director", "vp", "c_level"])
    moment = reached_at(0.2, 0.8)
    values = honest["champion_role"].astype(object)
    values[senior[position] & (day < moment[position])] = "manager"
    before["champion_role"] = values
    discount = static["discount_pct"].to_numpy(dtype=float)
    progress = np.clip((day - created[position]) / life[position], 0.0, 1.0)
    before["discount_pct"] = np.round(discount[position] * (0.6 + 0.4 * progress), 1)
    honest.update(before)
    honest_snapshots = _canonical(snapshots.assign(**honest), SNAPSHOTS)

    # The opportunities table: today's value of an open deal, the value rewritten at close otherwise.
    latest = honest_snapshots.sort_values("snapshot_date").groupby("opportunity_id").tail(1)
    latest = latest[latest["snapshot_date"] < close.reindex(latest["opportunity_id"]).to_numpy()]
    current = latest.set_index("opportunity_id").reindex(ids)
    final = {name: static[name].to_numpy(dtype=object).copy() for name in before}
    status = opportunities.set_index("opportunity_id").loc[ids, "status"].to_numpy(dtype=object)
    is_open = status == "open"
    for name in before:
        today = current[name].to_numpy(dtype=object)
        final[name] = np.where(is_open & pd.notna(today), today, final[name])
    rewrite = (status != "open") & (rng.random(n) < 0.7)
    won, lost = rewrite & (status == "won"), rewrite & (status == "lost")
    final["executive_sponsor"] = np.where(
        won, True, np.where(lost, False, final["executive_sponsor"])
    )
    final["buying_process_defined"] = np.where(won, True, final["buying_process_defined"])
    final["competitive_position"] = np.where(
        won, "strength", np.where(lost, "weakness", final["competitive_position"])
    )
    updated = static.set_index("opportunity_id").assign(**final)
    columns = list(before)
    exported = opportunities.set_index("opportunity_id")
    exported = exported.assign(
        **{name: updated.loc[exported.index, name].to_numpy() for name in columns}
    )
    exported = _canonical(exported.reset_index(), OPPORTUNITIES).assign(
        forecast_category=opportunities["forecast_category"].to_numpy()
    )
    return replace(
        history,
        opportunities=exported,
        # The snapshots carry every field that keeps its value, not the ones that change.
        snapshots=honest_snapshots.drop(columns=list(before)),
        honest_snapshots=honest_snapshots,
    )


def field_history_of(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Give the contract's long field history that replays into ``snapshots`` (weekly, as of their dates).

    For every deal and field: one row on the deal's first snapshot date setting its first value
    (no old value, as HubSpot logs a value set at creation), then one row on each snapshot date
    whose value differs from the previous snapshot's (old and new values). Values are text as a CRM
    exports them; the trap rows on close dates are not part of any history.
    """
    regular = snapshots.sort_values(["opportunity_id", "snapshot_date"], kind="stable")
    regular = (
        regular[~regular["stage"].isin(["closed_won", "closed_lost"])]
        if "stage" in regular
        else regular
    )
    deal = regular["opportunity_id"].to_numpy()
    first = np.r_[True, deal[1:] != deal[:-1]]
    parts = []
    for name in regular.columns:
        if name in ("opportunity_id", "snapshot_date"):
            continue
        text = _as_export_text(regular[name])
        previous = np.r_[[None], text[:-1]]
        previous = np.where(first, None, previous)
        changed = first | (text != previous)
        parts.append(
            pd.DataFrame(
                {
                    "opportunity_id": deal[changed],
                    "field": name,
                    "old_value": previous[changed],
                    "new_value": text[changed],
                    "changed_at": regular["snapshot_date"].to_numpy()[changed],
                }
            )
        )
    history = pd.concat(parts, ignore_index=True)
    return history.sort_values(["opportunity_id", "changed_at"], kind="stable").reset_index(
        drop=True
    )


def _as_export_text(values: pd.Series) -> np.ndarray:
    """Give a column's values as the text a CRM export writes (None for blanks; floats exact)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    elif pd.api.types.is_float_dtype(values.dtype):
        text = np.array([repr(float(v)) for v in values.to_numpy()], dtype=object)
    elif isinstance(values.dtype, pd.BooleanDtype):
        text = values.astype(object).map({True: "true", False: "false"}).to_numpy(dtype=object)
    else:
        text = values.astype(object).to_numpy(dtype=object)
    text = np.array(text, dtype=object, copy=True)
    text[values.isna().to_numpy()] = None
    return text


def _choose(rng: np.random.Generator, values: tuple[str, ...], weights: np.ndarray) -> np.ndarray:
    """Give one value per row of ``weights`` (rows: relative weights over ``values``)."""
    weights = np.asarray(weights, dtype=float)
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    draws = rng.random(len(weights))[:, None]
    index = np.minimum((draws > cumulative).sum(axis=1), len(values) - 1)
    chosen: np.ndarray = np.asarray(values, dtype=object)[index]
    return chosen


def _weights(base: tuple[float, ...], n: int) -> np.ndarray:
    """Give ``n`` rows of the same relative weights, to be adjusted per deal."""
    return np.tile(np.asarray(base, dtype=float), (n, 1))


def _draw_created_days(
    rng: np.random.Generator, n: int, start_day: int, today_day: int
) -> np.ndarray:
    """Give creation days with a density rising linearly over the window (mild growth)."""
    growth = 0.6
    u = rng.random(n)
    # Inverse of F(t) = (t + g t^2 / 2) / (1 + g / 2) on [0, 1].
    t = (-1.0 + np.sqrt(1.0 + 2.0 * growth * u * (1.0 + growth / 2.0))) / growth
    days = start_day + np.floor(t * (today_day - start_day + 1)).astype(np.int64)
    # Deals are opened on working days: weekend dates move to Monday (1970-01-01 was a Thursday).
    weekday = (days + 3) % 7  # 0 = Monday
    days = days + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))
    return np.minimum(days, today_day)


def _draw_static(rng: np.random.Generator, n: int, start_day: int, today_day: int) -> pd.DataFrame:
    """Give the static attributes of ``n`` deals (accounts, owners, segment, problem, economics)."""
    # Accounts: attributes shared by all of an account's deals.
    n_accounts = max(1, n // 3)
    industry_a = rng.choice(
        INDUSTRIES, size=n_accounts, p=[0.22, 0.16, 0.13, 0.16, 0.12, 0.09, 0.12]
    )
    region_a = rng.choice(REGIONS, size=n_accounts, p=[0.45, 0.32, 0.15, 0.08])
    stage_a = rng.choice(GROWTH_STAGES, size=n_accounts, p=[0.25, 0.35, 0.40])
    median_employees = np.select(
        [stage_a == "startup", stage_a == "scaleup"], [60.0, 450.0], 4000.0
    )
    sigma_employees = np.where(stage_a == "mature", 1.0, 0.7)
    employees_a = np.maximum(
        5.0, np.round(median_employees * np.exp(rng.normal(0, 1, n_accounts) * sigma_employees))
    )
    revenue_per_head = (
        pd.Series(industry_a)
        .map(
            {
                "software": 250e3,
                "financial_services": 400e3,
                "healthcare": 180e3,
                "manufacturing": 220e3,
                "retail": 150e3,
                "public_sector": 120e3,
                "logistics": 170e3,
            }
        )
        .to_numpy(dtype=float)
    )
    revenue_per_head = revenue_per_head * np.where(stage_a == "startup", 0.5, 1.0)
    revenue_a = np.round(
        employees_a * revenue_per_head * np.exp(rng.normal(0, 0.4, n_accounts)), -3
    )
    pe_probability = np.select([stage_a == "startup", stage_a == "scaleup"], [0.03, 0.22], 0.32)
    pe_a = (rng.random(n_accounts) < pe_probability) & (industry_a != "public_sector")

    # Owners: ~60 reps split by region; an account has a main owner.
    reps_per_region = {"north_america": 27, "emea": 19, "apac": 9, "latam": 5}
    rep_ids: list[str] = []
    rep_regions: list[str] = []
    for region_name, count in reps_per_region.items():
        for _ in range(count):
            rep_ids.append(f"REP-{len(rep_ids) + 1:03d}")
            rep_regions.append(region_name)
    rep_regions_arr = np.asarray(rep_regions)
    reps_of_region = {
        region: np.flatnonzero(rep_regions_arr == region) for region in reps_per_region
    }
    owner_a = np.empty(n_accounts, dtype=np.int64)
    for region_name, reps in reps_of_region.items():
        mask = region_a == region_name
        owner_a[mask] = rng.choice(reps, size=int(mask.sum()))

    # Deals -> accounts, skewed (some accounts buy often).
    account_weight = rng.lognormal(0.0, 0.7, n_accounts)
    account = rng.choice(n_accounts, size=n, p=account_weight / account_weight.sum())
    industry, region, growth = industry_a[account], region_a[account], stage_a[account]
    employees, revenue, pe_backed = employees_a[account], revenue_a[account], pe_a[account]
    owner = owner_a[account].copy()
    switch = rng.random(n) < 0.2
    for region_name, reps in reps_of_region.items():
        mask = switch & (region == region_name)
        owner[mask] = rng.choice(reps, size=int(mask.sum()))

    startup, scaleup, mature = growth == "startup", growth == "scaleup", growth == "mature"
    regulated = np.isin(industry, ["financial_services", "healthcare", "public_sector"])

    # Problem and trigger.
    deal_type = _choose(
        rng,
        DEAL_TYPES,
        np.select(
            [startup[:, None], scaleup[:, None]],
            [np.array([0.10, 0.50, 0.25, 0.15]), np.array([0.25, 0.32, 0.25, 0.18])],
            np.array([0.42, 0.18, 0.22, 0.18]),
        ),
    )
    legacy, greenfield = deal_type == "legacy_replacement", deal_type == "greenfield"
    trigger_w = _weights((0.38, 0.15, 0.08, 0.07, 0.12, 0.20), n)
    trigger_w[:, 5] *= np.where(legacy, 3.0, np.where(greenfield, 0.2, 0.6))
    trigger_w[:, 2] *= np.where(mature, 0.2, 3.0)
    trigger_w[:, 4] *= np.where(regulated, 2.5, 0.7)
    trigger_w[:, 3] *= np.where(pe_backed, 2.0, 1.0)
    trigger = _choose(rng, TRIGGERS, trigger_w)

    pain_w = _weights((0.22, 0.22, 0.15, 0.22, 0.19), n)
    pain_w[:, 0] *= np.where(legacy, 3.0, 1.0) * np.where(trigger == "legacy_end_of_life", 2.0, 1.0)
    pain_w[:, 1] *= np.where(pe_backed, 2.5, 1.0)
    pain_w[:, 2] *= np.where(regulated, 2.0, 1.0) * np.where(trigger == "regulation", 3.0, 1.0)
    pain_w[:, 3] *= np.where(mature, 1.0, 2.0) * np.where(deal_type == "expansion", 1.5, 1.0)
    pain_w[:, 4] *= np.where(deal_type == "expansion", 1.5, 1.0)
    pain = _choose(rng, PAINS, pain_w)

    urgency_w = _weights((0.30, 0.40, 0.30), n)
    pressing = np.isin(trigger, ["legacy_end_of_life", "regulation"])
    urgency_w[:, 0] *= np.where(trigger == "none", 1.8, np.where(pressing, 0.4, 1.0))
    urgency_w[:, 2] *= np.where(trigger == "none", 0.6, np.where(pressing, 2.2, 1.3))
    urgency_w[:, 1] *= np.where(deal_type == "renewal", 1.5, 1.0)
    urgency = _choose(rng, URGENCIES, urgency_w)
    problem_quantified = rng.random(n) < (
        0.3 + 0.25 * (urgency == "high") + 0.1 * (pain == "cost") - 0.1 * (urgency == "none")
    )

    # Competition.
    competitor_w = _weights((0.18, 0.32, 0.20, 0.18, 0.12), n)
    competitor_w[:, 0] *= np.where(
        deal_type == "renewal", 2.5, np.where(deal_type == "expansion", 1.8, 1.0)
    )
    competitor = _choose(rng, COMPETITORS, competitor_w)
    no_competitor = competitor == "none"
    competitor_count = np.where(no_competitor, 0, 1 + rng.binomial(3, 0.25 + 0.1 * mature))
    position_w = np.where(
        no_competitor[:, None], np.array([0.6, 0.3, 0.1]), np.array([0.28, 0.45, 0.27])
    )
    position_w[:, 0] *= np.where(np.isin(deal_type, ["renewal", "expansion"]), 1.8, 1.0)
    position_w[:, 2] *= np.where(competitor == "Contoso", 1.2, 1.0)
    position = _choose(rng, POSITIONS, position_w)

    # Champion and qualification.
    champion_w = _weights((0.18, 0.24, 0.28, 0.19, 0.11), n)
    champion_w[:, 4] *= np.where(startup, 2.5, np.where(mature, 0.6, 1.0))
    champion = _choose(rng, CHAMPION_ROLES, champion_w)
    sponsor_p = (
        pd.Series(champion)
        .map({"none": 0.12, "manager": 0.2, "director": 0.38, "vp": 0.62, "c_level": 0.8})
        .to_numpy(dtype=float)
    )
    executive_sponsor = rng.random(n) < sponsor_p
    buying_process_defined = rng.random(n) < (
        0.55 + 0.2 * (urgency == "high") - 0.2 * (urgency == "none") + 0.1 * mature
    )
    customization_w = _weights((0.45, 0.38, 0.17), n)
    customization_w[:, 2] *= np.where(mature, 1.5, 1.0)
    customization = _choose(rng, CUSTOMIZATIONS, customization_w)
    custom_dev = rng.random(n) < pd.Series(customization).map(
        {"none": 0.04, "moderate": 0.2, "extensive": 0.55}
    ).to_numpy(dtype=float)

    # Economics.
    type_factor = (
        pd.Series(deal_type)
        .map({"legacy_replacement": 1.3, "greenfield": 1.0, "expansion": 0.45, "renewal": 0.7})
        .to_numpy(dtype=float)
    )
    custom_factor = (
        pd.Series(customization)
        .map({"none": 1.0, "moderate": 1.15, "extensive": 1.5})
        .to_numpy(dtype=float)
    )
    amount = 4000.0 * employees**0.45 * type_factor * custom_factor * np.exp(rng.normal(0, 0.55, n))
    amount = np.maximum(1000.0, np.round(amount, -2))
    discount = (
        6.0
        + 4.5 * np.log(amount / 50_000.0)
        + 4.0 * competitor_count
        + 6.0 * (position == "weakness")
        + 2.0 * (position == "parity")
        - 3.0 * (deal_type == "renewal")
        + rng.normal(0, 6.0, n)
    )
    discount = np.round(np.clip(discount, 0.0, 60.0) * 2.0) / 2.0
    services = np.clip(
        rng.beta(2.0, 12.0, n)
        + 0.10 * (customization == "moderate")
        + 0.22 * (customization == "extensive")
        + 0.10 * custom_dev,
        0.0,
        0.8,
    )
    third_party = np.where(rng.random(n) < 0.6, 0.0, rng.beta(1.5, 8.0, n))
    margin = (
        82.0
        - 0.9 * discount
        - 45.0 * services
        - 55.0 * third_party
        - 6.0 * custom_dev
        + rng.normal(0, 4.0, n)
    )
    margin = np.round(np.clip(margin, -100.0, 100.0), 1)
    cac = np.round(
        1500.0 + amount * 0.12 * (1.0 + 0.25 * competitor_count) * np.exp(rng.normal(0, 0.3, n)), -1
    )
    expansion_potential = _choose(
        rng,
        EXPANSION_LEVELS,
        np.select(
            [startup[:, None], scaleup[:, None]],
            [np.array([0.2, 0.4, 0.4]), np.array([0.25, 0.45, 0.30])],
            np.array([0.45, 0.40, 0.15]),
        ),
    )
    strategic_w = _weights((0.62, 0.20, 0.10, 0.08), n)
    strategic_w[:, 2] *= np.where(no_competitor, 0.0, 1.0)
    strategic_value = _choose(rng, STRATEGIC_VALUES, strategic_w)

    created = _draw_created_days(rng, n, start_day, today_day)
    order = np.argsort(created, kind="stable")  # ids follow creation order, as in a CRM

    static = (
        pd.DataFrame(
            {
                "account_id": np.char.add("ACC-", np.char.zfill((account + 1).astype(str), 6)),
                "owner_id": np.asarray(rep_ids)[owner],
                "created_day": created,
                "amount": amount,
                "industry": industry,
                "region": region,
                "employees": employees,
                "annual_revenue": revenue,
                "growth_stage": growth,
                "pe_backed": pe_backed,
                "primary_pain": pain,
                "deal_type": deal_type,
                "problem_quantified": problem_quantified,
                "urgency": urgency,
                "trigger_event": trigger,
                "primary_competitor": competitor,
                "competitor_count": competitor_count.astype(float),
                "competitive_position": position,
                "champion_role": champion,
                "executive_sponsor": executive_sponsor,
                "buying_process_defined": buying_process_defined,
                "customization_required": customization,
                "discount_pct": discount,
                "gross_margin_pct": margin,
                "services_share": np.round(services, 3),
                "third_party_share": np.round(third_party, 3),
                "custom_dev_required": custom_dev,
                "cac_estimate": cac,
                "expansion_potential": expansion_potential,
                "strategic_value": strategic_value,
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    ids = np.char.add("OPP-", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    return static.assign(opportunity_id=ids)


@dataclass(frozen=True)
class _Simulation:
    """Raw arrays of the weekly simulation (days are whole days since 1970)."""

    snapshots: dict[str, np.ndarray]
    close_day: np.ndarray
    expected_close_day: np.ndarray
    won: np.ndarray  # 1 won, 0 lost, -1 open
    last_index: np.ndarray  # row in ``snapshots`` of each deal's latest pre-close snapshot
    last_stage: np.ndarray
    #: The deals and their state at ``today``, from which the timing truth is simulated forward.
    world: _World
    state: _State


def _quarter_end_after(day: int) -> int:
    """Give the first quarter-end day strictly after ``day``."""
    stamp = pd.Timestamp(np.datetime64(day + 1, "D"))
    end = stamp + pd.offsets.QuarterEnd(0)
    return int(np.datetime64(end.date(), "D").astype(np.int64))


def _stage_codes(met: np.ndarray, stakeholders: np.ndarray) -> np.ndarray:
    """Give the CRM stage (index into OPEN_STAGES) implied by the milestones met."""
    problem, criteria, budget, timeline = met[:, 0], met[:, 1], met[:, 2], met[:, 3]
    business_case, value_metric = met[:, 6], met[:, 7]
    stage = np.zeros(len(met), dtype=np.int64)
    stage = np.where(problem, 1, stage)
    stage = np.where(problem & criteria & (stakeholders >= 0.35), 2, stage)
    stage = np.where((stage == 2) & budget & (business_case | timeline), 3, stage)
    return np.where((stage == 3) & value_metric & timeline, 4, stage)


_BASE_MILESTONE_HAZARD = np.array([0.28, 0.21, 0.15, 0.15, 0.13, 0.11, 0.13, 0.13])


@dataclass(frozen=True)
class _World:
    """What stays fixed about each deal during its life (arrays over deals)."""

    created: np.ndarray
    speed: np.ndarray
    has_champion: np.ndarray
    special: np.ndarray  # n x 8 multipliers of the milestone hazards
    is_contoso: np.ndarray
    final_amount: np.ndarray
    problem_quantified: np.ndarray
    owner_habit: np.ndarray
    static_logit: np.ndarray
    decision_pace: np.ndarray  # multiplies the hazard of scheduling a decision (timing traits)
    slip_weeks: np.ndarray  # how far the CRM date is pushed when it passes, scaled per deal
    lead_scale: np.ndarray  # scales the lead from a scheduled decision to the close (procurement)
    ready_to_buy: np.ndarray  # arrives with the problem, criteria, budget and timeline settled
    drift_start: int

    def take(self, index: np.ndarray) -> _World:
        """Give the world of the deals at ``index`` (repeats allowed)."""
        return replace(
            self,
            **{
                name: getattr(self, name)[index]
                for name in self.__dataclass_fields__
                if name != "drift_start"
            },
        )


@dataclass
class _State:
    """What changes week by week (arrays over deals, updated in place)."""

    met: np.ndarray
    stakeholders: np.ndarray
    engagement: np.ndarray
    activity: np.ndarray
    amount_deviation: np.ndarray
    expected_close: np.ndarray
    close_day: np.ndarray
    scheduled: np.ndarray
    active: np.ndarray
    weeks_since_progress: np.ndarray
    won: np.ndarray
    decided_day: np.ndarray  # the snapshot day whose state the outcome was drawn from

    @classmethod
    def empty(cls, n: int) -> _State:
        return cls(
            met=np.zeros((n, 8), dtype=bool),
            stakeholders=np.zeros(n),
            engagement=np.zeros(n, dtype=np.int64),
            activity=np.zeros((n, 3)),
            amount_deviation=np.zeros(n),
            expected_close=np.zeros(n, dtype=np.int64),
            close_day=np.full(n, -1, dtype=np.int64),
            scheduled=np.zeros(n, dtype=bool),
            active=np.zeros(n, dtype=bool),
            weeks_since_progress=np.zeros(n),
            won=np.full(n, -1, dtype=np.int64),
            decided_day=np.full(n, -1, dtype=np.int64),
        )

    def take(self, index: np.ndarray) -> _State:
        """Give a copy of the state of the deals at ``index`` (repeats allowed)."""
        return _State(**{name: getattr(self, name)[index].copy() for name in self.__dict__})


def _timing_traits(static: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Give each deal's decision pace, slip scale, procurement lead scale and ready-to-buy flag.

    Big deals and heavy customisation decide slowly, slip further and take longer
    to sign; urgent deals and expansions or renewals of existing customers decide
    fast; private-equity owners squeeze procurement. Some deals arrive ready to
    buy (half of the urgent expansions and renewals, a quarter of the others, 6-12 % of new business) and often
    close inside the month they were opened. The win truth is untouched: it reads
    the milestones these deals start with like any others.
    """
    amount = static["amount"].to_numpy(dtype=float)
    big = amount >= BIG_DEAL_AMOUNT
    extensive = static["customization_required"].to_numpy(dtype=object) == "extensive"
    urgent = static["urgency"].to_numpy(dtype=object) == "high"
    no_urgency = static["urgency"].to_numpy(dtype=object) == "none"
    existing = np.isin(static["deal_type"].to_numpy(dtype=object), ["expansion", "renewal"])
    pe_backed = static["pe_backed"].to_numpy(dtype=bool)
    pace = (
        np.where(big, 0.6, 1.0)
        * np.where(extensive, 0.7, 1.0)
        * np.where(urgent, 1.6, np.where(no_urgency, 0.8, 1.0))
        * np.where(existing, 1.5, 1.0)
        * rng.lognormal(0.0, 0.25, len(static))
    )
    slip = np.where(big, 1.6, 1.0) * np.where(extensive, 1.4, 1.0) * np.where(urgent, 0.7, 1.0)
    lead = np.where(big, 1.5, 1.0) * np.where(pe_backed, 1.3, 1.0) * np.where(existing, 0.7, 1.0)
    ready_share = np.where(existing, 0.25, 0.06) * np.where(urgent, 2.0, 1.0)
    ready = rng.random(len(static)) < ready_share
    # Ready to buy: decide within a few weeks and sign fast.
    return pace * np.where(ready, 6.0, 1.0), slip, lead * np.where(ready, 0.5, 1.0), ready


def _build_world(
    rng: np.random.Generator, static: pd.DataFrame, static_logit: np.ndarray, drift_start: int
) -> _World:
    """Give the fixed per-deal parameters of the simulation."""
    n = len(static)
    # Momentum: how fast a deal moves, from the same things that make it winnable, plus noise.
    z = (static_logit - static_logit.mean()) / (static_logit.std() + 1e-9)
    momentum = 0.5 * z + rng.normal(0.0, 0.85, n)
    role = static["champion_role"].to_numpy(dtype=object)
    sponsor = static["executive_sponsor"].to_numpy(dtype=bool)
    senior = np.isin(role, ["vp", "c_level"]) | sponsor
    owners = static["owner_id"].to_numpy(dtype=object)
    owner_codes = pd.factorize(owners, sort=True)[0]
    owner_habit = rng.lognormal(0.0, 0.5, owner_codes.max() + 1)[owner_codes] * rng.lognormal(
        0.0, 0.3, n
    )
    special = np.ones((n, 8))
    special[:, 4] = np.where(senior, 1.6, 0.7)  # economic buyer aware
    special[:, 5] = np.where(sponsor, 1.8, 0.6)  # exec support signalled
    pace, slip, lead, ready = _timing_traits(static, rng)
    return _World(
        created=static["created_day"].to_numpy(),
        speed=np.exp(0.7 * momentum),
        has_champion=role != "none",
        special=special,
        is_contoso=static["primary_competitor"].to_numpy(dtype=object) == "Contoso",
        final_amount=static["amount"].to_numpy(dtype=float),
        problem_quantified=static["problem_quantified"].to_numpy(dtype=bool),
        owner_habit=owner_habit,
        static_logit=static_logit,
        decision_pace=pace,
        slip_weeks=slip,
        lead_scale=lead,
        ready_to_buy=ready,
        drift_start=drift_start,
    )


def _open_deals(world: _World, state: _State, idx: np.ndarray, rng: np.random.Generator) -> None:
    """Start the deals at ``idx``: first milestones, buying group, champion, the CRM's first close date."""
    k = idx.size
    state.met[idx, 0] = rng.random(k) < np.where(world.problem_quantified[idx], 0.45, 0.2)
    state.stakeholders[idx] = rng.uniform(0.05, 0.3, k)
    ready = idx[world.ready_to_buy[idx]]
    state.met[ready, :4] = True  # problem, criteria, budget and timeline settled before the call
    state.stakeholders[ready] = rng.uniform(0.5, 0.8, ready.size)
    state.engagement[idx] = np.where(
        world.has_champion[idx],
        1 + (rng.random(k) < 0.3 * world.speed[idx]),
        rng.random(k) < 0.2,
    )
    state.expected_close[idx] = world.created[idx] + rng.integers(42, 100, k)
    state.amount_deviation[idx] = rng.normal(0.0, 0.2, k)
    state.activity[idx] = rng.poisson(world.owner_habit[idx, None] * np.array([1.0, 3.0, 0.5]))
    state.active[idx] = True


def _progress_week(world: _World, state: _State, idx: np.ndarray, rng: np.random.Generator) -> None:
    """Move the deals at ``idx`` one week on: milestones, buying group, engagement, activity, amount."""
    k = idx.size
    shock = np.exp(rng.normal(0.0, 0.4, k))
    pace = world.speed[idx] * shock * np.where(state.engagement[idx] >= 3, 1.3, 1.0)
    met = state.met[idx]
    first_unmet = np.where(met.all(axis=1), 8, np.argmin(met, axis=1))
    distance = np.arange(8)[None, :] - first_unmet[:, None]
    gate = np.where(distance <= 0, 1.0, np.where(distance == 1, 0.3, 0.05))
    hazard = np.minimum(
        0.9, _BASE_MILESTONE_HAZARD[None, :] * pace[:, None] * gate * world.special[idx]
    )
    newly = ~met & (rng.random((k, 8)) < hazard)
    state.met[idx] = met | newly
    grown = (1.0 - state.stakeholders[idx]) * 0.06 * pace * rng.uniform(0.0, 2.0, k)
    state.stakeholders[idx] = np.minimum(1.0, state.stakeholders[idx] + grown)
    state.weeks_since_progress[idx] = np.where(
        newly.any(axis=1), 0.0, state.weeks_since_progress[idx] + 1.0
    )
    has_champion = world.has_champion[idx]
    cap = np.where(has_champion, 4, 2)
    up = rng.random(k) < np.minimum(0.5, 0.07 * pace * np.where(has_champion, 1.0, 0.4))
    down = rng.random(k) < np.minimum(0.5, 0.04 / pace)
    state.engagement[idx] = np.clip(
        state.engagement[idx] + up.astype(np.int64) - (down & ~up), 0, cap
    )
    # Activity: owner habit, chased harder when the deal has stalled; no truth weight.
    chase = 1.0 + 0.5 * (state.weeks_since_progress[idx] >= 4)
    weekly = world.owner_habit[idx, None] * chase[:, None] * np.array([1.5, 4.0, 0.6])
    state.activity[idx] += rng.poisson(weekly)
    revise = rng.random(k) < 0.05
    state.amount_deviation[idx] = np.where(
        revise, state.amount_deviation[idx] * rng.uniform(0.0, 0.7, k), state.amount_deviation[idx]
    )


def _schedule_week(
    world: _World, state: _State, live: np.ndarray, day: int, rng: np.random.Generator
) -> None:
    """Push passed CRM close dates and schedule decisions for the live deals at ``live`` on ``day``."""
    # The CRM's expected close date is pushed when it passes: 2-6 weeks, further on slow deals.
    passed = live[~state.scheduled[live] & (state.expected_close[live] <= day)]
    push = np.round(rng.integers(14, 43, passed.size) * world.slip_weeks[passed]).astype(np.int64)
    state.expected_close[passed] = day + push

    # Decision scheduling: progress makes deals decide; stalled old deals get closed out.
    candidates = live[~state.scheduled[live]]
    if not candidates.size:
        return
    k = candidates.size
    progress = (state.met[candidates].sum(axis=1) + state.stakeholders[candidates]) / 9.0
    age_weeks = (day - world.created[candidates]) / 7.0
    quarter_end = _quarter_end_after(day)
    cleanup_season = quarter_end - day <= 14
    h_progress = np.minimum(0.9, (0.005 + 0.45 * progress**3) * world.decision_pace[candidates])
    h_stale = (
        (age_weeks > 16)
        * (1.0 - progress)
        * np.minimum(0.012 + 0.004 * (age_weeks - 16), 0.08)
        * (3.5 if cleanup_season else 1.0)
    )
    fire = rng.random(k) < h_progress + h_stale
    cleanup = rng.random(k) * (h_progress + h_stale) < h_stale
    decision_lead = np.round(rng.integers(8, 22, k) * world.lead_scale[candidates])
    lead = np.where(cleanup, rng.integers(1, 11, k), decision_lead).astype(np.int64)
    planned = day + lead
    to_quarter_end = (np.abs(quarter_end - planned) <= 10) & (
        rng.random(k) < np.where(cleanup, 0.8, 0.35)
    )
    planned = np.where(to_quarter_end, quarter_end, planned)
    chosen = candidates[fire]
    state.close_day[chosen] = planned[fire]
    state.expected_close[chosen] = planned[fire]
    state.scheduled[chosen] = True


def _decide(
    world: _World,
    state: _State,
    live: np.ndarray,
    day: int,
    last_day: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw the outcome of live deals whose close falls within a week of ``day`` (and by ``last_day``).

    ``day`` is the last snapshot before their close: the outcome is drawn from this state only.
    Gives the deals decided.
    """
    due = state.scheduled[live] & (state.close_day[live] <= day + 7)
    if last_day is not None:
        due &= state.close_day[live] <= last_day
    deciding: np.ndarray = live[due]
    if deciding.size:
        # Same rounding as the recorded snapshot, so the truth is reproducible from the data.
        milestones = {name: state.met[deciding, i] for i, name in enumerate(BOOL_MILESTONES)}
        logit = (
            world.static_logit[deciding]
            + _progress_logit(
                milestones, np.round(state.stakeholders[deciding], 2), state.engagement[deciding]
            )
            + _drift_logit(
                world.is_contoso[deciding], np.full(deciding.size, day), world.drift_start
            )
        )
        state.won[deciding] = rng.random(deciding.size) < _sigmoid(logit)
        state.decided_day[deciding] = day
        state.active[deciding] = False
    return deciding


def _simulate(
    rng: np.random.Generator,
    static: pd.DataFrame,
    static_logit: np.ndarray,
    start_day: int,
    today_day: int,
    drift_start: int,
) -> _Simulation:
    """Give the weekly life of every deal: snapshots, close dates and outcomes."""
    n = len(static)
    n_weeks = (today_day - start_day) // 7 + 2
    grid = today_day - 7 * np.arange(n_weeks)[::-1]
    world = _build_world(rng, static, static_logit, drift_start)
    state = _State.empty(n)
    first_week = np.searchsorted(grid, world.created, side="left")
    last_index = np.full(n, -1, dtype=np.int64)

    records: dict[str, list[np.ndarray]] = {
        key: []
        for key in (
            "deal",
            "day",
            "stage",
            "amount",
            "close",
            "met",
            "stakeholders",
            "engagement",
            "activity",
        )
    }
    n_rows = 0

    for week, day in enumerate(grid):
        day = int(day)
        new = first_week == week
        evolving = np.flatnonzero(state.active & ~new)
        idx_new = np.flatnonzero(new)
        if idx_new.size:
            _open_deals(world, state, idx_new, rng)
        if evolving.size:
            _progress_week(world, state, evolving, rng)

        live = np.flatnonzero(state.active)
        if not live.size:
            continue
        _schedule_week(world, state, live, day, rng)

        # Record this week's snapshot of every live deal.
        k = live.size
        records["deal"].append(live)
        records["day"].append(np.full(k, day, dtype=np.int64))
        records["stage"].append(_stage_codes(state.met[live], state.stakeholders[live]))
        records["amount"].append(
            np.round(world.final_amount[live] * np.exp(state.amount_deviation[live]), -2)
        )
        records["close"].append(state.expected_close[live].copy())
        records["met"].append(state.met[live].copy())
        records["stakeholders"].append(np.round(state.stakeholders[live], 2))
        records["engagement"].append(state.engagement[live].copy())
        records["activity"].append(state.activity[live].copy())
        last_index[live] = n_rows + np.arange(k)
        n_rows += k

        _decide(world, state, live, day, today_day, rng)

    snapshots = {key: np.concatenate(parts) for key, parts in records.items()}
    last_stage = snapshots["stage"][last_index]
    return _Simulation(
        snapshots,
        state.close_day,
        state.expected_close,
        state.won,
        last_index,
        last_stage,
        world,
        state,
    )


def _timing_truth(
    sim: _Simulation,
    ids: np.ndarray,
    today_day: int,
    seed: int,
    replicates: int,
    months: int = TIMING_MONTHS,
) -> pd.DataFrame:
    """Give each open deal's true outcome distribution by calendar month, simulated forward from today.

    Every deal open at ``today`` is continued ``replicates`` times with the same
    weekly rules (its own random stream, so the history itself does not depend
    on it) until the end of the ``months``-th month: the share of
    continuations won (lost) by the end of each month is the true P(won by
    then) (P(lost by then)); the rest is still open. Deals created after today
    are not part of it. The weeks run in the same order whatever ``months`` is,
    so a longer run draws the same numbers for the weeks a shorter one covers
    and agrees with it on every month both give.
    """
    columns = ["opportunity_id", "month", "month_offset", "p_won_by_end", "p_lost_by_end"]
    open_deals = np.flatnonzero(sim.won < 0)
    if not open_deals.size or replicates < 1:
        return pd.DataFrame(columns=columns)
    rng = np.random.default_rng([seed, 2])
    index = np.repeat(open_deals, replicates)
    world = sim.world.take(index)
    state = sim.state.take(index)
    today_month = pd.Timestamp(np.datetime64(today_day, "D")).to_period("M")
    month_ends = [
        int(np.datetime64((today_month + k).end_time.date(), "D").astype(np.int64))
        for k in range(months)
    ]
    everyone = np.arange(index.size)
    # Deals closing within a week of today are decided on today's state (the last snapshot).
    _decide(world, state, everyone, today_day, None, rng)
    day = today_day
    while day < month_ends[-1]:
        day += 7
        live = np.flatnonzero(state.active)
        if not live.size:
            break
        _progress_week(world, state, live, rng)
        _schedule_week(world, state, live, day, rng)
        _decide(world, state, live, day, None, rng)
    decided = state.won >= 0
    won = decided & (state.won == 1)
    lost = decided & (state.won == 0)
    frames = []
    for k, end in enumerate(month_ends):
        by_end = state.close_day <= end
        frames.append(
            pd.DataFrame(
                {
                    "opportunity_id": ids[open_deals],
                    "month": str(today_month + k),
                    "month_offset": k,
                    "p_won_by_end": (won & by_end).reshape(-1, replicates).mean(axis=1),
                    "p_lost_by_end": (lost & by_end).reshape(-1, replicates).mean(axis=1),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table["opportunity_id"] = table["opportunity_id"].astype("str")
    table["month"] = table["month"].astype("str")
    return table.sort_values(["opportunity_id", "month_offset"], kind="stable").reset_index(
        drop=True
    )[columns]


def _assemble(
    static: pd.DataFrame,
    sim: _Simulation,
    static_main: np.ndarray,
    static_interaction: np.ndarray,
    today_day: int,
    drift_start: int,
) -> SyntheticHistory:
    """Give the canonical frames (and the truth) from the static draw and the simulation."""
    n = len(static)
    ids = static["opportunity_id"].to_numpy(dtype=object)
    closed = sim.won >= 0
    won = sim.won == 1
    status = np.where(closed, np.where(won, "won", "lost"), "open")
    snaps = sim.snapshots
    stage_names = np.asarray(OPEN_STAGES, dtype=object)

    # Regular weekly snapshots.
    regular = {
        "opportunity_id": ids[snaps["deal"]],
        "snapshot_day": snaps["day"],
        "stage": stage_names[snaps["stage"]],
        "crm_probability": np.asarray(STAGE_PROBABILITY)[snaps["stage"]],
        "amount": snaps["amount"],
        "close_day": snaps["close"],
        **{name: snaps["met"][:, i] for i, name in enumerate(BOOL_MILESTONES)},
        "stakeholders_identified": snaps["stakeholders"],
        "champion_engagement": np.asarray(ENGAGEMENTS, dtype=object)[snaps["engagement"]],
        "calls": snaps["activity"][:, 0],
        "emails": snaps["activity"][:, 1],
        "meetings": snaps["activity"][:, 2],
    }
    # Leakage traps: one row on each closed deal's close date showing the outcome.
    closed_deals = np.flatnonzero(closed)
    last = sim.last_index[closed_deals]
    won_closed = won[closed_deals]
    trap_met = snaps["met"][last] | won_closed[:, None]
    trap = {
        "opportunity_id": ids[closed_deals],
        "snapshot_day": sim.close_day[closed_deals],
        "stage": np.where(won_closed, "closed_won", "closed_lost").astype(object),
        "crm_probability": np.where(won_closed, 100.0, 0.0),
        "amount": static["amount"].to_numpy(dtype=float)[closed_deals],
        "close_day": sim.close_day[closed_deals],
        **{name: trap_met[:, i] for i, name in enumerate(BOOL_MILESTONES)},
        "stakeholders_identified": np.where(won_closed, 1.0, snaps["stakeholders"][last]),
        "champion_engagement": np.asarray(ENGAGEMENTS, dtype=object)[
            np.where(
                won_closed, np.maximum(snaps["engagement"][last], 3), snaps["engagement"][last]
            )
        ],
        "calls": snaps["activity"][last, 0] + 1.0,
        "emails": snaps["activity"][last, 1] + 2.0,
        "meetings": snaps["activity"][last, 2] + 1.0,
    }
    snapshots = pd.DataFrame({key: np.concatenate([regular[key], trap[key]]) for key in regular})
    snapshots = (
        snapshots.assign(
            snapshot_date=_dates(snapshots["snapshot_day"]),
            close_date=_dates(snapshots["close_day"]),
        )
        .drop(columns=["snapshot_day", "close_day"])
        .sort_values(["opportunity_id", "snapshot_date"], kind="stable")
        .reset_index(drop=True)
    )
    snapshots = _canonical(snapshots, SNAPSHOTS)

    # Opportunities: static columns, final close date and final-state CRM columns.
    open_stage = sim.last_stage
    stage = np.where(closed, np.where(won, "closed_won", "closed_lost"), stage_names[open_stage])
    crm_probability = np.where(
        closed, np.where(won, 100.0, 0.0), np.asarray(STAGE_PROBABILITY)[open_stage]
    )
    forecast = np.where(
        closed,
        np.where(won, "closed", "omitted"),
        np.asarray(FORECAST_BY_STAGE, dtype=object)[open_stage],
    )
    close_day = np.where(closed, sim.close_day, sim.expected_close_day)
    opportunities = static.assign(
        created_date=_dates(static["created_day"]),
        close_date=_dates(close_day),
        status=status,
        stage=stage,
        crm_probability=crm_probability,
    ).drop(columns=["created_day"])
    opportunities = _canonical(opportunities, OPPORTUNITIES)
    opportunities["forecast_category"] = pd.Series(forecast, dtype="str")

    # Truth: the probability the outcome was drawn from (open deals: as of their latest snapshot).
    last = sim.last_index
    progress = _progress_logit(
        {name: snaps["met"][last, i] for i, name in enumerate(BOOL_MILESTONES)},
        snaps["stakeholders"][last],
        snaps["engagement"][last],
    )
    drift = _drift_logit(
        opportunities["primary_competitor"].to_numpy(dtype=object) == "Contoso",
        snaps["day"][last],
        drift_start,
    )
    logit = static_main + static_interaction + progress + drift
    truth = pd.DataFrame(
        {
            "opportunity_id": pd.Series(ids, dtype="str"),
            "status": pd.Series(status, dtype="str"),
            "true_probability": _sigmoid(logit),
            "last_snapshot_date": _dates(snaps["day"][last]),
            "is_open": pd.Series(~closed, dtype="boolean"),
            "true_logit": logit,
            "logit_main": static_main,
            "logit_interaction": static_interaction,
            "logit_progress": progress,
            "logit_drift": drift,
        }
    )
    log.debug("generated %d deals, %d snapshots", n, len(snapshots))
    return SyntheticHistory(opportunities=opportunities, snapshots=snapshots, truth=truth)


def _dates(days: pd.Series | np.ndarray) -> pd.Series:
    """Give whole days since 1970 as a datetime64[ns] series."""
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return pd.Series(values)


def _canonical(frame: pd.DataFrame, table: TableSpec) -> pd.DataFrame:
    """Give ``frame`` with the table's columns in contract order and contract dtypes."""
    columns = [name for name in table.names() if name in frame.columns]
    converted: dict[str, pd.Series] = {}
    for name in columns:
        kind = table[name].kind
        column = frame[name]
        if kind in ("string", "category"):
            converted[name] = column.astype("str")
        elif kind == "date":
            converted[name] = column.astype("datetime64[ns]")
        elif kind == "bool":
            converted[name] = column.astype("boolean")
        else:
            converted[name] = column.astype("float64")
    return pd.DataFrame(converted, index=frame.index)


__all__ = [
    "DEFAULT_TODAY",
    "PLANTED_PATTERNS",
    "PlantedPattern",
    "SyntheticHistory",
    "generate_history",
    "true_logit_components",
    "true_win_logit",
]
