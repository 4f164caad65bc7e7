"""Give unseen CRM worlds: seeded histories whose causal structure is itself drawn at random.

The demo generator (:mod:`winmodel.synth.generator`) is one world, and winmodel's choices were made
on it. A *world* here is a whole family member: which win dimensions, milestones and economics
matter and how much, which interactions, thresholds and non-monotone effects there are, how loud
the noise is, how many deals, how many are won, whether the export has snapshots, whether a
segment drifts, whether fields are missing, whether a categorical has hundreds of values. All of
it comes from one seed (:func:`draw_world_spec`, then :func:`generate_world`), never written by
hand to match the demo. ``benchmarks/quality.py`` scores winmodel and its peers on many of them.

The truth is exact at every snapshot
------------------------------------
A deal's outcome ``Y`` is drawn once, at creation, from its static traits::

    Y ~ Bernoulli(sigmoid(prior_logit(static traits, created date)))

Its life then unfolds *given* ``Y``: every week each unmet milestone is met with a hazard that
depends on ``Y`` (won deals progress faster on the milestones that matter in this world), and
champion engagement moves up or down a level with probabilities that depend on ``Y``. The deal's
length is drawn independently of ``Y`` (so being open, or closing when it did, says nothing about
the outcome). Hence the true probability given everything knowable at snapshot ``t`` follows from
Bayes: the prior log-odds plus the log likelihood ratio of the milestone and engagement path so
far (``truth_snapshots``). A flat export (no snapshots) knows only the static traits: its truth is
the prior. Missing static values are integrated out over their known distribution, and a share
``label_noise`` of outcomes is flipped at random (``P = noise + (1 - 2 noise) P(Y)``), so the
truth stays the probability given what is *knowable*, which is what oracle share needs.

Static traits live on the opportunities table and are fixed at creation in every world (the
world's mapping declares them fixed); snapshots hold the CRM stage, its probability, amount,
expected close date, the eight milestones and champion engagement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from winmodel.data.contract import MILESTONES, OPPORTUNITIES, SNAPSHOTS, TableSpec

#: The last day of every world's history (fixed so a seed gives the same world).
WORLD_TODAY = date(2026, 10, 31)

Drift = Literal["none", "segment_collapse", "segment_rise", "new_competitor"]

ENGAGEMENTS = ("none", "passive", "responsive", "active", "coaching")
STAGES = ("qualification", "discovery", "evaluation", "proposal", "negotiation")
STAGE_PROBABILITY = (10.0, 20.0, 40.0, 60.0, 80.0)
BOOL_MILESTONES = tuple(spec.name for spec in MILESTONES if spec.kind == "bool")
NEW_COMPETITOR = "newcomer"

_CATEGORIES: dict[str, tuple[str, ...]] = {
    "industry": (
        "software",
        "financial_services",
        "healthcare",
        "manufacturing",
        "retail",
        "public_sector",
        "logistics",
        "energy",
    ),
    "region": ("north_america", "emea", "apac", "latam"),
    "growth_stage": ("startup", "scaleup", "mature", "declining"),
    "primary_pain": ("legacy_not_scaling", "cost", "compliance", "growth", "integration"),
    "deal_type": ("legacy_replacement", "greenfield", "expansion", "renewal"),
    "urgency": ("none", "low", "high"),
    "trigger_event": (
        "none",
        "new_executive",
        "funding",
        "m_and_a",
        "regulation",
        "legacy_end_of_life",
    ),
    "primary_competitor": ("none", "Contoso", "Fabrikam", "Northwind", "Initech", "Globex"),
    "competitive_position": ("strength", "parity", "weakness"),
    "champion_role": ("none", "manager", "director", "vp", "c_level"),
    "customization_required": ("none", "moderate", "extensive"),
    "expansion_potential": ("low", "medium", "high"),
    "strategic_value": ("none", "reference", "displacement", "new_segment"),
}
_BOOLS = (
    "pe_backed",
    "problem_quantified",
    "executive_sponsor",
    "buying_process_defined",
    "custom_dev_required",
)
_NUMBERS = (
    "employees",
    "annual_revenue",
    "amount",
    "discount_pct",
    "gross_margin_pct",
    "services_share",
    "competitor_count",
)
#: Columns that may hold hundreds of values in a high-cardinality world.
_WIDE = ("industry", "primary_competitor")
_SHAPES = ("linear", "threshold", "bump", "saturating")


@dataclass(frozen=True)
class WorldSpec:
    """The knobs of one world (its causal structure is drawn from ``seed`` by generate_world)."""

    seed: int
    deals: int
    months: int
    snapshots: bool
    #: Target share of won deals among all deals (the intercept is solved for it).
    win_rate: float
    #: Scale of every effect: small = weak signal, a noisy world.
    signal: float
    #: Share of outcomes flipped at random (irreducible noise).
    label_noise: float
    drift: Drift
    #: Months before ``today`` in which the drift holds (deals created since then).
    drift_months: int
    #: Share of deals with one static field blank.
    missing_share: float
    high_cardinality: bool

    @property
    def name(self) -> str:
        """Give a short label: ``w07-snap-12k-drop``."""
        size = f"{self.deals // 1000}k" if self.deals >= 1000 else str(self.deals)
        drift = {
            "none": "",
            "segment_collapse": "-drop",
            "segment_rise": "-rise",
            "new_competitor": "-newco",
        }[self.drift]
        kind = "snap" if self.snapshots else "flat"
        return f"w{self.seed:02d}-{kind}-{size}{drift}"


def draw_world_spec(seed: int, **overrides: object) -> WorldSpec:
    """Give a world's knobs drawn from ``seed``; keyword arguments fix any of them."""
    rng = np.random.default_rng([seed, 17])
    drawn: dict[str, object] = {
        "seed": seed,
        "deals": int(rng.choice([300, 600, 1_500, 3_000, 6_000, 12_000])),
        "months": int(rng.integers(18, 37)),
        "snapshots": bool(rng.random() < 0.7),
        "win_rate": float(rng.uniform(0.15, 0.7)),
        "signal": float(rng.uniform(0.6, 1.3)),
        "label_noise": float(rng.choice([0.0, 0.0, 0.03, 0.08])),
        "drift": str(
            rng.choice(["none", "none", "segment_collapse", "segment_rise", "new_competitor"])
        ),
        "drift_months": int(rng.integers(6, 11)),
        "missing_share": float(rng.choice([0.0, 0.05, 0.2])),
        "high_cardinality": bool(rng.random() < 0.3),
    }
    unknown = set(overrides) - set(drawn)
    if unknown:
        raise TypeError(f"unknown world settings: {', '.join(sorted(unknown))}")
    drawn.update(overrides)
    return WorldSpec(**drawn)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Effect:
    """One term of the prior log-odds (for the world's description and tests)."""

    kind: Literal["category", "number", "interaction", "drift"]
    columns: tuple[str, ...]
    detail: str
    size: float


