"""Scoring: probability, band, reasons, next best milestone, recommendation and value for each open deal.

:func:`score_deals` works on one chunk of point-in-time rows and returns the
scored frame; :func:`finish_scores` adds what needs the whole pipeline
(percentiles) and the comparison with a previous run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from winmodel.errors import InputError, Problem
from winmodel.features.label_drift import (
    add_drift_warnings,
    below_test_chances,
    shifted_segments,
)
from winmodel.features.milestones import MILESTONES
from winmodel.features.rows import AS_OF, EXPECTED_CLOSE
from winmodel.modeling import treeshap
from winmodel.modeling.horizon import HORIZON_COLUMNS
from winmodel.modeling.model import WinModel
from winmodel.scoring.decide import AMOUNT_FLAG, AMOUNT_LIMIT, deal_desk_flags, decide, economics
from winmodel.scoring.explain import (
    item_matrix,
    milestone_uplifts,
    next_best_milestone,
    points_balance,
    points_from_contributions,
    reversed_rule,
    seller_step,
    top_items,
)
from winmodel.scoring.horizons import horizon_block
from winmodel.scoring.reasons import (
    Catalogue,
    balance_column,
    item_polarity,
    milestone_labels,
    reason_column,
    reversal_notes,
)
from winmodel.settings import Bands, ScoreConfig
from winmodel.timing import NO_TIMER, Timer

#: Features carrying at least this share of the model's gain must be in the input.
ESSENTIAL_GAIN_SHARE = 0.05
TREND_POINTS = 5
#: A reason whose effect runs against the usual rule (training freed the direction) is shown, with
#: its note, only from this many points: smaller ones stay in "other factors", as any reason
#: reading backwards does.
NOTED_REASON_MIN_POINTS = 1.0

OUTPUT_COLUMNS = (
    "opportunity_id",
    "account_id",
    "owner_id",
    AS_OF,
    "amount",
    "close_date",
    "win_probability",
    "score",
    "band",
    "percentile",
    "reasons_for",
    "reasons_against",
    "next_best_milestone",
    "next_best_milestone_uplift",
    "expected_margin",
    "cost_ahead",
    "expected_value",
    "recommendation",
    "decision_rule",
    "recommendation_reason",
    "points_balance",
    "deal_desk_flags",
    AMOUNT_FLAG,
    "data_warnings",
    "model_version",
    "uncalibrated_probability",
    "baseline_points",
    "other_factors_points",
    "calibration_points",
    "crm_probability",
)


def check_model_input(model: WinModel, rows: pd.DataFrame, file: str) -> None:
    """Raise InputError naming the model's essential input columns that the scored data lacks.

    A column is essential when the features built from it carry at least
    5 % of the model's total gain; other missing columns only produce
    per-deal data warnings.
    """
    gain = model.metadata.get("gain_share", {})
    builder = model.feature_builder
    missing = [name for name in builder.input_columns() if name not in rows]
    essential = [name for name in missing if gain.get(name, 0.0) >= ESSENTIAL_GAIN_SHARE]
    if essential:
        listed = ", ".join(f"{name} ({gain[name]:.0%} of the model's gain)" for name in essential)
        raise InputError(
            Problem(
                file=file,
                column=", ".join(essential),
                problem=f"the model was trained with columns this input does not have: {listed}",
                fix="map these columns in the mapping file (or score with snapshots if the model was "
                "trained on them), or retrain a model on data without them",
                rows=len(rows),
            )
        )


def contributions(model: WinModel, matrix: np.ndarray, threads: int = 0) -> np.ndarray:
    """Give exact TreeSHAP contributions (log-odds, base value last) for a feature matrix."""
    return model.contributions(matrix, threads=threads)


def milestone_flags(rows: pd.DataFrame) -> np.ndarray:
    """Give, per row, whether each milestone is met (what the what-if re-scoring starts from)."""
    if rows.empty:
        return np.zeros((0, len(MILESTONES)))
    return np.column_stack([milestone.met(rows).to_numpy(dtype=float) for milestone in MILESTONES])


def distinct_rows(*arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give (index of the first of each distinct row, the distinct row of every row) across float arrays."""
    return treeshap.distinct_rows(np.hstack([np.asarray(a, dtype="float64") for a in arrays]))


