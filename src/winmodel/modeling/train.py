"""Training: time splits, maturity cut-off, LightGBM with a bounded search, calibration, backtest.

Everything here is pure: frames and settings in, a :class:`TrainingResult` out.
The job in :mod:`winmodel.jobs.train` reads the data and records the result in MLflow.

Splits are all by close date. From newest to oldest::

    | ... train ... | validation (early stopping + calibration) | holdout (test, gate) |

The rolling-origin backtest repeats the same recipe with earlier cut-offs. Deals
created within ``maturity_days`` of a training cut-off are left out of that
training set: only the fast ones (mostly wins) could have closed by then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import lightgbm as lgb
import numpy as np
import pandas as pd

from winmodel.data.contract import long_cycle_days
from winmodel.errors import GateError, Problem
from winmodel.features.builder import FeatureBuilder
from winmodel.features.label_drift import (
    DIMENSIONS,
    describe_drift,
    describe_lag,
    label_drift,
    model_lag,
)
from winmodel.features.leakage import (
    POINT_IN_TIME_FEATURES,
    LeakageReport,
    LifetimeContext,
    check_leakage,
)
from winmodel.features.milestones import milestone_count
from winmodel.features.rows import AS_OF
from winmodel.modeling.blend import blend_boosters
from winmodel.modeling.calibrate import Calibrator, sigmoid
from winmodel.modeling.evaluate import (
    HEADLINE,
    brier_skill_share,
    classification_metrics,
    evaluation_moments,
    fit_hist_gradient_boosting_peer,
    fit_logistic_baseline,
    pooled_log_loss,
    reliability_table,
)
from winmodel.modeling.model import WinModel, explanation_cost
from winmodel.modeling.segment_shift import (
    SegmentShift,
    find_segment_shifts,
    raw_shift,
    shiftable_dimensions,
    with_shift_trees,
)
from winmodel.settings import ModelSettings, ShapeCandidate, TrainConfig

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Fold:
    """One train / validation / test arrangement by close date (windows are [start, end))."""

    name: str
    train_end: pd.Timestamp
    validation_end: pd.Timestamp
    test_end: pd.Timestamp


@dataclass
class TrainingResult:
    """What a training produced: the model and every figure the job records."""

    model: WinModel
    holdout_metrics: pd.DataFrame
    holdout_by_stage: pd.DataFrame
    holdout_by_segment: pd.DataFrame
    backtest: pd.DataFrame
    search: pd.DataFrame
    leakage: LeakageReport
    reliability_before: pd.DataFrame
    reliability_after: pd.DataFrame
    holdout_predictions: pd.DataFrame
    feature_importance: pd.DataFrame
    maturity_days: int
    folds: list[Fold]
    final_fold: Fold
    shape: ShapeCandidate
    warnings: list[str] = field(default_factory=list)
    oracle: dict[str, float] = field(default_factory=dict)
    #: winmodel's holdout metrics at every moment of the deals' lives (HEADLINE first).
    holdout_by_moment: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Why a baseline is not shown (leaked, or a flat export's final CRM probability).
    baseline_notes: list[str] = field(default_factory=list)
    #: The recency half-lives compared on the search folds (empty when none were configured).
    recency_search: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Win rate per value of each win dimension, newest six months against before
    #: (:func:`winmodel.features.label_drift.label_drift`).
    label_drift: pd.DataFrame = field(default_factory=pd.DataFrame)


# --------------------------------------------------------------------------- checks


def check_sufficiency(
    won: int, lost: int, *, minimum: int, comfortable: int, file: str
) -> list[str]:
    """Give warnings for thin data; raise GateError when a class has fewer than ``minimum`` deals."""
    if won < minimum or lost < minimum:
        raise GateError(
            Problem(
                file=file,
                column="status",
                problem=f"too few closed deals to learn from: {won} won and {lost} lost "
                f"(at least {minimum} of each are needed)",
                fix="export a longer history, check the status mapping (won/lost values), "
                "or lower training.min_deals_per_class in the config if you accept a weak model",
            ).render()
        )
    if won < comfortable or lost < comfortable:
        return [
            f"only {won} won and {lost} lost closed deals: scores will be noisy "
            f"(fewer than {comfortable} of a class)"
        ]
    return []


def default_maturity_days(cycle_days: pd.Series) -> int:
    """Give the maturity cut-off: the 80th percentile of closed deals' cycle length, 14 to 270 days."""
    cycle = long_cycle_days(cycle_days)
    return 0 if cycle is None else int(np.clip(cycle, 14, 270))


# --------------------------------------------------------------------------- splits