@dataclass(frozen=True)
class _Structure:
    values: dict[str, tuple[str, ...]]
    shares: dict[str, np.ndarray]
    category_effects: dict[str, np.ndarray]
    number_effects: dict[str, tuple[str, float, float]]
    interactions: list[tuple[str, str, str, str, float]]
    intercept: float
    drift_column: str | None
    drift_value: str | None
    drift_effect: float
    drift_start_day: int
    hazard_base: np.ndarray
    hazard_log_ratio: np.ndarray
    engagement_up: float
    engagement_down: float
    engagement_log_ratio: float


@dataclass(frozen=True)
class World:
    """A generated world: the export tables and the truth, with the structure that made them."""

    spec: WorldSpec
    opportunities: pd.DataFrame
    #: None for a flat export.
    snapshots: pd.DataFrame | None
    #: One row per deal: ``status``, ``true_probability`` (at the last snapshot before close, or
    #: the latest for open deals; the prior in a flat world), ``prior_probability``, ``is_open``.
    truth: pd.DataFrame
    #: One row per snapshot: ``opportunity_id``, ``snapshot_date``, ``true_probability``.
    truth_snapshots: pd.DataFrame | None
    #: The static columns, all fixed at creation in this world (the mapping's ``fixed_fields``).
    fixed_fields: tuple[str, ...]
    effects: tuple[Effect, ...] = field(default_factory=tuple)
    #: The drifted segment: (column, value, first created date) or None.
    drifted: tuple[str, str, pd.Timestamp] | None = None

    @property
    def today(self) -> pd.Timestamp:
        """Give the world's export date."""
        return pd.Timestamp(WORLD_TODAY)