def band_of(probability: np.ndarray, bands: Bands) -> np.ndarray:
    """Give A (best) to D per probability from the configured cut-offs."""
    return np.select(
        [probability >= bands.a, probability >= bands.b, probability >= bands.c],
        ["A", "B", "C"],
        default="D",
    ).astype(object)


def score_deals(
    model: WinModel,
    rows: pd.DataFrame,
    config: ScoreConfig,
    catalogue: Catalogue,
    model_version: str,
    threads: int = 0,
    timer: Timer = NO_TIMER,
) -> pd.DataFrame:
    """Give one scored row per input row: probability, reasons, next best milestone, decision.

    ``rows`` are point-in-time rows (one per open deal) as built by
    :mod:`winmodel.features.rows`. Percentiles are added later by :func:`finish_scores`.
    """
    rows = rows.reset_index(drop=True)
    with timer.stage("features"):
        matrix = model.matrix(rows)
        # Deals with identical features get identical explanations: explain each distinct row once.
        first, inverse = distinct_rows(matrix, milestone_flags(rows))
    with timer.stage("explain"):
        contribution = contributions(model, matrix[first], threads)[inverse]
    with timer.stage("predict"):
        raw_logit = contribution.sum(axis=1)
        probability = model.calibrator.transform(raw_logit)
        distinct = rows.iloc[first].reset_index(drop=True)
        uplifts = milestone_uplifts(
            model,
            distinct,
            probability[first],
            threads,
            matrix=matrix[first],
            raw_logit=raw_logit[first],
        )
    with timer.stage("reasons"):
        grouping, items = item_matrix(model)
        points, baseline_points, raw_points = points_from_contributions(contribution, grouping)
        polarity = item_polarity(distinct, items, catalogue)[inverse]
        # An effect against the usual rule is shown, with a note, where the company's own closed
        # deals reverse the rule (training freed it); otherwise it stays in "other factors".
        eligible = ~(((polarity > 0) & (points < 0)) | ((polarity < 0) & (points > 0)))
        reversed_by = reversed_rule(model, matrix, contribution, grouping)
        notes = None
        if reversed_by is not None:
            # A note is a long sentence: only an effect of a point or more earns it. A smaller
            # one stays in "other factors" even where its sentence has no polarity to hide it.
            marked = reversed_by[0] >= 0
            large = np.abs(points) >= NOTED_REASON_MIN_POINTS
            notes = reversal_notes(np.where(large, reversed_by[0], -1), *reversed_by[1:], catalogue)
            eligible = np.where(marked, large, eligible)
        positive, negative = top_items(points, config.reasons_per_side, eligible)
        balance = points_balance(
            points, positive, negative, baseline_points, raw_points, probability
        )
        milestone, uplift = next_best_milestone(uplifts)
        milestone = seller_step(milestone.iloc[inverse].reset_index(drop=True), rows)
        uplift = uplift.iloc[inverse].reset_index(drop=True)
        band = band_of(probability, config.bands)
        money_figures = economics(rows, probability, config.cost)
        limit = (
            float(pd.to_numeric(rows[AMOUNT_LIMIT], errors="coerce").max())
            if AMOUNT_LIMIT in rows
            else None
        )
        decisions = decide(
            rows,
            probability,
            band,
            money_figures,
            milestone,
            uplift,
            config.recommendation,
            catalogue,
            amount_limit=limit if limit is not None and np.isfinite(limit) else None,
        )
        reasons_for = reason_column(rows, items, positive, points, catalogue, notes)
        reasons_against = reason_column(rows, items, negative, points, catalogue, notes)
        desk = deal_desk_flags(rows, config.deal_desk, catalogue)
        shifts = model.metadata.get("segment_shifts", [])
        warnings = add_drift_warnings(
            model.feature_builder.data_warnings(rows),
            rows,
            model.metadata.get("drifted_values", []),
            shifted_segments(shifts),
            model.metadata.get("drifted_lags", []),
            below_test_chances(shifts),
        )
    scored = {
        "opportunity_id": rows["opportunity_id"].astype("str"),
        "account_id": rows.get("account_id"),
        "owner_id": rows.get("owner_id"),
        AS_OF: rows.get(AS_OF),
        "amount": rows.get("amount"),
        "close_date": rows.get(EXPECTED_CLOSE, rows.get("close_date")),
        "win_probability": np.round(probability, 6),
        "score": np.clip(np.round(probability * 100), 1, 99).astype(int),
        "band": band,
        "reasons_for": reasons_for,
        "reasons_against": reasons_against,
        "next_best_milestone": milestone_labels(milestone, catalogue),
        "next_best_milestone_uplift": np.round(uplift.to_numpy(), 1),
        "expected_margin": np.round(money_figures.expected_margin, 0),
        "cost_ahead": np.round(money_figures.cost_ahead, 0),
        "expected_value": np.round(money_figures.expected_value, 0),
        "recommendation": decisions.recommendation,
        "decision_rule": decisions.rule,
        "recommendation_reason": decisions.reason,
        "points_balance": balance_column(balance, catalogue),
        "deal_desk_flags": desk,
        # Always present (one schema for every engine); False where no plausible-amount limit was
        # given or the amount is below it.
        AMOUNT_FLAG: (
            rows[AMOUNT_FLAG].astype("boolean").fillna(False).astype(bool)
            if AMOUNT_FLAG in rows
            else pd.Series(False, index=rows.index, dtype=bool)
        ),
        "data_warnings": warnings,
        "model_version": model_version,
        "uncalibrated_probability": np.round(raw_points / 100.0, 6),
        "baseline_points": balance.baseline,
        "other_factors_points": balance.other,
        "calibration_points": balance.calibration,
        "crm_probability": rows.get("crm_probability"),
    }
    frame = pd.DataFrame({name: values for name, values in scored.items() if values is not None})
    with timer.stage("horizons"):
        horizons = horizon_block(model, rows, probability, matrix)
    return pd.concat([frame, horizons], axis=1) if len(horizons.columns) else frame


