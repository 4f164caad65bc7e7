"""Metrics of probabilistic predictions and the baselines every model is compared with."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

EPSILON = 1e-6


def expected_calibration_error(
    won: np.ndarray, probability: np.ndarray, weight: np.ndarray | None = None, bins: int = 10
) -> float:
    """Give the weighted mean gap between predicted and observed win rate over equal-width bins.

    The bins of :func:`reliability_table`, counted with ``np.bincount`` (a bin whose deals weigh
    nothing is left out, as the table's NaN is).
    """
    probability = np.asarray(probability, dtype=float)
    weight = np.ones(len(probability)) if weight is None else np.asarray(weight, dtype=float)
    index = _bin_index(probability, bins)
    total = np.bincount(index, weight, minlength=bins)
    predicted = np.bincount(index, weight * probability, minlength=bins)
    observed = np.bincount(index, weight * np.asarray(won, dtype=float), minlength=bins)
    seen = total > 0
    gap = np.abs(predicted[seen] - observed[seen]) / total[seen]
    return float(np.sum(total[seen] * gap) / np.sum(total))


def _bin_index(probability: np.ndarray, bins: int) -> np.ndarray:
    """Give each probability's equal-width bin, 0 to ``bins - 1``."""
    edges = np.linspace(0, 1, bins + 1)
    return np.asarray(np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1))


def reliability_table(
    won: np.ndarray | pd.Series,
    probability: np.ndarray | pd.Series,
    weight: np.ndarray | None = None,
    bins: int = 10,
) -> pd.DataFrame:
    """Give predicted vs observed win rate per probability bin (the reliability curve)."""
    weight = np.ones(len(won)) if weight is None else np.asarray(weight, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    index = _bin_index(np.asarray(probability, dtype=float), bins)
    frame = pd.DataFrame(
        {
            "bin": index,
            "w": weight,
            "wp": weight * probability,
            "wy": weight * np.asarray(won, dtype=float),
            "n": 1,
        }
    )
    grouped = frame.groupby("bin").sum()
    return pd.DataFrame(
        {
            "bin_low": edges[grouped.index],
            "bin_high": edges[grouped.index + 1],
            "predicted": grouped["wp"] / grouped["w"],
            "observed": grouped["wy"] / grouped["w"],
            "weight": grouped["w"],
            "deals": grouped["n"],
        }
    ).reset_index(drop=True)


def top_decile_lift(
    won: np.ndarray, probability: np.ndarray, weight: np.ndarray | None = None
) -> float:
    """Give the win rate among the top 10 % scored deals divided by the overall win rate."""
    weight = np.ones(len(won)) if weight is None else np.asarray(weight, dtype=float)
    weighed = weight > 0  # rows that weigh nothing are not among the top 10 %
    won, weight = np.asarray(won, dtype=float)[weighed], weight[weighed]
    probability = np.asarray(probability, dtype=float)[weighed]
    order = np.argsort(-probability, kind="stable")
    cumulative = np.cumsum(weight[order])
    top = order[cumulative <= 0.1 * cumulative[-1] + 1e-12]
    if len(top) == 0:
        top = order[:1]
    overall = np.average(won, weights=weight)
    return (
        float(np.average(won[top], weights=weight[top]) / overall) if overall > 0 else float("nan")
    )


def classification_metrics(
    won: np.ndarray, probability: np.ndarray, weight: np.ndarray | None = None
) -> dict[str, float]:
    """Give ROC AUC, PR AUC, Brier, log loss, ECE, top-decile lift, deals and win rate.

    Computed in numpy (scikit-learn's metric functions give the same figures, tested, but spend
    most of their time validating input: about 6 s of a 20,000-deal training's 128 calls).
    """
    won = np.asarray(won, dtype=int)
    probability = np.asarray(probability, dtype=float)
    if np.isnan(probability).any():
        raise ValueError(f"{int(np.isnan(probability).sum())} probabilities are NaN")
    probability = np.clip(probability, EPSILON, 1 - EPSILON)
    sample_weight = np.ones(len(won)) if weight is None else np.asarray(weight, dtype=float)
    both_classes = 0 < won.sum() < len(won)
    nan = float("nan")
    roc_auc, pr_auc = (
        _ranking_areas(won, probability, sample_weight) if both_classes else (nan, nan)
    )
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "brier": float(np.average((won - probability) ** 2, weights=sample_weight)),
        "log_loss": binary_log_loss(won, probability, sample_weight),
        "ece": expected_calibration_error(won, probability, weight),
        "top_decile_lift": top_decile_lift(won, probability, weight) if both_classes else nan,
        "deals": float(len(won) if weight is None else np.sum(weight)),
        "win_rate": float(np.average(won, weights=weight)),
    }