# --------------------------------------------------------------------------- structure


def _wide_values(column: str, count: int) -> tuple[str, ...]:
    return tuple(f"{column}_{index:03d}" for index in range(count))


def _draw_structure(
    rng: np.random.Generator, spec: WorldSpec, today_day: int
) -> tuple[_Structure, list[Effect]]:
    values = dict(_CATEGORIES)
    values.update({name: ("false", "true") for name in _BOOLS})
    if spec.high_cardinality:
        wide = str(rng.choice(_WIDE))
        values[wide] = ("none", *_wide_values(wide, int(rng.integers(80, 200))))
    if spec.drift == "new_competitor":
        values["primary_competitor"] = (*values["primary_competitor"], NEW_COMPETITOR)
    shares = {}
    for column, levels in values.items():
        concentration = 0.6 if len(levels) > 20 else 2.0
        share = rng.dirichlet(np.full(len(levels), concentration))
        if column == "primary_competitor" and spec.drift == "new_competitor":
            share[-1] = 0.0
            share /= share.sum()
        shares[column] = share

    effects: list[Effect] = []
    category_effects = {}
    active_share = rng.uniform(0.3, 0.7)
    for column, levels in values.items():
        if rng.random() > active_share:
            continue
        spread = rng.uniform(0.2, 1.0) * spec.signal
        if len(levels) > 20:
            spread *= 0.7
        effect = rng.normal(0.0, spread, len(levels))
        effect -= float(np.dot(effect, shares[column]))
        category_effects[column] = effect
        effects.append(Effect("category", (column,), f"per-value effects, sd {spread:.2f}", spread))
    number_effects = {}
    for column in _NUMBERS:
        if rng.random() > active_share:
            continue
        shape = str(rng.choice(_SHAPES))
        size = float(rng.uniform(0.3, 1.2) * spec.signal * rng.choice([-1, 1]))
        centre = float(rng.uniform(-1.0, 1.0))
        number_effects[column] = (shape, size, centre)
        effects.append(Effect("number", (column,), f"{shape} at z={centre:+.2f}", size))
    interactions = []
    candidates = [c for c in values if len(values[c]) <= 20]
    for _ in range(int(rng.integers(0, 4))):
        first, second = rng.choice(candidates, 2, replace=False)
        first_value = str(rng.choice(values[first]))
        second_value = str(rng.choice(values[second]))
        size = float(rng.uniform(1.0, 2.2) * spec.signal * rng.choice([-1, 1]))
        interactions.append((str(first), first_value, str(second), second_value, size))
        effects.append(
            Effect(
                "interaction",
                (str(first), str(second)),
                f"{first}={first_value} x {second}={second_value}",
                size,
            )
        )

    drift_column: str | None = None
    drift_value: str | None = None
    drift_effect = 0.0
    drift_start = today_day - round(spec.drift_months * 30.44)
    if spec.drift in ("segment_collapse", "segment_rise"):
        drift_column = str(rng.choice(["industry", "region"]))
        common = np.argsort(-shares[drift_column])[:3]
        drift_value = values[drift_column][int(rng.choice(common))]
        drift_effect = (
            -rng.uniform(1.5, 2.5) if spec.drift == "segment_collapse" else rng.uniform(1.0, 2.0)
        )
    elif spec.drift == "new_competitor":
        drift_column, drift_value = "primary_competitor", NEW_COMPETITOR
        drift_effect = -rng.uniform(1.0, 2.0)
    if drift_column is not None:
        effects.append(
            Effect(
                "drift",
                (drift_column,),
                f"{drift_column}={drift_value} for deals created in the last "
                f"{spec.drift_months} months",
                float(drift_effect),
            )
        )

    milestones = len(BOOL_MILESTONES)
    informative = rng.random(milestones) < 0.6
    hazard_log_ratio = np.where(
        informative, rng.uniform(0.3, 1.5, milestones) * spec.signal, 0.0
    ) * rng.choice([-1, 1], milestones, p=[0.1, 0.9])
    structure = _Structure(
        values=values,
        shares=shares,
        category_effects=category_effects,
        number_effects=number_effects,
        interactions=interactions,
        intercept=0.0,
        drift_column=drift_column,
        drift_value=drift_value,
        drift_effect=float(drift_effect),
        drift_start_day=drift_start,
        hazard_base=rng.uniform(0.02, 0.14, milestones),
        hazard_log_ratio=hazard_log_ratio,
        engagement_up=float(rng.uniform(0.05, 0.2)),
        engagement_down=float(rng.uniform(0.03, 0.12)),
        engagement_log_ratio=float(
            rng.uniform(0.2, 1.0) * spec.signal if rng.random() < 0.7 else 0.0
        ),
    )
    return structure, effects


