"""Triage measured: how much of the pipeline's expected margin the pursue list holds, replayed honestly.

For a set of deals whose *value* is known (the generator's true probability x amount x margin, or
what was won), :func:`judge_triage` compares the deals the recommendation pursues with three other
ways to spend the same effort: pursuing everything, pursuing the largest amounts, and the oracle
(the deals of highest value, at the same number of deals). The same figures for ranking by the
model's own expected margin say whether the decision table adds or loses anything over it.

:func:`backtest_triage` replays past months: at each month's first day the model's recipe is
refitted on the deals closed before it (:func:`winmodel.analysis.replay.refit_known_at`, the
forecast replay's refit), the deals open that day are scored as the CRM showed them then, and the
decision table is applied. :func:`choose_thresholds` then picks the decision table's thresholds
that met the scoring config's ``triage`` targets in those months:

* the pursue line is the highest expected margin whose pursue list held at least
  ``pursue_margin_share`` of the value (averaged over the months): the fewest deals that do;
* the probability floor is the highest at which the deals it declines (below the line, never
  band A) held at most ``decline_margin_share`` of the value;
* ``qualify_min_red_flags`` is set only when holding red-flagged deals back from the pursue list
  kept at least 0.1 point more of the oracle's value than not doing so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from winmodel.analysis.replay import Refit, open_deals_at, refit_known_at, resolved_periods
from winmodel.modeling.model import WinModel
from winmodel.scoring.decide import economics, red_flag_matrix
from winmodel.scoring.score import band_of
from winmodel.settings import RecommendationRules, ScoreConfig, TrainConfig

log = logging.getLogger(__name__)

#: Holding red-flagged deals back must keep at least this much more of the oracle's value (0.1
#: point) to be chosen: smaller differences are noise of a few deals.
MIN_GAIN = 0.001

#: Gives each deal's true win probability from its point-in-time rows (the generator's truth).
TruthFunction = Callable[[pd.DataFrame], np.ndarray]

JUDGED_COLUMNS = (
    "deals",
    "pursued",
    "pursued_share",
    "value_all",
    "value_pursued",
    "value_oracle",
    "pursue_vs_oracle",
    "expected_margin_rank_vs_oracle",
    "amount_rank_vs_oracle",
    "pursue_vs_everything",
)


def _top(values: np.ndarray, score: np.ndarray, count: int) -> float:
    """Give the sum of ``values`` over the ``count`` deals of highest ``score`` (ties: first come)."""
    if count <= 0:
        return 0.0
    order = np.argsort(-score, kind="stable")[:count]
    return float(values[order].sum())


def judge_triage(
    value: np.ndarray, pursued: np.ndarray, expected_margin: np.ndarray, amount: np.ndarray
) -> dict[str, float]:
    """Give what the pursue list holds of ``value`` against everything, the oracle, amount and the model's margin.

    ``value`` is each deal's true value (e.g. true probability x amount x margin); ``pursued``
    the deals the recommendation pursues; ``expected_margin`` the model's own; ``amount`` the
    deal size. Rankings are compared at the same number of deals as the pursue list.
    """
    value = np.nan_to_num(np.asarray(value, dtype=float))
    pursued = np.asarray(pursued, dtype=bool)
    count = int(pursued.sum())
    oracle = _top(value, value, count)
    total = float(value.sum())

    def share(part: float, whole: float) -> float:
        return part / whole if whole > 0 else float("nan")

    held = float(value[pursued].sum())
    return {
        "deals": float(len(value)),
        "pursued": float(count),
        "pursued_share": share(count, len(value)),
        "value_all": total,
        "value_pursued": held,
        "value_oracle": oracle,
        "pursue_vs_oracle": share(held, oracle),
        "expected_margin_rank_vs_oracle": share(
            _top(value, np.nan_to_num(expected_margin, nan=-np.inf), count), oracle
        ),
        "amount_rank_vs_oracle": share(
            _top(value, np.nan_to_num(amount, nan=-np.inf), count), oracle
        ),
        "pursue_vs_everything": share(held, total),
    }


@dataclass
class ReplayedDeals:
    """The deals open at each replayed month's start, as scored then, with their value."""

    deals: pd.DataFrame  # period, opportunity_id, probability, band, amount, expected_margin,
    # expected_value, red_flags, true_value, realized_value
    measure: str  # "truth" or "realized"