def binary_log_loss(
    won: np.ndarray,
    probability: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    normalize: bool = True,
) -> float:
    """Give the (weighted) log loss of win probabilities: the mean, or with ``normalize=False`` the sum.

    As ``sklearn.metrics.log_loss`` with ``labels=[0, 1]``: probabilities are clipped to float
    precision, so a certain miss costs about 36 nats, not infinity.
    """
    won = np.asarray(won, dtype=float)
    probability = np.asarray(probability, dtype=float)
    tiny = np.finfo(float).eps
    loss = -(
        won * np.log(np.clip(probability, tiny, 1 - tiny))
        + (1 - won) * np.log(np.clip(1 - probability, tiny, 1 - tiny))
    )
    if not normalize:
        return float(np.sum(loss if weight is None else loss * np.asarray(weight, dtype=float)))
    return float(np.average(loss, weights=weight))


def _ranking_areas(
    won: np.ndarray, probability: np.ndarray, weight: np.ndarray
) -> tuple[float, float]:
    """Give ROC AUC and average precision (PR AUC) from the weighted wins and losses above each score.

    The curves of scikit-learn's ``roc_auc_score`` and ``average_precision_score``: deals with
    the same score form one step (ties count half in the ROC's trapezoid), highest score first.
    """
    # A step of rows that weigh nothing has no precision: scikit-learn drops them, and so do we.
    weighed = weight > 0
    won, probability, weight = won[weighed], probability[weighed], weight[weighed]
    order = np.argsort(probability, kind="mergesort")[::-1]
    score, won_sorted, weight_sorted = probability[order], won[order], weight[order]
    step_ends = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    wins_above = np.cumsum(won_sorted * weight_sorted)[step_ends]
    losses_above = np.cumsum((1 - won_sorted) * weight_sorted)[step_ends]
    true_positive_rate = np.r_[0.0, wins_above / wins_above[-1]]
    false_positive_rate = np.r_[0.0, losses_above / losses_above[-1]]
    roc_auc = float(np.trapezoid(true_positive_rate, false_positive_rate))
    precision = wins_above / (wins_above + losses_above)
    average_precision = float(np.sum(np.diff(true_positive_rate) * precision))
    return roc_auc, average_precision


def brier_skill_share(base: float, model: float, oracle: float) -> float:
    """Give the share of the oracle's Brier skill the model reaches: (base - model) / (base - oracle)."""
    return float((base - model) / (base - oracle)) if base > oracle else float("nan")


def expected_brier(probability: np.ndarray, truth: np.ndarray) -> float:
    """Give the Brier score expected when each outcome is drawn from ``truth``: mean((p - q)^2 + q(1 - q)).

    For deals with no outcome yet (open deals) whose true probability ``q`` is known. When ``q``
    is the share of simulated futures won, this is exactly the mean Brier score over those
    futures, so it needs no correction for their number.
    """
    p, q = _aligned(probability, truth)
    return float(np.mean((p - q) ** 2 + q * (1.0 - q)))


def expected_brier_oracle_share(
    probability: np.ndarray,
    truth: np.ndarray,
    base_rate: float,
    *,
    replicates: int | None = None,
) -> float:
    """Give the share of the oracle's expected-Brier skill reached: 1 - mean((p - q)^2) / mean((b - q)^2).

    The expected Brier of ``probability`` (p), of the constant ``base_rate`` (b) and of the truth
    itself (q) put into :func:`brier_skill_share`: the q(1 - q) terms cancel. 1 for p = q, 0 for
    p = b, negative when p is further from q than the base rate is; NaN when the truth is the base
    rate everywhere.

    With ``replicates``, ``q`` is the share won of that many simulated futures of each deal: its
    sampling noise adds q(1 - q) / replicates to both squared errors on average, which inflates
    the denominator (the differences p - b are unaffected); the noise is estimated from ``q`` and
    taken out of both.
    """
    p, q = _aligned(probability, truth)
    gap = float(np.mean(_squared_error(np.full(len(q), float(base_rate)), q, replicates)))
    if gap <= 0:
        return float("nan")
    return 1.0 - float(np.mean(_squared_error(p, q, replicates))) / gap