def _standard(column: str, values: np.ndarray) -> np.ndarray:
    """Give a number on a standard scale (log for sizes), by the world's own quantiles."""
    scaled = np.log1p(values) if column in ("employees", "annual_revenue", "amount") else values
    finite = scaled[np.isfinite(scaled)]
    centre, spread = np.median(finite), np.subtract(*np.percentile(finite, [75, 25]))
    return np.asarray((scaled - centre) / max(float(spread) / 1.35, 1e-9))


def _shape(shape: str, z: np.ndarray, centre: float) -> np.ndarray:
    if shape == "linear":
        return np.asarray(np.clip(z, -3, 3) * 0.6)
    if shape == "threshold":
        return (z > centre).astype(float)
    if shape == "bump":
        return np.asarray(np.exp(-((z - centre) ** 2) / 0.5) - 0.5)
    return np.asarray(np.tanh(2.0 * (z - centre)))


def _static_logit(
    structure: _Structure,
    codes: dict[str, np.ndarray],
    standard: dict[str, np.ndarray],
    created_day: np.ndarray,
) -> np.ndarray:
    """Give the prior log-odds (without intercept) from value codes and standardised numbers."""
    total = np.zeros(len(created_day))
    for column, effect in structure.category_effects.items():
        total += effect[codes[column]]
    for column, (shape, size, centre) in structure.number_effects.items():
        total += size * _shape(shape, standard[column], centre)
    for first, first_value, second, second_value, size in structure.interactions:
        first_code = structure.values[first].index(first_value)
        second_code = structure.values[second].index(second_value)
        total += size * ((codes[first] == first_code) & (codes[second] == second_code))
    if structure.drift_column is not None and structure.drift_value is not None:
        code = structure.values[structure.drift_column].index(structure.drift_value)
        recent = created_day >= structure.drift_start_day
        total += structure.drift_effect * (recent & (codes[structure.drift_column] == code))
    return total


def _solve_intercept(static: np.ndarray, target: float) -> float:
    low, high = -12.0, 12.0
    for _ in range(60):
        middle = (low + high) / 2
        if float(np.mean(expit(middle + static))) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


# --------------------------------------------------------------------------- the world