def replay_open_deals(
    model: WinModel,
    training_rows: pd.DataFrame,
    history: pd.DataFrame,
    final_amount: pd.Series,
    train_config: TrainConfig,
    score_config: ScoreConfig,
    *,
    as_of: pd.Timestamp,
    periods: int = 6,
    truth: TruthFunction | None = None,
    refit: Refit | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReplayedDeals:
    """Give the deals open at the first day of each of the last ``periods`` months, scored by the recipe refitted then.

    Each deal's value is P(won) x amount x gross margin: with ``truth``, its true probability on
    that day (the generator's); always also what was finally won (amount won x margin, NaN
    while still open at ``as_of``). ``history`` is
    :func:`winmodel.features.rows.add_history_features` output; ``final_amount`` the amount each
    deal was won for, by opportunity_id.
    """
    say = progress or (lambda message: log.info(message))
    frames = []
    for period in resolved_periods(as_of, "month", periods):
        cutoff = period.start_time.normalize()
        refitted = refit_known_at(refit, model, training_rows, period, train_config)
        if refitted is None:
            say(f"triage: {period} left out (too little history before it to refit)")
            continue
        deals = open_deals_at(history, cutoff)
        if deals.empty:
            continue
        probability = refitted.predict_proba(deals)
        figures = economics(deals, probability, score_config.cost)
        margin = figures.margin_pct / 100.0
        status = deals["status"].to_numpy(dtype=object)
        won_amount = deals["opportunity_id"].map(final_amount).to_numpy(dtype=float)
        realized = np.where(
            status == "won", won_amount * margin, np.where(status == "lost", 0.0, np.nan)
        )
        true_value = (
            truth(deals) * figures.amount * margin
            if truth is not None
            else np.full(len(deals), np.nan)
        )
        frames.append(
            pd.DataFrame(
                {
                    "period": str(period),
                    "opportunity_id": deals["opportunity_id"].to_numpy(),
                    "probability": probability,
                    "band": band_of(probability, score_config.bands),
                    "amount": figures.amount,
                    "expected_margin": figures.expected_margin,
                    "expected_value": figures.expected_value,
                    "red_flags": red_flag_matrix(deals).sum(axis=1),
                    "true_value": true_value,
                    "realized_value": realized,
                }
            )
        )
        say(
            f"triage: {period}: {len(deals):,} deals open on {cutoff:%Y-%m-%d}, scored by the recipe refitted then"
        )
    columns = [
        "period",
        "opportunity_id",
        "probability",
        "band",
        "amount",
        "expected_margin",
        "expected_value",
        "red_flags",
        "true_value",
        "realized_value",
    ]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return ReplayedDeals(table, "truth" if truth is not None else "realized")


def pursue_mask(deals: pd.DataFrame, rules: RecommendationRules) -> np.ndarray:
    """Give which replayed deals the decision table pursues (the rules of :func:`winmodel.scoring.decide.decide`)."""
    value = deals["expected_value"].to_numpy(dtype=float)
    margin = deals["expected_margin"].to_numpy(dtype=float)
    held_back = (
        deals["red_flags"].to_numpy() >= rules.qualify_min_red_flags
        if rules.qualify_min_red_flags is not None
        else np.zeros(len(deals), dtype=bool)
    )
    mask: np.ndarray = ~held_back & ~(value < 0) & (margin >= rules.pursue_min_expected_margin)
    return mask


def decline_mask(deals: pd.DataFrame, rules: RecommendationRules) -> np.ndarray:
    """Give which replayed deals the decision table declines (below the pursue line, never band A)."""
    band_a = deals["band"].to_numpy(dtype=object) == "A"
    probability = deals["probability"].to_numpy(dtype=float)
    value = deals["expected_value"].to_numpy(dtype=float)
    mask: np.ndarray = (
        ~pursue_mask(deals, rules)
        & ~band_a
        & ((probability < rules.decline_below_probability) | (value < 0))
    )
    return mask


def _value(deals: pd.DataFrame, measure: str) -> np.ndarray:
    column = "true_value" if measure == "truth" else "realized_value"
    values: np.ndarray = deals[column].to_numpy(dtype=float)
    return values


def judge_periods(replayed: ReplayedDeals, rules: RecommendationRules) -> pd.DataFrame:
    """Give :func:`judge_triage` per replayed month (deals without a known value left out) and the mean."""
    records = []
    for period, deals in replayed.deals.groupby("period", sort=True):
        value = _value(deals, replayed.measure)
        known = ~np.isnan(value)
        part = deals[known]
        records.append(
            {
                "period": str(period),
                **judge_triage(
                    value[known],
                    pursue_mask(part, rules),
                    part["expected_margin"].to_numpy(dtype=float),
                    part["amount"].to_numpy(dtype=float),
                ),
            }
        )
    table = pd.DataFrame(records, columns=["period", *JUDGED_COLUMNS])
    if len(table):
        mean = table[list(JUDGED_COLUMNS)].mean().to_dict()
        table = pd.concat([table, pd.DataFrame([{"period": "mean", **mean}])], ignore_index=True)
    return table


def choose_thresholds(
    replayed: ReplayedDeals, config: ScoreConfig, candidates: int = 400
) -> tuple[RecommendationRules, pd.DataFrame]:
    """Give the decision table's thresholds that met ``config.triage`` in the replay (module notes), and the trials.

    The trials table has one row per threshold tried: what was tried, and the mean over the
    months of the share of value declined or held by the pursue list, and the pursue list's share
    of the oracle's value.
    """
    targets = config.triage
    deals = replayed.deals
    value = _value(deals, replayed.measure)
    known = ~np.isnan(value)
    deals, value = deals[known].reset_index(drop=True), value[known]
    periods = deals["period"].to_numpy()
    totals = pd.Series(value).groupby(periods).transform("sum").to_numpy()
    weight = np.divide(value, totals, out=np.zeros_like(value), where=totals > 0)
    months = max(len(np.unique(periods)), 1)

    def mean_share(mask: np.ndarray) -> float:
        return float(weight[mask].sum() / months)

    records = []
    rules = config.recommendation.model_copy(update={"qualify_min_red_flags": None})
    margin = deals["expected_margin"].to_numpy(dtype=float)
    lines = np.unique(
        np.round(np.quantile(margin[np.isfinite(margin)], np.linspace(0, 1, candidates)), -2)
    )
    line = 0.0
    for candidate in lines:
        trial = rules.model_copy(update={"pursue_min_expected_margin": float(candidate)})
        share = mean_share(pursue_mask(deals, trial))
        records.append(
            {"setting": "pursue_min_expected_margin", "value": candidate, "share": share}
        )
        if share >= targets.pursue_margin_share:
            line = float(candidate)
    rules = rules.model_copy(update={"pursue_min_expected_margin": line})
    floor = 0.0
    for candidate in np.round(np.arange(0.0, 0.41, 0.01), 2):
        trial = rules.model_copy(update={"decline_below_probability": float(candidate)})
        share = mean_share(
            decline_mask(deals, trial) & (deals["probability"] < candidate).to_numpy()
        )
        records.append({"setting": "decline_below_probability", "value": candidate, "share": share})
        if share <= targets.decline_margin_share:
            floor = float(candidate)
    rules = rules.model_copy(update={"decline_below_probability": floor})
    judged: dict[int | None, pd.DataFrame] = {None: judge_periods(replayed, rules)}
    for count in range(1, 6):
        trial = rules.model_copy(update={"qualify_min_red_flags": count})
        judged[count] = judge_periods(replayed, trial)
    baseline = _mean(judged[None], "pursue_vs_oracle")
    best: int | None = None
    for count in range(1, 6):
        score = _mean(judged[count], "pursue_vs_oracle")
        records.append({"setting": "qualify_min_red_flags", "value": count, "share": score})
        if score > baseline + MIN_GAIN and (
            best is None or score > _mean(judged[best], "pursue_vs_oracle")
        ):
            best = count
    records.append({"setting": "qualify_min_red_flags", "value": np.nan, "share": baseline})
    rules = rules.model_copy(update={"qualify_min_red_flags": best})
    return rules, pd.DataFrame(records, columns=["setting", "value", "share"])


def _mean(table: pd.DataFrame, column: str) -> float:
    row = table[table["period"] == "mean"]
    return float(row[column].iloc[0]) if len(row) else float("nan")


@dataclass
class TriageBacktest:
    """The replay: the chosen thresholds, the figures per month with them, and every threshold tried."""

    rules: RecommendationRules
    periods: pd.DataFrame
    trials: pd.DataFrame
    measure: str


def backtest_triage(
    replayed: ReplayedDeals, config: ScoreConfig, *, choose: bool = True
) -> TriageBacktest:
    """Give the triage replay judged with the thresholds it chooses (or, ``choose`` False, the config's)."""
    if choose:
        rules, trials = choose_thresholds(replayed, config)
    else:
        rules, trials = config.recommendation, pd.DataFrame(columns=["setting", "value", "share"])
    return TriageBacktest(rules, judge_periods(replayed, rules), trials, replayed.measure)


def generator_truth(today: pd.Timestamp) -> TruthFunction:
    """Give the generator's true win probability of point-in-time rows (for the demo history only)."""
    from winmodel.features.rows import AS_OF
    from winmodel.synth.generator import true_win_logit

    def truth(deals: pd.DataFrame) -> np.ndarray:
        state = deals.rename(columns={AS_OF: "snapshot_date"})
        logit = true_win_logit(deals, state, today=pd.Timestamp(today).date())
        probability: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
        return probability

    return truth