def _aligned(probability: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(probability, dtype=float), np.asarray(truth, dtype=float)
    if p.shape != q.shape or p.ndim != 1 or not len(p):
        raise ValueError(
            f"probability and truth must be non-empty and of one length, got {p.shape} and {q.shape}"
        )
    return p, q


def _squared_error(p: np.ndarray, q: np.ndarray, replicates: int | None) -> np.ndarray:
    """Give (p - q)^2, less the sampling noise of q when it is a share of ``replicates`` draws."""
    squared: np.ndarray = (p - q) ** 2
    if replicates is None:
        return squared
    if replicates < 2:
        raise ValueError(f"replicates must be at least 2, got {replicates}")
    # E[q_hat (1 - q_hat)] = q (1 - q) (1 - 1/R): this is unbiased for Var(q_hat) = q (1 - q) / R.
    return squared - q * (1.0 - q) / (replicates - 1)


def fit_logistic_baseline(
    features: pd.DataFrame,
    won: np.ndarray,
    weight: np.ndarray,
    categorical: list[str],
    seed: int,
    inverse_penalty: float = 0.5,
) -> Pipeline:
    """Give a fitted logistic regression on the same features (one-hot categories, scaled numbers).

    ``inverse_penalty`` is scikit-learn's ``C`` (smaller: a stronger L2 penalty).
    """
    numeric = [c for c in features.columns if c not in categorical]
    transformer = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                ),
                categorical,
            ),
        ]
    )
    model = Pipeline(
        [
            ("prepare", transformer),
            ("logistic", LogisticRegression(C=inverse_penalty, max_iter=2000, random_state=seed)),
        ]
    )
    model.fit(features, won, logistic__sample_weight=weight)
    return model


def fit_hist_gradient_boosting_peer(
    features: pd.DataFrame, won: np.ndarray, weight: np.ndarray, categorical: list[str], seed: int
) -> HistGradientBoostingClassifier:
    """Give scikit-learn's HistGradientBoostingClassifier with its defaults, fitted on the same features.

    The peer a user could fit in a few lines: if winmodel does not beat it on their own holdout, its
    complexity is not earning its keep. Only the categorical columns are named (else it would
    read category codes as numbers).
    """
    mask = np.array([column in categorical for column in features.columns])
    model = HistGradientBoostingClassifier(
        categorical_features=mask if mask.any() else None, random_state=seed
    )
    # One OpenMP thread: with OMP_WAIT_POLICY=PASSIVE (set by the CLI for LightGBM on busy machines)
    # scikit-learn's short parallel loops wait on sleeping threads; measured on 17,840 rows x 53
    # features: 2.7 s on two threads, 0.85 s on one. The defaults fit the same model either way.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(features.to_numpy(dtype=float), won, sample_weight=weight)
    return model


#: Where in their life the holdout's deals are measured (docs: README "Reading the training summary").
HEADLINE = "all pre-close snapshots"
LIFE_POINTS = (0.25, 0.5, 0.75)
LAST = "last before close"


def moment_label(fraction: float) -> str:
    """Give the name of the slice nearest ``fraction`` of a deal's life: '50 % of life'."""
    return f"{fraction:.0%} of life".replace("%", " %")


def evaluation_moments(rows: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Give, per moment of a deal's life, the rows measured there and their weights.

    ``rows`` are closed deals' pre-close rows (``opportunity_id``, ``as_of_date``,
    ``created_date``, ``close_date``, ``is_last_before_close``). The headline is what a scorer
    sees: every pre-close row, each deal weighing one in total. Then, per deal, the one row
    nearest 25 %, 50 % and 75 % of its life (created to close), and its last row before close.
    A flat export has one row per deal, at close: only the headline is given.
    """
    deal = rows["opportunity_id"].to_numpy()
    per_deal = pd.Series(deal).map(pd.Series(deal).value_counts()).to_numpy(dtype=float)
    moments = {HEADLINE: (np.ones(len(rows), dtype=bool), 1.0 / per_deal)}
    if len(rows) == 0 or per_deal.max() <= 1:
        return moments
    life = (rows["close_date"] - rows["created_date"]).dt.days.to_numpy(dtype=float)
    age = (rows["as_of_date"] - rows["created_date"]).dt.days.to_numpy(dtype=float)
    fraction = np.clip(age / np.maximum(life, 1.0), 0.0, 1.0)
    order = np.arange(len(rows))
    for point in LIFE_POINTS:
        distance = pd.DataFrame({"deal": deal, "gap": np.abs(fraction - point), "row": order})
        nearest = (
            distance.sort_values(["deal", "gap", "row"], kind="stable").groupby("deal").head(1)
        )
        mask = np.zeros(len(rows), dtype=bool)
        mask[nearest["row"].to_numpy()] = True
        moments[moment_label(point)] = (mask, np.ones(len(rows)))
    last = rows["is_last_before_close"].to_numpy(dtype=bool)
    moments[LAST] = (last, np.ones(len(rows)))
    return moments


def pooled_log_loss(backtest: pd.DataFrame) -> dict[str, float]:
    """Give each method's log loss pooled over every time-ordered fold (backtest and holdout).

    ``backtest`` is :attr:`winmodel.modeling.train.TrainingResult.backtest`: per fold and method,
    the headline moment's log loss and deals (each deal weighing one); folds weigh by their deals.
    """
    headline = backtest[backtest["moment"] == HEADLINE]
    pooled = {}
    for method, part in headline.groupby("method"):
        weight = part["deals"].to_numpy(float)
        if weight.sum() > 0:
            pooled[str(method)] = float(
                np.average(part["log_loss"].to_numpy(float), weights=weight)
            )
    return pooled