def generate_world(spec: WorldSpec) -> World:
    """Give the world of ``spec``: its export tables and the exact truth (deterministic in the seed)."""
    rng = np.random.default_rng(spec.seed)
    today_day = int(np.datetime64(WORLD_TODAY, "D").astype(np.int64))
    structure, effects = _draw_structure(rng, spec, today_day)
    n = spec.deals

    # Created dates over ``months`` with mild growth; length independent of the outcome.
    start_day = today_day - int(spec.months * 30.44)
    growth = rng.uniform(0.0, 0.8)
    position = rng.random(n) ** (1.0 / (1.0 + growth))
    created_day = np.sort(start_day + (position * (today_day - start_day)).astype(np.int64))
    median_days = rng.uniform(45, 130)
    codes: dict[str, np.ndarray] = {}
    for column, levels in structure.values.items():
        codes[column] = rng.choice(len(levels), n, p=structure.shares[column])
    if spec.drift == "new_competitor":
        recent = created_day >= structure.drift_start_day
        newcomer = len(structure.values["primary_competitor"]) - 1
        takes = recent & (rng.random(n) < rng.uniform(0.15, 0.3))
        codes["primary_competitor"] = np.where(takes, newcomer, codes["primary_competitor"])
    numbers = _draw_numbers(rng, n)
    standard = {column: _standard(column, numbers[column]) for column in _NUMBERS}
    length_days = np.maximum(
        np.round(
            median_days * np.exp(rng.normal(0, 0.6, n) + 0.15 * np.clip(standard["amount"], -3, 3))
        ),
        3,
    ).astype(np.int64)
    close_day = created_day + length_days

    static = _static_logit(structure, codes, standard, created_day)
    noise = spec.label_noise
    latent_target = float(np.clip((spec.win_rate - noise) / max(1 - 2 * noise, 1e-6), 0.03, 0.97))
    intercept = _solve_intercept(static, latent_target)
    prior_logit = intercept + static
    latent_won = rng.random(n) < expit(prior_logit)
    observed_won = latent_won ^ (rng.random(n) < noise)

    # Missing values: one static categorical field blanked on a share of deals, integrated out.
    missing = _blank(rng, spec, structure, codes)
    known_prior = prior_logit.copy()
    for column, rows in missing.items():
        shares = structure.shares[column]
        expected = np.zeros(len(rows))
        for code, share in enumerate(shares):
            if share == 0:
                continue
            trial = {name: values[rows] for name, values in codes.items()}
            trial[column] = np.full(len(rows), code)
            trial_logit = intercept + _static_logit(
                structure, trial, {k: v[rows] for k, v in standard.items()}, created_day[rows]
            )
            expected += share * expit(trial_logit)
        known_prior[rows] = logit(np.clip(expected, 1e-12, 1 - 1e-12))

    closed = close_day <= today_day
    status = np.where(closed, np.where(observed_won, "won", "lost"), "open")
    ids = np.asarray([f"W{spec.seed:02d}-{i:06d}" for i in range(n)], dtype=object)
    fixed = _static_columns(structure)
    opportunities = _opportunities(
        ids, structure, codes, numbers, missing, created_day, close_day, status, rng
    )
    opportunities["close_date"] = _dates(
        np.where(closed, close_day, np.maximum(close_day + rng.integers(-20, 40, n), today_day + 1))
    )

    def observed(probability: np.ndarray) -> np.ndarray:
        return np.asarray(noise + (1 - 2 * noise) * probability)

    prior_probability = observed(expit(known_prior))
    truth = pd.DataFrame(
        {
            "opportunity_id": pd.Series(ids, dtype="str"),
            "status": pd.Series(status, dtype="str"),
            "true_probability": prior_probability,
            "prior_probability": prior_probability,
            "is_open": pd.Series(~closed, dtype="boolean"),
            "created_date": _dates(created_day),
        }
    )
    snapshots = truth_snapshots = None
    if spec.snapshots:
        snapshots, truth_snapshots = _simulate(
            rng, structure, ids, latent_won, known_prior, created_day, close_day, today_day,
            numbers["amount"], observed,
        )  # fmt: skip
        last = truth_snapshots.groupby("opportunity_id", sort=False).tail(1)
        latest = last.set_index("opportunity_id")["true_probability"]
        truth["true_probability"] = (
            truth["opportunity_id"].map(latest).fillna(truth["true_probability"])
        )
        truth["last_snapshot_date"] = truth["opportunity_id"].map(
            last.set_index("opportunity_id")["snapshot_date"]
        )
    drifted = None
    if structure.drift_column is not None and structure.drift_value is not None:
        drifted = (
            structure.drift_column,
            structure.drift_value,
            pd.Timestamp(np.datetime64(structure.drift_start_day, "D")),
        )
    return World(
        spec=spec,
        opportunities=opportunities,
        snapshots=snapshots,
        truth=truth,
        truth_snapshots=truth_snapshots,
        fixed_fields=tuple(c for c in fixed if c in opportunities.columns),
        effects=tuple(effects),
        drifted=drifted,
    )


def _draw_numbers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    employees = np.round(np.exp(rng.normal(np.log(400), 1.5, n))) + 1
    return {
        "employees": employees,
        "annual_revenue": np.round(employees * np.exp(rng.normal(np.log(150_000), 0.5, n)), -3),
        "amount": np.round(np.exp(rng.normal(np.log(40_000), 1.0, n)), -2),
        "discount_pct": np.round(40 * rng.beta(2, 5, n), 1),
        "gross_margin_pct": np.round(20 + 70 * rng.beta(5, 2, n), 1),
        "services_share": np.round(0.8 * rng.beta(2, 5, n), 3),
        "competitor_count": rng.poisson(1.5, n).astype(float),
    }