def item_points(model: WinModel, rows: pd.DataFrame, threads: int = 0) -> pd.DataFrame:
    """Give the full points table per deal and business item, with the baseline (for --shap-out)."""
    matrix = model.matrix(rows)
    grouping, items = item_matrix(model)
    points, baseline, raw_points = points_from_contributions(
        contributions(model, matrix, threads), grouping
    )
    table = pd.DataFrame(points, columns=[f"points.{item}" for item in items])
    table.insert(0, "baseline_points", baseline)
    table.insert(0, "opportunity_id", rows["opportunity_id"].astype("str").to_numpy())
    table["uncalibrated_points"] = raw_points
    return table


def shap_table(model: WinModel, rows: pd.DataFrame, threads: int = 0) -> pd.DataFrame:
    """Give the full log-odds contribution matrix per deal and model feature, with the base value."""
    values = contributions(model, model.matrix(rows), threads)
    table = pd.DataFrame(values[:, :-1], columns=[f"shap.{name}" for name in model.feature_names])
    table.insert(0, "opportunity_id", rows["opportunity_id"].astype("str").to_numpy())
    table["base_value"] = values[:, -1]
    return table


def finish_scores(scored: pd.DataFrame, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Give the scored pipeline with ``percentile`` (0-100 within it) and, with a previous run, change and trend."""
    ranks = scored["win_probability"].rank(method="average", pct=True)
    scored = scored.assign(percentile=np.round(100 * ranks, 1))
    if previous is not None:
        earlier = pd.DataFrame(
            {
                "opportunity_id": previous["opportunity_id"].astype("str"),
                "_previous_score": pd.to_numeric(previous["score"], errors="coerce"),
            }
        )
        earlier = earlier.drop_duplicates("opportunity_id")
        merged = scored.merge(earlier, on="opportunity_id", how="left")
        change = merged["score"] - merged["_previous_score"]
        trend = np.select(
            [change.isna(), change >= TREND_POINTS, change <= -TREND_POINTS],
            ["new", "up", "down"],
            default="flat",
        )
        scored = merged.drop(columns="_previous_score").assign(score_change=change, trend=trend)
    known = (*OUTPUT_COLUMNS, *HORIZON_COLUMNS)
    ordered = [c for c in known if c in scored] + [c for c in scored if c not in known]
    return scored[ordered]