def plan_folds(close_dates: pd.Series, config: TrainConfig) -> tuple[list[Fold], Fold, list[str]]:
    """Give the backtest folds and the final fold from the closed deals' close dates.

    Falls back to quantiles of the close date when the history is too short for
    month windows (with a warning); the order in time is always kept. "Too short" includes a
    history whose month windows leave no backtest fold (12 to 16 months with the defaults): with
    none, the shape search would not run and the first candidate would ship unjudged.
    """
    splits = config.splits
    dates = pd.to_datetime(close_dates).dropna()
    warnings: list[str] = []
    last_month = dates.max().to_period("M")
    months_needed = splits.holdout_months + splits.calibration_months + 6
    span_months = (last_month - dates.min().to_period("M")).n + 1
    room = span_months - 6 - splits.holdout_months - 2 * splits.calibration_months
    count = min(splits.backtest_folds, max(room // splits.backtest_fold_months, 0))
    if span_months >= months_needed and (count or not splits.backtest_folds):

        def month_start(offset: int) -> pd.Timestamp:
            return (last_month - offset + 1).to_timestamp()

        test_end = month_start(0)
        holdout_start = month_start(splits.holdout_months)
        validation_start = month_start(splits.holdout_months + splits.calibration_months)
        final = Fold("holdout", validation_start, holdout_start, test_end)
        # Backtest folds repeat the recipe with earlier cut-offs, their tests ending where the final
        # validation starts, each with its own validation months and at least 6 months to train on.
        folds = []
        fold_months = splits.backtest_fold_months
        for k in range(count, 0, -1):
            end_offset = splits.holdout_months + splits.calibration_months + (k - 1) * fold_months
            fold_test_end = month_start(end_offset)
            fold_test_start = month_start(end_offset + fold_months)
            fold_train_end = month_start(end_offset + fold_months + splits.calibration_months)
            folds.append(
                Fold(
                    f"backtest {fold_test_start:%Y-%m}",
                    fold_train_end,
                    fold_test_start,
                    fold_test_end,
                )
            )
        if count < splits.backtest_folds:
            warnings.append(
                f"history spans {span_months} months: {count} backtest folds instead of "
                f"{splits.backtest_folds}"
            )
        return folds, final, warnings
    too_short = (
        f"history spans only {span_months} months"
        if span_months < months_needed
        else f"history spans {span_months} months, too few for a backtest fold of whole months"
    )
    warnings.append(
        f"{too_short}: splits use quantiles of the close date "
        "(oldest 70 % train, next 15 % validation, newest 15 % holdout)"
    )
    # pandas-stubs lacks quantile for datetime series, which pandas supports.
    quantiles = dates.quantile([0.55, 0.7, 0.85]).to_list()  # type: ignore[misc]
    end = dates.max() + pd.Timedelta(days=1)
    final = Fold("holdout", pd.Timestamp(quantiles[1]), pd.Timestamp(quantiles[2]), end)
    folds = [
        Fold(
            "backtest",
            pd.Timestamp(quantiles[0]),
            pd.Timestamp(quantiles[1]),
            pd.Timestamp(quantiles[2]),
        )
    ]
    return folds, final, warnings


def _window(rows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    close = rows["close_date"]
    return ((close >= start) & (close < end)).to_numpy()


def _train_mask(rows: pd.DataFrame, end: pd.Timestamp, maturity_days: int) -> np.ndarray:
    """Give rows of deals closed before ``end`` and created early enough to have had a fair chance."""
    mature = rows["created_date"] < end - pd.Timedelta(days=maturity_days)
    return ((rows["close_date"] < end) & mature).to_numpy()


# --------------------------------------------------------------------------- fitting


def _lgb_params(
    shape: ShapeCandidate, config: TrainConfig, monotone: Sequence[int] = ()
) -> dict[str, str | float | list[int]]:
    # Monotone constraints (checked_monotone): the prediction never falls when a constrained
    # feature rises. LightGBM's "advanced" method, not "basic": on the tuning half of
    # `make bench-quality` basic cost 0.030 median log loss (0.4791 vs 0.4496); advanced keeps the
    # guarantee on predictions, and a reason whose TreeSHAP sign reads backwards goes to "other
    # factors" (scoring.reasons.CASE_POLARITY).
    constraints: dict[str, str | list[int]] = (
        {"monotone_constraints": list(monotone), "monotone_constraints_method": "advanced"}
        if any(monotone)
        else {}
    )
    return {
        **constraints,
        "objective": "binary",
        "learning_rate": shape.learning_rate,
        "num_leaves": shape.num_leaves,
        "max_depth": shape.max_depth,
        "min_data_in_leaf": shape.min_child_samples,
        "feature_fraction": shape.feature_fraction,
        "feature_fraction_seed": config.seed,
        "lambda_l2": shape.lambda_l2,
        "min_data_per_group": 50,
        "cat_smooth": 20.0,
        "max_cat_to_onehot": 8,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": config.model.threads,
        "verbosity": -1,
    }


def checked_monotone(
    matrix: np.ndarray,
    won: np.ndarray,
    names: Sequence[str],
    directions: Sequence[int],
    contradiction_z: float = ModelSettings.model_fields["monotone_contradiction_z"].default,
    large_z: float | None = ModelSettings.model_fields["monotone_contradiction_z_large"].default,
    large_deals: int = ModelSettings.model_fields["monotone_large_deals"].default,
) -> tuple[tuple[int, ...], list[str]]:
    """Give the monotone constraints the training deals do not contradict, and what was dropped.

    The constraints are a business prior (meeting a milestone or a qualification criterion never
    lowers a deal's probability). Where a company's own closed deals clearly say the opposite
    (correlation with winning of the other sign, beyond ``contradiction_z`` standard errors, or
    ``large_z`` where the feature is judged on at least ``large_deals`` deals),
    forcing the prior would cost accuracy and hide a finding worth telling: that feature is left
    unconstrained and named. ``matrix`` holds one row per deal.
    """
    kept = list(directions)
    dropped: list[str] = []
    for index, direction in enumerate(directions):
        column = matrix[:, index]
        seen = ~np.isnan(column)
        if not direction or seen.sum() < 30:
            continue
        x, y = column[seen], won[seen].astype(float)
        if x.std() == 0 or y.std() == 0:
            continue
        correlation = float(np.corrcoef(x, y)[0, 1])
        z = correlation * np.sqrt(seen.sum())
        bar = contradiction_z if large_z is None or seen.sum() < large_deals else large_z
        if direction * z < -bar:
            kept[index] = 0
            dropped.append(
                f"{names[index]}: the closed deals say the opposite of the business rule "
                f"(correlation with winning {correlation:+.2f}, {abs(z):.1f} s.e.); left unconstrained"
            )
    return tuple(kept), dropped


@dataclass
class _Data:
    """The training rows as arrays, computed once."""

    matrix: np.ndarray
    won: np.ndarray
    weight: np.ndarray
    is_last: np.ndarray
    rows: pd.DataFrame
    #: LightGBM monotone_constraints per feature (empty: none).
    monotone: tuple[int, ...] = ()


def describe_shape(shape: ShapeCandidate) -> str:
    """Give 'leaves=7 depth=3', or 'logistic (L2 2.0) as stumps' for the distilled regression.

    A blend: 'leaves=2 depth=1 (75%) + logistic (L2 10) as stumps (25%)'.
    """
    if shape.blend_with is not None:
        return (
            f"{describe_shape(shape.own())} ({shape.blend_weight:.0%}) + "
            f"{describe_shape(shape.blend_with)} ({1 - shape.blend_weight:.0%})"
        )
    if shape.family == "logistic":
        return f"logistic (L2 {shape.lambda_l2:g}) as stumps"
    return f"leaves={shape.num_leaves} depth={shape.max_depth}"


def _dataset(
    matrix: np.ndarray, label: np.ndarray, weight: np.ndarray, categorical: list[int]
) -> lgb.Dataset:
    """Give a LightGBM training set (labels may be probabilities, for the distillation)."""
    return lgb.Dataset(
        matrix,
        label,
        weight=weight,
        categorical_feature=categorical,
        free_raw_data=True,
        params={"verbosity": -1},
    )


def _train(
    data: _Data,
    train: np.ndarray,
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    weight: np.ndarray,
    *,
    rounds: int | None = None,
    valid: np.ndarray | None = None,
) -> tuple[lgb.Booster, int]:
    """Give the shape's booster trained on the ``train`` rows, and the tree count a refit scales.

    A blend trains its trees shape (``rounds``, or early-stopped on ``valid``) and its logistic
    partner on the same rows and ships them as one booster (:func:`blend_boosters`); the count
    is its trees shape's (the partner is always distilled to ``model.max_trees``).
    """
    own = _train_one(
        data, train, shape.own(), config, categorical, weight, rounds=rounds, valid=valid
    )
    if shape.blend_with is None:
        return own, own.num_trees()
    partner = _train_one(data, train, shape.blend_with, config, categorical, weight)
    return blend_boosters(own, shape.blend_weight, partner), own.num_trees()


def _train_one(
    data: _Data,
    train: np.ndarray,
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    weight: np.ndarray,
    *,
    rounds: int | None = None,
    valid: np.ndarray | None = None,
) -> lgb.Booster:
    """Give one (unblended) shape's booster trained on the ``train`` rows.

    Trees: ``rounds`` trees, or early-stopped on the ``valid`` rows (then only the trees kept, so
    the model explains what it predicts). ``family: logistic``: see :func:`_distilled_logistic`.
    """
    if shape.family == "logistic":
        return _distilled_logistic(data, train, shape, config, categorical, weight)
    train_set = _dataset(data.matrix[train], data.won[train], weight[train], categorical)
    params = _lgb_params(shape, config, data.monotone)
    if valid is None:
        return lgb.train(params, train_set, num_boost_round=rounds or config.model.max_trees)
    valid_set = lgb.Dataset(
        data.matrix[valid],
        data.won[valid],
        weight=data.weight[valid],
        categorical_feature=categorical,
        reference=train_set,
    )
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.model.max_trees,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(config.model.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def _distilled_logistic(
    data: _Data,
    train: np.ndarray,
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    weight: np.ndarray,
) -> lgb.Booster:
    """Give a penalised logistic regression distilled into LightGBM stumps.

    The regression (one-hot categories, scaled numbers with missing-value indicators, L2 penalty
    ``shape.lambda_l2`` = 1 / C) is fitted on the ``train`` rows; stumps of ``shape`` are then
    boosted with cross-entropy towards its probabilities on the same rows, under the same
    monotone constraints. On those rows the booster's raw score is the regression's log-odds up
    to the stumps' steps; between them, on a small history, other sums of stumps fit as well (a
    400-deal flat world: correlation 0.97 on its 190 training deals, 0.87 on later deals, AUC
    0.65 against the regression's 0.77). The search and the backtest judge this booster, not the
    regression, so what ships is what was measured. Distilling also on rows drawn column by
    column matches the regression everywhere, but was not better on the unseen worlds
    (benchmarks/quality.md, rejected). An additive model: each TreeSHAP contribution is one
    feature's own term, and it is saved, explained and scored like any other booster.
    """
    names = [f"f{position}" for position in range(data.matrix.shape[1])]
    features = pd.DataFrame(data.matrix[train], columns=names)
    logistic = fit_logistic_baseline(
        features,
        data.won[train],
        weight[train],
        [names[position] for position in categorical],
        config.seed,
        inverse_penalty=1.0 / max(shape.lambda_l2, 1e-6),
    )
    soft = logistic.predict_proba(features)[:, 1]
    params = {
        **_lgb_params(shape, config, data.monotone),
        # Fidelity to the regression, not regularisation: that is the regression's job.
        "objective": "cross_entropy",
        "lambda_l2": 0.0,
        "min_data_per_group": shape.min_child_samples,
        "cat_smooth": 1.0,
        "cat_l2": 0.0,
    }
    dataset = _dataset(data.matrix[train], soft, weight[train], categorical)
    return lgb.train(params, dataset, num_boost_round=config.model.max_trees)


def _recency_weight(rows: pd.DataFrame, end: pd.Timestamp, half_life: float | None) -> np.ndarray:
    if half_life is None:
        return np.ones(len(rows))
    age = (end - rows["close_date"]).dt.days.clip(lower=0).to_numpy(dtype=float)
    weight: np.ndarray = 0.5 ** (age / half_life)
    return weight


@dataclass
class _FoldFit:
    booster: lgb.Booster
    calibrator: Calibrator
    test: np.ndarray
    raw_logit: np.ndarray  # on test rows
    probability: np.ndarray  # calibrated, on test rows
    valid_raw: np.ndarray
    valid: np.ndarray
    #: The tree count a refit scales (a blend: its trees shape's; see _train).
    trees: int


def _validation_calibrator(
    data: _Data, config: TrainConfig, valid_raw: np.ndarray, valid: np.ndarray
) -> Calibrator:
    """Give the calibrator of a fold's raw scores on its validation rows."""
    return Calibrator(config.calibration.method, config.calibration.isotonic_min_deals).fit(
        valid_raw,
        data.won[valid],
        data.weight[valid],
        deals=data.rows.loc[valid, "opportunity_id"].nunique(),
    )


def _mean_log_loss(data: _Data, fold_fits: Sequence[_FoldFit]) -> float:
    """Give the fold fits' test log loss, averaged over the folds."""
    return float(
        np.mean(
            [
                classification_metrics(data.won[f.test], f.probability, data.weight[f.test])[
                    "log_loss"
                ]
                for f in fold_fits
            ]
        )
    )


def _search_record(
    data: _Data, shape: ShapeCandidate, fold_fits: Sequence[_FoldFit]
) -> dict[str, object]:
    """Give a shape's row of the search table: its mean fold log loss, trees and explanation cost."""
    if not fold_fits:
        return {**shape.model_dump(), "log_loss": float("nan"), "trees": 0.0, "explain_cost": 0.0}
    return {
        **shape.model_dump(),
        "log_loss": _mean_log_loss(data, fold_fits),
        "trees": float(np.mean([f.booster.num_trees() for f in fold_fits])),
        "explain_cost": float(np.mean([explanation_cost(f.booster) for f in fold_fits])),
    }


def _fit_fold(
    data: _Data,
    fold: Fold,
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    maturity_days: int,
) -> _FoldFit:
    rows = data.rows
    train = _train_mask(rows, fold.train_end, maturity_days)
    valid = _window(rows, fold.train_end, fold.validation_end)
    test = _window(rows, fold.validation_end, fold.test_end)
    one_class = not train.any() or data.won[train].min() == data.won[train].max()
    if one_class or not valid.any() or data.won[valid].min() == data.won[valid].max():
        raise GateError(
            f"fold '{fold.name}' has too little data (train {train.sum()} rows, "
            f"validation {valid.sum()} rows, both need won and lost deals); "
            "shorten splits.* in the config"
        )
    weight = data.weight * _recency_weight(
        rows, fold.train_end, config.training.recency_half_life_days
    )
    booster, trees = _train(data, train, shape, config, categorical, weight, valid=valid)
    # Dense matrices in, dense arrays out (the sparse return types are for sparse input).
    valid_raw = cast(
        np.ndarray,
        booster.predict(data.matrix[valid], raw_score=True, num_threads=config.model.threads),
    )
    calibrator = _validation_calibrator(data, config, valid_raw, valid)
    raw = (
        cast(
            np.ndarray,
            booster.predict(data.matrix[test], raw_score=True, num_threads=config.model.threads),
        )
        if test.any()
        else np.zeros(0)
    )
    return _FoldFit(
        booster, calibrator, test, raw, calibrator.transform(raw), valid_raw, valid, trees
    )


def _refit_with_validation(
    data: _Data,
    fitted: _FoldFit,
    fold: Fold,
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    maturity_days: int,
) -> _FoldFit:
    """Give the fold's recipe refitted on train + validation, keeping the calibration learned on validation.

    The booster that early stopping and calibration saw stops where validation
    starts, months before the test; the refit also learns from those months (the
    most recent, where drift shows first). Its tree count is the early-stopped one
    scaled by the added rows; the calibration map comes from the first booster's
    out-of-sample scores on validation. The test window stays untouched by both.
    """
    rows = data.rows
    first_train = _train_mask(rows, fold.train_end, maturity_days)
    train = _train_mask(rows, fold.validation_end, maturity_days)
    trees = max(1, round(fitted.trees * train.sum() / max(first_train.sum(), 1)))
    weight = data.weight * _recency_weight(
        rows, fold.validation_end, config.training.recency_half_life_days
    )
    booster, trees = _train(data, train, shape, config, categorical, weight, rounds=trees)
    test = fitted.test
    raw = (
        cast(
            np.ndarray,
            booster.predict(data.matrix[test], raw_score=True, num_threads=config.model.threads),
        )
        if test.any()
        else np.zeros(0)
    )
    return _FoldFit(
        booster,
        fitted.calibrator,
        test,
        raw,
        fitted.calibrator.transform(raw),
        fitted.valid_raw,
        fitted.valid,
        trees,
    )


def _fit_recipe(
    data: _Data,
    fold: Fold,
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    maturity_days: int,
    fitted: _FoldFit | None = None,
) -> _FoldFit:
    """Give the shipped recipe on a fold: early-stopped and calibrated, then refitted if the config says so."""
    fitted = fitted or _fit_fold(data, fold, shape, config, categorical, maturity_days)
    if config.model.refit_with_validation:
        return _refit_with_validation(data, fitted, fold, shape, config, categorical, maturity_days)
    return fitted


def _refit_on_all_closed(
    data: _Data,
    shipped: _FoldFit,
    shipped_rows: int,
    out_of_fold: Sequence[_FoldFit],
    end: pd.Timestamp,
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    maturity_days: int,
) -> tuple[lgb.Booster, Calibrator, np.ndarray]:
    """Give a booster refitted on every closed deal before ``end``, its out-of-fold calibrator and its rows.

    The held-out recipe's tree count (``shipped``, trained on ``shipped_rows`` rows) is scaled by the
    added rows (as in the validation refit). The
    calibration map is learned from the raw scores each fold's recipe gave its own test window
    (the backtest folds and the holdout): out of sample, time-ordered cross-fitting, from boosters
    of the same recipe trained on less data, never from the booster being shipped.
    """
    rows = data.rows
    train = _train_mask(rows, end, maturity_days)
    trees = max(1, round(shipped.trees * train.sum() / max(shipped_rows, 1)))
    weight = data.weight * _recency_weight(rows, end, config.training.recency_half_life_days)
    booster, _ = _train(data, train, shape, config, categorical, weight, rounds=trees)
    raw = np.concatenate([fit.raw_logit for fit in out_of_fold])
    won = np.concatenate([data.won[fit.test] for fit in out_of_fold])
    weights = np.concatenate([data.weight[fit.test] for fit in out_of_fold])
    deals = int(pd.concat([rows.loc[fit.test, "opportunity_id"] for fit in out_of_fold]).nunique())
    calibrator = Calibrator(config.calibration.method, config.calibration.isotonic_min_deals).fit(
        raw, won, weights, deals=deals
    )
    return booster, calibrator, train


def _saved_monotone(model: WinModel, builder: FeatureBuilder) -> tuple[int, ...]:
    """Give the constraints the model was trained with (older models: the builder's, if any)."""
    if not model.metadata.get("monotone"):
        return ()
    saved = model.metadata.get("monotone_constraints")
    return tuple(int(v) for v in saved) if saved else tuple(builder.monotone_constraints())


def refit_at(
    model: WinModel, rows: pd.DataFrame, cutoff: pd.Timestamp, config: TrainConfig
) -> WinModel:
    """Give ``model``'s recipe refitted with only what was known at ``cutoff`` (for honest replays).

    Same features, categories and shape; the booster learns from deals closed
    before ``cutoff`` minus the calibration months (maturity cut-off applied), the
    calibrator from the deals closed in those months. ``rows`` are training rows
    as from :func:`winmodel.features.rows.select_training_rows`.
    """
    rows = rows.reset_index(drop=True)
    builder = model.feature_builder
    data = _Data(
        builder.transform(rows),
        rows["status"].eq("won").to_numpy().astype(int),
        rows["sample_weight"].to_numpy(float),
        rows["is_last_before_close"].to_numpy(bool),
        rows,
        _saved_monotone(model, builder),
    )
    shape = ShapeCandidate(**model.metadata["shape"])
    train_end = (
        pd.Timestamp(cutoff).to_period("M") - config.splits.calibration_months
    ).to_timestamp()
    fold = Fold(f"refit {cutoff:%Y-%m-%d}", train_end, pd.Timestamp(cutoff), pd.Timestamp(cutoff))
    fit = _fit_recipe(
        data,
        fold,
        shape,
        config,
        builder.categorical_indices_,
        int(model.metadata["maturity_days"]),
    )
    return WinModel(
        feature_builder=builder,
        booster=fit.booster,
        calibrator=fit.calibrator,
        base_rate=model.base_rate,
        reference=model.reference,
        # A replay refits the recipe only: the shipped model's segment-shift trees are not in it.
        metadata={**model.metadata, "refit_cutoff": f"{cutoff:%Y-%m-%d}", "segment_shifts": []},
    )


# --------------------------------------------------------------------------- baselines


def _crm_baseline(rows: pd.DataFrame, fallback: float) -> np.ndarray | None:
    """Give the CRM's stage probability as a forecast, or None when the export has none."""
    if "crm_probability" not in rows or rows["crm_probability"].isna().all():
        return None
    return (
        (rows["crm_probability"].astype("float64") / 100.0).fillna(fallback).clip(0, 1).to_numpy()
    )


def _in_segment(deals: pd.DataFrame, shift: SegmentShift) -> np.ndarray:
    """Give which of ``deals`` hold the shift's value of its dimension (as the shift tree splits)."""
    return (deals[shift.dimension].astype("str") == shift.value).to_numpy()


def _shift_segments(
    data: _Data,
    builder: FeatureBuilder,
    booster: lgb.Booster,
    calibrator: Calibrator,
    holdout: np.ndarray,
    holdout_start: pd.Timestamp,
    train_mask: np.ndarray,
    config: TrainConfig,
) -> tuple[lgb.Booster, list[SegmentShift]]:
    """Give the booster with a shift tree per segment (and stage) the newest months say it lags.

    The evidence: the ``holdout`` rows' deals (the newest months' closes) against the shipped model's
    calibrated probabilities; with ``segment_shift.evidence: closed_and_created``, then those of them
    created on or after ``holdout_start``, against the probabilities with the first shifts applied.
    A refitted model has learned from the holdout's mature deals already (a new competitor's first
    outcomes, say): what it learned is not shifted again, only the gap it leaves (its calibration
    is cross-fitted, the newest-created deals are out of its training). Each deal counts once, by
    its last row before close: the values, the probability and the raw score are the same row's (a
    deal's competitor can change during its life). Also gives the shifts.
    """
    settings = config.segment_shift
    rows = data.rows
    newest = holdout & data.is_last
    dimensions = shiftable_dimensions(builder, DIMENSIONS)
    if not newest.any() or not dimensions:
        return booster, []
    stages = [("closed", newest)]
    if settings.evidence == "closed_and_created":
        stages.append(("created", newest & (rows["created_date"] >= holdout_start).to_numpy()))
    shifts: list[SegmentShift] = []
    for evidence, mask in stages:
        deals = rows.loc[mask, dimensions].reset_index(drop=True)
        raw = np.asarray(
            booster.predict(data.matrix[mask], raw_score=True, num_threads=config.model.threads)
        )
        for shift in shifts:  # judged against the shifts of the stages before
            raw = raw + shift.raw_shift * _in_segment(deals, shift)
        found = find_segment_shifts(
            deals,
            calibrator.transform(raw),
            data.won[mask].astype(float),
            dimensions,
            min_deals=settings.min_deals,
            alpha=settings.alpha / len(stages),
            family_wise=settings.family_wise,
            prior_sd=settings.prior_sd,
            below_test=settings.below_test == "average" and evidence == "closed",
        )
        for shift in found:
            moved = replace(
                shift,
                raw_shift=raw_shift(calibrator, raw[_in_segment(deals, shift)], shift.logit_shift),
                evidence=evidence,
            )
            if moved.raw_shift != 0.0:
                shifts.append(moved)
    return with_shift_trees(booster, builder, shifts, data.matrix[train_mask]), shifts


def _metrics_rows(
    label: str,
    won: np.ndarray,
    predictions: dict[str, np.ndarray | None],
    weight: np.ndarray | None = None,
) -> list[dict[str, str | float]]:
    out: list[dict[str, str | float]] = []
    for method, probability in predictions.items():
        if probability is None:
            continue
        out.append(
            {"slice": label, "method": method, **classification_metrics(won, probability, weight)}
        )
    return out


def stage_bucket(rows: pd.DataFrame) -> pd.Series:
    """Give early / mid / late per row from the share of milestones met (or the CRM probability)."""
    count, shown = milestone_count(rows)
    if shown:
        share = count / shown
        return pd.cut(share, [-0.01, 0.3, 0.7, 1.01], labels=["early", "mid", "late"]).astype("str")
    if "crm_probability" in rows and rows["crm_probability"].notna().any():
        return pd.cut(
            rows["crm_probability"].astype(float),
            [-1, 25, 55, 101],
            labels=["early", "mid", "late"],
        ).astype("str")
    return pd.Series("all", index=rows.index)


# --------------------------------------------------------------------------- the whole training


def choose_recency(
    data: _Data,
    search_folds: Sequence[Fold],
    current: Sequence[_FoldFit],
    shape: ShapeCandidate,
    config: TrainConfig,
    categorical: list[int],
    maturity_days: int,
) -> tuple[TrainConfig, pd.DataFrame]:
    """Give the config with the recency half-life chosen on the search folds, and the comparison.

    The configured half-life (``current``: the chosen shape's fits) competes with each of
    ``training.recency_half_life_candidates``; a candidate must beat it by more than the search's
    tie tolerance (weighting throws data away, so ties keep the configured one).
    """

    configured = config.training.recency_half_life_days
    options: list[tuple[float | None, TrainConfig]] = [(configured, config)]
    losses = [_mean_log_loss(data, current)]
    for half_life in config.training.recency_half_life_candidates:
        if half_life == configured:
            continue
        candidate = config.model_copy(
            update={
                "training": config.training.model_copy(update={"recency_half_life_days": half_life})
            }
        )
        fold_fits = [
            _fit_fold(data, fold, shape, candidate, categorical, maturity_days)
            for fold in search_folds
        ]
        options.append((half_life, candidate))
        losses.append(_mean_log_loss(data, fold_fits))
    best = int(np.argmin(losses))
    if losses[best] >= losses[0] * (1 - config.model.tie_tolerance):
        best = 0
    table = pd.DataFrame(
        {
            "half_life_days": [half_life for half_life, _ in options],
            "log_loss": losses,
            "chosen": [index == best for index in range(len(options))],
        }
    )
    return options[best][1], table


def _blend_candidates(
    data: _Data,
    shapes: Sequence[ShapeCandidate],
    fits: dict[int, list[_FoldFit]],
    search: pd.DataFrame,
    config: TrainConfig,
) -> list[tuple[ShapeCandidate, list[_FoldFit], dict[str, object]]]:
    """Give the blends the search judges: its best trees shape with its best logistic shape.

    One blend per ``model.blend_weights`` (the trees' share of the log-odds), judged like any
    candidate from the two shapes' own fold fits, without training: per fold, the weighted raw
    scores on the validation window are calibrated as a shape's are, and the test window scored.
    """

    def best(family: str) -> int | None:
        tried = [i for i, shape in enumerate(shapes) if shape.family == family and fits.get(i)]
        losses = search["log_loss"].to_numpy(dtype=float)
        return min(tried, key=lambda i: losses[i], default=None)

    trees, logistic = best("trees"), best("logistic")
    if trees is None or logistic is None:
        return []
    blends = []
    for weight in config.model.blend_weights:
        shape = ShapeCandidate.model_validate(
            {
                **shapes[trees].model_dump(),
                "blend_with": shapes[logistic].model_dump(),
                "blend_weight": weight,
            }
        )
        fold_fits = []
        for own, partner in zip(fits[trees], fits[logistic], strict=True):
            valid_raw = weight * own.valid_raw + (1 - weight) * partner.valid_raw
            calibrator = _validation_calibrator(data, config, valid_raw, own.valid)
            raw = weight * own.raw_logit + (1 - weight) * partner.raw_logit
            fold_fits.append(
                _FoldFit(
                    blend_boosters(own.booster, weight, partner.booster),
                    calibrator,
                    own.test,
                    raw,
                    calibrator.transform(raw),
                    valid_raw,
                    own.valid,
                    own.trees,
                )
            )
        blends.append((shape, fold_fits, _search_record(data, shape, fold_fits)))
    return blends


def _paired_gain_z(data: _Data, reference: list[_FoldFit], other: list[_FoldFit]) -> float:
    """Give how many standard errors ``other``'s log loss is below ``reference``'s, deal by deal.

    Both are fold fits of the same folds; each test deal's weighted log loss over its rows is
    compared (a deal counts once per fold), so the error is that of a paired mean over deals.
    """
    gains = []

    def loss(won: np.ndarray, probability: np.ndarray) -> np.ndarray:
        p = np.clip(probability, 1e-6, 1 - 1e-6)
        return np.asarray(-(won * np.log(p) + (1 - won) * np.log(1 - p)))

    for mine, theirs in zip(reference, other, strict=True):
        won = data.won[mine.test]
        weight = data.weight[mine.test]
        frame = (
            pd.DataFrame(
                {
                    "deal": data.rows.loc[mine.test, "opportunity_id"].to_numpy(),
                    "gain": (loss(won, mine.probability) - loss(won, theirs.probability)) * weight,
                    "weight": weight,
                }
            )
            .groupby("deal")[["gain", "weight"]]
            .sum()
        )
        gains.append((frame["gain"] / frame["weight"]).to_numpy())
    gain = np.concatenate(gains)
    spread = float(gain.std(ddof=1)) if len(gain) > 1 else 0.0
    if spread == 0:
        return 0.0
    return float(gain.mean() / (spread / np.sqrt(len(gain))))


def _pick_shape(search: pd.DataFrame, tolerance: float) -> int:
    """Give the index of the candidate to use: best log loss, ties broken by explanation cost."""
    best = search["log_loss"].min()
    tied = search[search["log_loss"] <= best * (1 + tolerance)]
    return int(tied.sort_values(["explain_cost", "log_loss"]).index[0])


def leakage_guard(
    guard_rows: pd.DataFrame,
    config: TrainConfig,
    *,
    extra_features: Sequence[tuple[str, str]] = (),
    final_state: Sequence[str] = (),
    open_deals: pd.DataFrame | None = None,
    snapshot_columns: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> tuple[FeatureBuilder, LeakageReport]:
    """Give the unfitted feature builder and the leakage guard's verdict, as training judges.

    ``guard_rows`` are one row per closed deal (its last pre-close row), from the training period.
    Final-state columns not allowed by ``config.features.allow_final_state`` become the builder's
    ignored inputs (with everything derived from them). The guard judges ``columns`` (default: the
    builder's candidate features; the audit passes every column) with the name, lifetime, univariate
    and one-class tests.
    """
    allowed_final = [c for c in final_state if c in config.features.allow_final_state]
    ignored_final = [c for c in final_state if c not in config.features.allow_final_state]
    builder = FeatureBuilder(
        extra_features=extra_features,
        exclude=config.features.exclude,
        include_activity=config.features.include_activity,
        ignore_inputs=ignored_final,
    )
    derived = builder._with_derived(guard_rows)
    candidates = builder.candidate_columns(guard_rows)
    judged = list(candidates if columns is None else columns)
    extra_names = {name for name, _ in extra_features}
    contract_names = [c for c in candidates if c not in extra_names]
    lifetime = LifetimeContext(
        cycle_days=(guard_rows["close_date"] - guard_rows["created_date"]).dt.days.to_numpy(float),
        close_day=guard_rows["close_date"].to_numpy(dtype="datetime64[D]").astype(np.int64),
        columns=frozenset(
            c
            for c in judged
            if c in guard_rows and c not in snapshot_columns and c not in POINT_IN_TIME_FEATURES
        ),
        open_rows=open_deals,
        open_age_days=(
            None
            if open_deals is None
            else (open_deals[AS_OF] - open_deals["created_date"]).dt.days.to_numpy(float)
        ),
    )
    leakage = check_leakage(
        derived,
        guard_rows["status"].eq("won").to_numpy(),
        judged,
        max_auc=config.leakage.max_univariate_auc,
        one_class_share=config.leakage.one_class_value_share,
        allow=[*config.leakage.allow, *allowed_final],
        contract_features=contract_names,
        seed=config.seed,
        lifetime=lifetime,
        final_state=final_state,
    )
    return builder, leakage


def train_win_model(
    rows: pd.DataFrame,
    config: TrainConfig,
    *,
    extra_features: Sequence[tuple[str, str]] = (),
    oracle_probability: pd.Series | None = None,
    progress: Progress | None = None,
    file: str = "training data",
    final_state: Sequence[str] = (),
    open_deals: pd.DataFrame | None = None,
    snapshot_columns: Sequence[str] = (),
) -> TrainingResult:
    """Give a trained, calibrated, backtested model from closed deals' point-in-time rows.

    ``rows`` come from :func:`winmodel.features.rows.select_training_rows` (one or
    more pre-close rows per closed deal with ``sample_weight`` and
    ``is_last_before_close``). ``oracle_probability`` (synthetic data only) maps
    opportunity_id to the true win probability at the last pre-close snapshot.
    ``final_state`` names the mutable columns known only as they stood at close
    (:func:`winmodel.features.rows.final_state_columns`): they are left out, with the features
    derived from them, unless ``config.features.allow_final_state`` names them. ``open_deals``
    (the export's open deals, ``created_date`` and ``as_of_date``) lets the leakage guard compare
    a column on open and closed deals of the same age; ``snapshot_columns`` are the columns the
    snapshots hold (point-in-time by construction: the lifetime tests skip them).
    """
    say = progress or (lambda message: log.info(message))
    warnings: list[str] = []
    rows = rows.reset_index(drop=True)
    won = rows["status"].eq("won").to_numpy()
    last = rows["is_last_before_close"].to_numpy(dtype=bool)
    n_won, n_lost = int(won[last].sum()), int((~won[last]).sum())
    warnings += check_sufficiency(
        n_won,
        n_lost,
        minimum=config.training.min_deals_per_class,
        comfortable=config.training.warn_deals_per_class,
        file=file,
    )

    cycle = (rows.loc[last, "close_date"] - rows.loc[last, "created_date"]).dt.days
    maturity = (
        default_maturity_days(cycle)
        if config.training.maturity_days == "auto"
        else int(config.training.maturity_days)
    )
    folds, final, split_warnings = plan_folds(rows.loc[last, "close_date"], config)
    warnings += split_warnings
    say(
        f"splits: train < {final.train_end:%Y-%m-%d} <= validation < {final.validation_end:%Y-%m-%d} "
        f"<= holdout < {final.test_end:%Y-%m-%d}; maturity cut-off {maturity} days; "
        f"{len(folds)} backtest folds"
    )

    # Label drift: segments whose win rate moved in the newest months (the model may lag there;
    # whether it does is judged once the shipped model exists, and the warnings say so).
    drift_table = label_drift(rows[last])
    drifted_segments = describe_drift(drift_table)
    for line in drifted_segments:
        say(f"label drift: {line}")

    # Leakage guard and features: judged on the training period only, one row per deal.
    pre_holdout = (rows["close_date"] < final.validation_end).to_numpy()
    builder, leakage = leakage_guard(
        rows[pre_holdout & last],
        config,
        extra_features=extra_features,
        final_state=final_state,
        open_deals=open_deals,
        snapshot_columns=snapshot_columns,
    )
    allowed_final = [c for c in final_state if c in config.features.allow_final_state]
    ignored_final = list(builder.ignore_inputs)
    crm_is_final = "crm_probability" in final_state
    candidates = list(leakage.checked)
    say(leakage.render())
    features = [c for c in candidates if c not in leakage.excluded]
    if not features:
        raise GateError("no usable feature is left after the leakage guard; see the report above")
    # The categories' vocabulary comes from every closed deal, holdout months included: it uses
    # no outcome, and a value new in the newest months (a new competitor) is then one the shipped
    # model can learn (refit on all closed deals) instead of an unknown pooled with the rest.
    builder.fit(rows, features=features)
    matrix = builder.transform(rows)
    monotone: tuple[int, ...] = ()
    if config.model.monotone:
        judged_rows = pre_holdout & last
        monotone, contradicted = checked_monotone(
            matrix[judged_rows],
            won[judged_rows],
            builder.feature_names_,
            builder.monotone_constraints(),
            config.model.monotone_contradiction_z,
            config.model.monotone_contradiction_z_large,
            config.model.monotone_large_deals,
        )
        for line in contradicted:
            warnings.append(f"monotone: {line}")
            say(f"monotone: {line}")
    data = _Data(
        matrix,
        won.astype(int),
        rows["sample_weight"].to_numpy(float),
        last,
        rows,
        monotone,
    )
    categorical = builder.categorical_indices_

    # Search the shape over the backtest folds (bounded in time).
    closed_deals = int(last.sum())
    small_data = closed_deals < config.gate.small_data_deals
    if small_data and config.model.small_data_search_all_folds:
        search_folds = list(folds)
        say(f"small history ({closed_deals} closed deals): the search judges every backtest fold")
    else:
        search_folds = folds[-config.model.search_folds :] if folds else []
    records = []
    fits: dict[int, list[_FoldFit]] = {}
    started = time.monotonic()
    shapes = list(config.model.candidates if search_folds else config.model.candidates[:1])
    if not search_folds and len(config.model.candidates) > 1:
        warnings.append(
            "no backtest fold fits in this history: no shape search, the first candidate is used"
        )
    for index, shape in enumerate(shapes):
        ceiling = config.model.search_seconds
        if index and ceiling is not None and time.monotonic() - started > ceiling:
            warnings.append(
                f"search stopped after {index} of {len(config.model.candidates)} "
                f"candidates (model.search_seconds={config.model.search_seconds})"
            )
            break
        fold_fits = [
            _fit_fold(data, fold, shape, config, categorical, maturity) for fold in search_folds
        ]
        fits[index] = fold_fits
        records.append({"candidate": index, **_search_record(data, shape, fold_fits)})
        if fold_fits:
            say(
                f"search: candidate {index + 1}/{len(shapes)} "
                f"{describe_shape(shape)} log loss {records[-1]['log_loss']:.4f}"
            )
    search = pd.DataFrame(records)
    if search["log_loss"].notna().all():
        best_single = fits[int(search["log_loss"].to_numpy(dtype=float).argmin())]
        for blend, blend_fits, record in _blend_candidates(data, shapes, fits, search, config):
            z = _paired_gain_z(data, best_single, blend_fits)
            kept = z >= config.model.blend_min_z
            say(
                f"search: blend {describe_shape(blend)} log loss {record['log_loss']:.4f}, "
                f"{z:+.1f} s.e. against the best single shape"
                + ("" if kept else f" (below {config.model.blend_min_z:g}: not a candidate)")
            )
            if kept:
                fits[len(shapes)] = blend_fits
                records.append({"candidate": len(shapes), **record, "gain_z": z})
                shapes.append(blend)
        search = pd.DataFrame(records)
    chosen_index = (
        _pick_shape(search, config.model.tie_tolerance) if search["log_loss"].notna().all() else 0
    )
    shape = shapes[chosen_index]
    search["chosen"] = search["candidate"] == chosen_index
    recency_search = pd.DataFrame()
    if config.training.recency_half_life_candidates and fits.get(chosen_index):
        config, recency_search = choose_recency(
            data, search_folds, fits[chosen_index], shape, config, categorical, maturity
        )
        if recency_search["chosen"].any() and not recency_search.iloc[0]["chosen"]:
            fits[chosen_index] = []  # fitted without the chosen weighting: refit below
        say(
            "recency weighting: half-life "
            f"{config.training.recency_half_life_days or 'none'} days chosen on the search folds"
        )

    # Backtest: the chosen shape on every fold, beside the baselines on the same deals.
    backtest_records = []
    recipe_fits: list[_FoldFit] = []
    for position, fold in enumerate(folds):
        offset = len(folds) - len(search_folds)
        reused = (
            fits[chosen_index][position - offset]
            if position >= offset and fits[chosen_index]
            else None
        )
        fold_fit = _fit_recipe(data, fold, shape, config, categorical, maturity, fitted=reused)
        recipe_fits.append(fold_fit)
        fold_records, _ = _compare_with_baselines(
            fold.name, data, fold_fit, fold, maturity, builder, config, crm_is_final=crm_is_final
        )
        backtest_records += fold_records
        say(f"backtest: {fold.name} done")
    final_fit = _fit_recipe(data, final, shape, config, categorical, maturity)
    holdout_records, baseline_notes = _compare_with_baselines(
        "holdout", data, final_fit, final, maturity, builder, config, crm_is_final=crm_is_final
    )
    for note in baseline_notes:
        say(note)
    backtest = pd.DataFrame(backtest_records + holdout_records)

    # Holdout details: last pre-close rows (main), per stage bucket and per segment (all rows, weighted).
    test = final_fit.test
    holdout_rows = rows[test]
    raw_probability = sigmoid(final_fit.raw_logit)
    predictions = pd.DataFrame(
        {
            "opportunity_id": holdout_rows["opportunity_id"].to_numpy(),
            AS_OF: holdout_rows[AS_OF].to_numpy(),
            "close_date": holdout_rows["close_date"].to_numpy(),
            "won": data.won[test],
            "sample_weight": data.weight[test],
            "is_last_before_close": last[test],
            # The headline's weights: every pre-close row, each deal weighing one (the gate's too).
            "evaluation_weight": evaluation_moments(holdout_rows.reset_index(drop=True))[HEADLINE][
                1
            ],
            "raw_probability": raw_probability,
            "win_probability": final_fit.probability,
        }
    )
    holdout_metrics = pd.DataFrame(
        [r for r in holdout_records if r["slice"] == "holdout" and r["moment"] == HEADLINE]
    )
    holdout_by_moment = pd.DataFrame(
        [r for r in holdout_records if r["slice"] == "holdout" and r["method"] == "winmodel"]
    )
    oracle: dict[str, float] = {}
    if oracle_probability is not None:
        oracle = _oracle_comparison(predictions, oracle_probability, holdout_metrics)
        if oracle:
            say(
                f"oracle: Brier {oracle['oracle_brier']:.4f}, model reaches "
                f"{oracle['oracle_skill_share']:.1%} of the oracle's skill over the base rate"
            )
    by_stage = _by_group(predictions, stage_bucket(holdout_rows).to_numpy(), "stage")
    segment_column = next(
        (c for c in ("industry", "region", "deal_type") if c in holdout_rows), None
    )
    by_segment = (
        _by_group(
            predictions,
            # A blank segment is a group of its own (NaN would not sort among the names).
            holdout_rows[segment_column].astype("str").fillna("(blank)").to_numpy(),
            segment_column,
        )
        if segment_column
        else pd.DataFrame()
    )

    last_test = predictions["is_last_before_close"].to_numpy()
    reliability_before = reliability_table(
        predictions["won"][last_test], raw_probability[last_test]
    )
    reliability_after = reliability_table(
        predictions["won"][last_test], predictions["win_probability"][last_test]
    )
    booster_end = final.validation_end if config.model.refit_with_validation else final.train_end
    train_mask = _train_mask(rows, booster_end, maturity)
    shipped_booster, shipped_calibrator = final_fit.booster, final_fit.calibrator
    if config.model.refit_on_all_closed:
        # The holdout has judged the recipe; the shipped model also learns the holdout months.
        booster_end = final.test_end
        shipped_booster, shipped_calibrator, train_mask = _refit_on_all_closed(
            data,
            final_fit,
            int(train_mask.sum()),
            [*recipe_fits, final_fit],
            booster_end,
            shape,
            config,
            categorical,
            maturity,
        )
        say(
            f"refit on every closed deal before {booster_end:%Y-%m-%d}: "
            f"{shipped_booster.num_trees()} trees, calibration ({shipped_calibrator.method_}) "
            f"from {len(recipe_fits) + 1} out-of-fold windows"
        )
    shifts: list[SegmentShift] = []
    if config.segment_shift.enabled:
        shipped_booster, shifts = _shift_segments(
            data,
            builder,
            shipped_booster,
            shipped_calibrator,
            final_fit.test,
            final.validation_end,
            train_mask,
            config,
        )
        for shift in shifts:
            say(f"segment shift: {shift.describe()}")
    # Label drift, the model's side: scored deals are warned only where the shipped model lags.
    drifted_values: list[list[str]] = []
    drifted_lags: list[list[str]] = []
    if not drift_table.empty and drift_table["drifted"].any():
        newest = final_fit.test & data.is_last
        newest_raw = shipped_booster.predict(
            data.matrix[newest], raw_score=True, num_threads=config.model.threads
        )
        lag = model_lag(
            drift_table,
            rows.loc[newest].reset_index(drop=True),
            shipped_calibrator.transform(np.asarray(newest_raw)),
            data.won[newest],
            shifted=[(shift.dimension, shift.value) for shift in shifts],
        )
        drifted_segments = [
            f"{line}; {describe_lag(row)}"
            for line, (_, row) in zip(drifted_segments, lag.iterrows(), strict=True)
        ]
        lagging = lag.loc[lag["lagging"], ["dimension", "value", "lag"]].astype("str")
        # Pairs, as models before the lag check wrote them (an older winmodel reads them); the
        # lag of each in its own key.
        drifted_values = lagging[["dimension", "value"]].to_numpy().tolist()
        drifted_lags = lagging.to_numpy().tolist()
        say(
            f"label drift: scored deals are warned in {len(drifted_values)} of the {len(lag)} "
            "drifted segments (where the shipped model lags on the newest closes)"
        )
    # The run's warnings (MLflow, the model card) carry each drifted segment with its verdict.
    warnings += [f"label drift: {line}" for line in drifted_segments]
    base_rate = float(np.average(data.won[train_mask], weights=data.weight[train_mask]))
    importance = pd.DataFrame(
        {
            "feature": builder.feature_names_,
            "item": [builder.items_[f] for f in builder.feature_names_],
            "gain": shipped_booster.feature_importance("gain"),
            "splits": shipped_booster.feature_importance("split"),
        }
    ).sort_values("gain", ascending=False, ignore_index=True)
    from winmodel.features.drift import reference_profile

    model = WinModel(
        feature_builder=builder,
        booster=shipped_booster,
        calibrator=shipped_calibrator,
        base_rate=base_rate,
        reference=reference_profile(
            builder, data.matrix[train_mask], data.weight[train_mask], base_rate
        ),
        metadata={
            "trained_on_closes_before": f"{booster_end:%Y-%m-%d}",
            "refit_with_validation": config.model.refit_with_validation,
            "refit_on_all_closed": config.model.refit_on_all_closed,
            "recency_half_life_days": config.training.recency_half_life_days,
            "training_cutoff": f"{booster_end:%Y-%m-%d}",
            "drifted_segments": drifted_segments,
            "segment_shifts": [shift.to_dict() for shift in shifts],
            "drifted_values": drifted_values,
            "drifted_lags": drifted_lags,
            "validation_window": f"{final.train_end:%Y-%m-%d} to {final.validation_end:%Y-%m-%d}",
            "holdout_window": f"{final.validation_end:%Y-%m-%d} to {final.test_end:%Y-%m-%d}",
            "maturity_days": maturity,
            "training_deals": int(rows.loc[train_mask, "opportunity_id"].nunique()),
            "training_rows": int(train_mask.sum()),
            "calibration": shipped_calibrator.method_,
            "shape": shape.model_dump(),
            # Log loss over every time-ordered fold per method: the next training's gate compares
            # against it when too few deals are new to this model.
            "backtest_log_loss": {
                method: value
                for method, value in pooled_log_loss(backtest).items()
                if np.isfinite(value)
            },
            "monotone": bool(any(monotone)),
            # Per feature, as used (a direction the deals contradicted is 0): replays refit with it.
            "monotone_constraints": list(monotone),
            # The business directions the deals contradicted, left free: {feature: usual direction}
            # (scored reasons driven by one say so; scoring.explain.freed_directions).
            "monotone_freed": {
                name: usual
                for name, usual, kept in zip(
                    builder.feature_names_, builder.monotone_constraints(), monotone, strict=False
                )
                if usual and not kept
            }
            if config.model.monotone
            else {},
            "trees": shipped_booster.num_trees(),
            "features": builder.feature_names_,
            "excluded_by_leakage_guard": leakage.excluded,
            "final_state_excluded": ignored_final,
            "final_state_allowed": allowed_final,
            "gain_share": dict(
                zip(
                    importance["feature"],
                    importance["gain"] / max(importance["gain"].sum(), 1e-12),
                    strict=True,
                )
            ),
        },
    )
    return TrainingResult(
        model=model,
        holdout_metrics=holdout_metrics,
        holdout_by_stage=by_stage,
        holdout_by_segment=by_segment,
        backtest=backtest,
        search=search,
        leakage=leakage,
        reliability_before=reliability_before,
        reliability_after=reliability_after,
        holdout_predictions=predictions,
        feature_importance=importance,
        maturity_days=maturity,
        folds=folds,
        final_fold=final,
        shape=shape,
        warnings=warnings,
        oracle=oracle,
        holdout_by_moment=holdout_by_moment,
        baseline_notes=baseline_notes,
        recency_search=recency_search,
        label_drift=drift_table,
    )


#: The method name of the HistGradientBoostingClassifier peer in the holdout tables.
HIST_GRADIENT_BOOSTING = "hist_gradient_boosting_defaults"

#: A baseline that separates won from lost this well holds the outcome: it is reported as leaked.
LEAKED_AUC = 0.99


def _compare_with_baselines(
    label: str,
    data: _Data,
    fold_fit: _FoldFit,
    fold: Fold,
    maturity: int,
    builder: FeatureBuilder,
    config: TrainConfig,
    *,
    crm_is_final: bool = False,
) -> tuple[list[dict[str, str | float]], list[str]]:
    """Give metrics of the model and the baselines on a fold's test deals, at every moment, and notes.

    Moments (:func:`winmodel.modeling.evaluate.evaluation_moments`): every pre-close row with
    each deal weighing one (the headline: what a scorer sees), the rows nearest 25/50/75 % of
    each deal's life, and the last row before close. A baseline whose headline AUC reaches
    :data:`LEAKED_AUC`, or the CRM probability of a flat export (``crm_is_final``: a closed
    deal's final 0/100), is left out with a note: it is not a competitor.
    """
    rows = data.rows
    train = _train_mask(rows, fold.train_end, maturity)
    base_rate = float(np.average(data.won[train], weights=data.weight[train]))
    test = fold_fit.test
    test_rows = rows[test].reset_index(drop=True)
    won = data.won[test]
    predictions: dict[str, np.ndarray | None] = {
        "winmodel": fold_fit.probability,
        "base_rate": np.full(len(won), base_rate),
        "crm_stage_probability": None if crm_is_final else _crm_baseline(test_rows, base_rate),
    }
    if config.splits.peers:
        features = pd.DataFrame(data.matrix, columns=builder.feature_names_)
        logistic = fit_logistic_baseline(
            features[train],
            data.won[train],
            data.weight[train],
            builder.categorical_features_,
            config.seed,
        )
        predictions["logistic_regression"] = logistic.predict_proba(features[test])[:, 1]
        if label == "holdout":
            # The peer row: HistGradientBoostingClassifier defaults on the same features and deals.
            peer = fit_hist_gradient_boosting_peer(
                features[train],
                data.won[train],
                data.weight[train],
                builder.categorical_features_,
                config.seed,
            )
            predictions[HIST_GRADIENT_BOOSTING] = peer.predict_proba(
                features[test].to_numpy(dtype=float)
            )[:, 1]
    notes: list[str] = []
    if crm_is_final and "crm_probability" in rows:
        notes.append(
            "crm_stage_probability left out: in a flat export a closed deal's CRM probability is its "
            "final 0/100, the outcome itself, not a forecast"
        )
    if not config.splits.peers:
        notes.append(
            "peers not fitted (splits.peers: false): no logistic regression or HistGradientBoosting "
            "row to judge winmodel's complexity against"
        )
    moments = evaluation_moments(test_rows)
    headline_weight = moments[HEADLINE][1]
    for method in [m for m in predictions if m != "winmodel"]:
        probability = predictions[method]
        if probability is None or len(won) == 0 or won.min() == won.max():
            continue
        auc = classification_metrics(won, probability, headline_weight)["roc_auc"]
        if auc >= LEAKED_AUC:
            predictions[method] = None
            notes.append(
                f"{method} left out as leaked: AUC {auc:.3f} on the {label} deals means it holds "
                "the outcome"
            )
    records: list[dict[str, str | float]] = []
    for moment, (mask, weight) in moments.items():
        if not mask.any() or won[mask].min() == won[mask].max():
            continue
        chosen = {
            method: None if probability is None else probability[mask]
            for method, probability in predictions.items()
        }
        for record in _metrics_rows(label, won[mask], chosen, weight[mask]):
            record.update(
                {
                    "moment": moment,
                    "train_end": f"{fold.train_end:%Y-%m-%d}",
                    "test_start": f"{fold.validation_end:%Y-%m-%d}",
                    "test_end": f"{fold.test_end:%Y-%m-%d}",
                }
            )
            records.append(record)
    return records, notes


def _by_group(predictions: pd.DataFrame, groups: np.ndarray, name: str) -> pd.DataFrame:
    records = []
    for group in sorted(set(groups)):
        mask = groups == group
        part = predictions[mask]
        if part["won"].nunique() < 2 or len(part) < 30:
            continue
        records.append(
            {
                name: group,
                **classification_metrics(
                    part["won"].to_numpy(),
                    part["win_probability"].to_numpy(),
                    part["sample_weight"].to_numpy(),
                ),
            }
        )
    return pd.DataFrame(records)


def _oracle_comparison(
    predictions: pd.DataFrame, oracle_probability: pd.Series, holdout_metrics: pd.DataFrame
) -> dict[str, float]:
    last = predictions[predictions["is_last_before_close"]]
    oracle = last["opportunity_id"].map(oracle_probability)
    if oracle.isna().all():
        return {}
    keep = oracle.notna().to_numpy()
    won = last["won"].to_numpy()[keep]
    oracle_metrics = classification_metrics(won, oracle.to_numpy()[keep])
    model_metrics = classification_metrics(won, last["win_probability"].to_numpy()[keep])
    base = cast(float, holdout_metrics.set_index("method").loc["base_rate", "brier"])
    return {
        "oracle_brier": oracle_metrics["brier"],
        "oracle_auc": oracle_metrics["roc_auc"],
        "model_brier": model_metrics["brier"],
        "base_rate_brier": float(base),
        "oracle_skill_share": brier_skill_share(
            float(base), model_metrics["brier"], oracle_metrics["brier"]
        ),
    }


def closed_label(status: pd.Series) -> np.ndarray:
    """Give 1 for won, 0 for lost (closed deals only)."""
    return status.eq("won").to_numpy().astype(int)