def _blank(
    rng: np.random.Generator, spec: WorldSpec, structure: _Structure, codes: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Give, per column, the rows whose value is blank (at most one blank static field a deal)."""
    if spec.missing_share <= 0:
        return {}
    columns = [
        c
        for c in structure.values
        if c != structure.drift_column and len(structure.values[c]) <= 20
    ]
    # Prefer fields that matter: a blank in a field nobody uses is no test.
    weights = np.array([3.0 if c in structure.category_effects else 1.0 for c in columns])
    chosen = rng.choice(columns, min(3, len(columns)), replace=False, p=weights / weights.sum())
    n = len(next(iter(codes.values())))
    blank = rng.random(n) < spec.missing_share
    which = rng.integers(0, len(chosen), n)
    return {str(column): np.flatnonzero(blank & (which == i)) for i, column in enumerate(chosen)}


def _static_columns(structure: _Structure) -> list[str]:
    return [*structure.values, *_NUMBERS]


def _opportunities(
    ids: np.ndarray,
    structure: _Structure,
    codes: dict[str, np.ndarray],
    numbers: dict[str, np.ndarray],
    missing: dict[str, np.ndarray],
    created_day: np.ndarray,
    close_day: np.ndarray,
    status: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = len(ids)
    columns: dict[str, object] = {
        "opportunity_id": ids,
        "account_id": np.asarray([f"A{i:05d}" for i in rng.integers(0, max(n // 3, 1), n)]),
        "owner_id": np.asarray([f"U{i:03d}" for i in rng.integers(0, max(n // 150, 3), n)]),
        "created_date": _dates(created_day),
        "close_date": _dates(close_day),
        "status": status,
    }
    for column, levels in structure.values.items():
        text = np.asarray(levels, dtype=object)[codes[column]]
        if column in missing:
            text[missing[column]] = None
        if column in _BOOLS:
            flags = pd.Series(text == "true", dtype="boolean")
            if column in missing:
                flags[missing[column]] = pd.NA
            columns[column] = flags
        else:
            columns[column] = text
    columns.update(numbers)
    return _canonical(pd.DataFrame(columns), OPPORTUNITIES)


def _simulate(
    rng: np.random.Generator,
    structure: _Structure,
    ids: np.ndarray,
    won: np.ndarray,
    prior_logit: np.ndarray,
    created_day: np.ndarray,
    close_day: np.ndarray,
    today_day: int,
    amount: np.ndarray,
    observed: Callable[[np.ndarray], np.ndarray],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give weekly snapshots (from creation to the day before close, or today) and their truth.

    Milestone hazards and engagement moves depend on the latent outcome ``won``; the truth at each
    snapshot is the prior plus the log likelihood ratio of the path so far.
    """
    n = len(ids)
    milestones = len(BOOL_MILESTONES)
    ratio = structure.hazard_log_ratio
    hazard_won = np.clip(structure.hazard_base * np.exp(ratio / 2), 1e-4, 0.9)
    hazard_lost = np.clip(structure.hazard_base * np.exp(-ratio / 2), 1e-4, 0.9)
    r = structure.engagement_log_ratio
    up = np.clip([structure.engagement_up * np.exp(-r / 2), structure.engagement_up * np.exp(r / 2)], 0, 0.45)  # fmt: skip
    down = np.clip([structure.engagement_down * np.exp(r / 2), structure.engagement_down * np.exp(-r / 2)], 0, 0.45)  # fmt: skip
    met = np.zeros((n, milestones), dtype=bool)
    engagement = rng.integers(0, 2, n)
    stakeholder_rate = rng.uniform(0.02, 0.12, n)
    planned = created_day + np.round((close_day - created_day) * rng.uniform(0.6, 1.1, n))
    expected = planned.copy()
    log_ratio = np.zeros(n)
    end_day = np.minimum(close_day - 1, today_day)
    records: dict[str, list[np.ndarray]] = {k: [] for k in ("deal", "week", "engagement", "llr")}
    met_records: list[np.ndarray] = []
    expected_records: list[np.ndarray] = []
    week = 0
    outcome = won.astype(int)
    while True:
        day = created_day + 7 * week
        alive = day <= end_day
        if not alive.any():
            break
        if week:
            draws = rng.random((n, milestones))
            hazard = np.where(won[:, None], hazard_won, hazard_lost)
            newly = ~met & (draws < hazard) & alive[:, None]
            unmet = ~met & alive[:, None]
            log_ratio += np.where(
                newly,
                np.log(hazard_won / hazard_lost),
                np.where(unmet, np.log((1 - hazard_won) / (1 - hazard_lost)), 0.0),
            ).sum(axis=1)
            met |= newly
            can_up, can_down = engagement < 4, engagement > 0
            p_up = np.where(can_up, up[outcome], 0.0)
            p_down = np.where(can_down, down[outcome], 0.0)
            move = rng.random(n)
            step = np.where(move < p_up, 1, np.where(move < p_up + p_down, -1, 0)) * alive
            stay_won = 1 - np.where(can_up, up[1], 0) - np.where(can_down, down[1], 0)
            stay_lost = 1 - np.where(can_up, up[0], 0) - np.where(can_down, down[0], 0)
            log_ratio += alive * np.select(
                [step == 1, step == -1],
                [np.log(up[1] / up[0]), np.log(down[1] / down[0])],
                np.log(stay_won / stay_lost),
            )
            engagement = engagement + step
            expected = np.where(day >= expected, day + rng.integers(14, 43, n), expected)
        index = np.flatnonzero(alive)
        records["deal"].append(index)
        records["week"].append(np.full(len(index), week))
        records["engagement"].append(engagement[index])
        records["llr"].append(log_ratio[index])
        met_records.append(met[index])
        expected_records.append(expected[index])
        week += 1
    deal = np.concatenate(records["deal"])
    weeks = np.concatenate(records["week"])
    met_all = np.concatenate(met_records)
    snapshot_day = created_day[deal] + 7 * weeks
    count = met_all.sum(axis=1)
    stage = np.minimum(count * len(STAGES) // (milestones + 1), len(STAGES) - 1)
    frame: dict[str, object] = {
        "opportunity_id": ids[deal],
        "snapshot_date": _dates(snapshot_day),
        "stage": np.asarray(STAGES, dtype=object)[stage],
        "crm_probability": np.asarray(STAGE_PROBABILITY)[stage],
        "amount": amount[deal],
        "close_date": _dates(np.concatenate(expected_records)),
        **{name: met_all[:, i] for i, name in enumerate(BOOL_MILESTONES)},
        "stakeholders_identified": np.round(1 - np.exp(-stakeholder_rate[deal] * weeks), 2),
        "champion_engagement": np.asarray(ENGAGEMENTS, dtype=object)[
            np.concatenate(records["engagement"])
        ],
    }
    snapshots = _canonical(pd.DataFrame(frame), SNAPSHOTS)
    posterior = expit(prior_logit[deal] + np.concatenate(records["llr"]))
    truth = pd.DataFrame(
        {
            "opportunity_id": pd.Series(ids[deal], dtype="str"),
            "snapshot_date": _dates(snapshot_day),
            "true_probability": observed(posterior),
        }
    )
    order = np.lexsort((snapshot_day, deal))
    return (
        snapshots.iloc[order].reset_index(drop=True),
        truth.iloc[order].reset_index(drop=True),
    )


def _dates(days: np.ndarray) -> pd.Series:
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return pd.Series(values)


def _canonical(frame: pd.DataFrame, table: TableSpec) -> pd.DataFrame:
    """Give ``frame`` with contract dtypes (columns outside the contract dropped)."""
    converted: dict[str, pd.Series] = {}
    for name in [n for n in table.names() if n in frame.columns]:
        kind = table[name].kind
        column = frame[name]
        if kind in ("string", "category"):
            converted[name] = column.astype("str").where(column.notna())
        elif kind == "date":
            converted[name] = column.astype("datetime64[ns]")
        elif kind == "bool":
            converted[name] = column.astype("boolean")
        else:
            converted[name] = column.astype("float64")
    return pd.DataFrame(converted, index=frame.index)


__all__ = [
    "NEW_COMPETITOR",
    "WORLD_TODAY",
    "Effect",
    "World",
    "WorldSpec",
    "draw_world_spec",
    "generate_world",
]
