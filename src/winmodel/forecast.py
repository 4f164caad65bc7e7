"""Expected bookings with a range, and an honest replay of past forecasts.

A pipeline's bookings are a sum of independent bets: deal *i* brings its
amount with probability *p_i*, nothing otherwise. Their total is distributed
as ``sum(amount_i * Bernoulli(p_i))``: the mean is exact (``sum(amount_i *
p_i)``), the quantiles come from exact enumeration for a handful of deals and
from Monte Carlo with a fixed seed otherwise (vectorised, in chunks, so a large
pipeline does not fill memory). The CRM's stage-weighted forecast is the same
sum with ``crm_probability / 100`` in place of the model's probability.

Independence is an assumption: deals that move together (one buyer's budget
freeze, a competitor's price cut, a whole quarter slipping) make the real
range wider than the band. :func:`backtest_forecast` measures how often the
band covered what was actually won.

The replay (:func:`backtest_forecast`) rebuilds, for each past period, the
forecast that could have been made on its first day ``t``: the model's recipe
refitted with only the deals closed before ``t``, applied to the deals open at
``t`` as the CRM showed them then (their latest snapshot on or before ``t``,
never the row of their own close), whose expected close date (as of ``t``)
falls in the period. The actual is the amount those same deals were finally
won for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from winmodel.features import AS_OF, EXPECTED_CLOSE, select_latest_rows
from winmodel.model import WinModel
from winmodel.pipeline_config import TrainConfig

log = logging.getLogger(__name__)

Period = Literal["month", "quarter"]
PERIOD_CODES = {"month": "M", "quarter": "Q"}

DEFAULT_DRAWS = 20_000
#: Up to this many deals the quantiles are exact (2**12 outcomes); above, Monte Carlo.
EXACT_MAX_DEALS = 12
#: Uniform draws per Monte Carlo chunk (deals x draws): bounds memory at about 40 MB.
CHUNK_CELLS = 2_000_000
QUANTILES = (0.1, 0.5, 0.9)

FORECAST_COLUMNS = ("period", "deals", "pipeline_amount", "expected", "p10", "p50", "p90",
                    "crm_weighted", "crm_p10", "crm_p90")
BACKTEST_COLUMNS = ("period", "cutoff", "method", "deals", "unresolved_dropped", "pipeline_amount",
                    "forecast", "p10", "p50", "p90", "actual", "error", "abs_error", "covered")
METHODS = ("winmodel", "stage_weighted")


@dataclass(frozen=True)
class Bookings:
    """The distribution of one period's bookings."""

    mean: float
    p10: float
    p50: float
    p90: float
    std: float


def bookings_distribution(amount: Sequence[float] | np.ndarray, probability: Sequence[float] | np.ndarray, *,
                          draws: int = DEFAULT_DRAWS, seed: int | Sequence[int] = 0,
                          exact_max_deals: int = EXACT_MAX_DEALS, chunk_cells: int = CHUNK_CELLS) -> Bookings:
    """Give mean, P10, P50, P90 and standard deviation of ``sum(amount * Bernoulli(probability))``.

    Deals are independent. Mean and standard deviation are exact; quantiles are
    exact (inverted CDF: the smallest total whose cumulative probability reaches
    the level) up to ``exact_max_deals`` deals, else Monte Carlo estimates from
    ``draws`` draws seeded by ``seed`` (the same seed gives the same figures,
    whatever ``chunk_cells``).
    """
    amount = np.asarray(amount, dtype=float)
    probability = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    if amount.shape != probability.shape:
        raise ValueError(f"amount and probability differ in length: {amount.shape} vs {probability.shape}")
    if len(amount) == 0:
        return Bookings(0.0, 0.0, 0.0, 0.0, 0.0)
    if not (np.isfinite(amount).all() and np.isfinite(probability).all()):
        raise ValueError("amount and probability must be finite (no blanks)")
    mean = float(amount @ probability)
    std = float(np.sqrt(np.sum(amount**2 * probability * (1 - probability))))
    if len(amount) <= exact_max_deals:
        quantiles = _exact_quantiles(amount, probability)
    else:
        quantiles = _sampled_quantiles(amount, probability, draws, seed, chunk_cells)
    return Bookings(mean, *(float(q) for q in quantiles), std)


def _exact_quantiles(amount: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Give P10, P50, P90 by enumerating every won/lost outcome of a few deals."""
    outcomes = (np.arange(2 ** len(amount))[:, None] >> np.arange(len(amount))) & 1
    totals = outcomes @ amount
    chance = np.prod(np.where(outcomes == 1, probability, 1 - probability), axis=1)
    order = np.argsort(totals, kind="stable")
    cumulative = np.cumsum(chance[order])
    # A small tolerance so that P(total <= x) = 0.1 exactly counts as reaching the 10 % level.
    index = np.searchsorted(cumulative, np.asarray(QUANTILES) - 1e-12, side="left")
    return totals[order][np.minimum(index, len(order) - 1)]


def _sampled_quantiles(amount: np.ndarray, probability: np.ndarray, draws: int, seed: int | Sequence[int],
                       chunk_cells: int) -> np.ndarray:
    """Give P10, P50, P90 from ``draws`` Monte Carlo totals, drawn in chunks of whole draws."""
    rng = np.random.default_rng(seed)
    totals = np.empty(draws)
    rows = max(1, chunk_cells // len(amount))
    for start in range(0, draws, rows):
        stop = min(start + rows, draws)
        # Draws are consumed row by row, so the totals do not depend on the chunk size.
        won = rng.random((stop - start, len(amount))) < probability
        totals[start:stop] = won @ amount
    return np.quantile(totals, QUANTILES, method="inverted_cdf")


def period_of(dates: pd.Series, by: Period = "month") -> pd.Series:
    """Give the calendar month or quarter of each date (NaT stays missing)."""
    if by not in PERIOD_CODES:
        raise ValueError(f"by must be 'month' or 'quarter', got {by!r}")
    return pd.to_datetime(dates).dt.to_period(PERIOD_CODES[by])


def _period_seed(seed: int, period: pd.Period | None) -> list[int]:
    # Seeded by the period itself, so a period's figures do not depend on which other periods are present.
    return [seed, 0 if period is None else int(period.ordinal) + 1]


def forecast_by_period(deals: pd.DataFrame, *, by: Period = "month", probability: str = "win_probability",
                       draws: int = DEFAULT_DRAWS, seed: int = 0) -> pd.DataFrame:
    """Give expected bookings per expected close period, with P10/P50/P90 and the CRM's stage-weighted forecast.

    Needs ``amount``, ``close_date`` (the expected close date of an open deal)
    and the ``probability`` column (0-1); ``crm_probability`` (0-100) is used
    when present. Rows lacking any of the needed values are left out (the caller
    reports them). One row per period in time order, then a ``total`` row whose
    range is that of the whole pipeline (not the sum of the periods' ranges).
    """
    frame = pd.DataFrame({
        "amount": pd.to_numeric(deals["amount"], errors="coerce"),
        "probability": pd.to_numeric(deals[probability], errors="coerce"),
        "period": period_of(deals["close_date"], by),
    }, index=deals.index)
    has_crm = "crm_probability" in deals and pd.to_numeric(deals["crm_probability"], errors="coerce").notna().any()
    if has_crm:
        frame["crm"] = pd.to_numeric(deals["crm_probability"], errors="coerce").fillna(0.0) / 100.0
    frame = frame.dropna(subset=["amount", "probability", "period"])
    records = []
    groups = [(period, part) for period, part in frame.groupby("period", sort=True)]
    groups.append((None, frame))
    for period, part in groups:
        model = bookings_distribution(part["amount"], part["probability"], draws=draws,
                                      seed=_period_seed(seed, period))
        record = {"period": "total" if period is None else str(period), "deals": len(part),
                  "pipeline_amount": float(part["amount"].sum()), "expected": model.mean,
                  "p10": model.p10, "p50": model.p50, "p90": model.p90}
        if has_crm:
            crm = bookings_distribution(part["amount"], part["crm"], draws=draws, seed=_period_seed(seed, period))
            record.update(crm_weighted=crm.mean, crm_p10=crm.p10, crm_p90=crm.p90)
        else:
            record.update(crm_weighted=np.nan, crm_p10=np.nan, crm_p90=np.nan)
        records.append(record)
    return pd.DataFrame(records, columns=list(FORECAST_COLUMNS))


# --------------------------------------------------------------------------- the replay

def resolved_periods(as_of: pd.Timestamp, by: Period = "month", count: int = 8) -> list[pd.Period]:
    """Give the last ``count`` periods that ended on or before ``as_of``, oldest first."""
    code = PERIOD_CODES[by]
    first_unfinished = (pd.Timestamp(as_of) + pd.Timedelta(days=1)).to_period(code)
    return [first_unfinished - offset for offset in range(count, 0, -1)]


def open_deals_at(history: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Give each deal open at ``cutoff`` as the CRM showed it then: its latest snapshot on or before ``cutoff``.

    ``history`` is :func:`winmodel.features.add_history_features` output
    (``opportunity_id``, ``as_of_date``, ``created_date``, ``close_date`` (the
    actual one for closed deals), ``status``). A deal is open at ``cutoff``
    when it was created before it and had not closed before it. Its close-day
    row (on a closed deal's ``close_date``, the CRM already shows the outcome)
    is never used.
    """
    cutoff = pd.Timestamp(cutoff)
    is_open = history["status"].eq("open")
    known = (history[AS_OF] <= cutoff) & (is_open | (history[AS_OF] < history["close_date"]))
    open_then = (history["created_date"] < cutoff) & (is_open | (history["close_date"] >= cutoff))
    return select_latest_rows(history[known & open_then], cutoff)


def deals_expected_in(history: pd.DataFrame, period: pd.Period) -> pd.DataFrame:
    """Give the deals open at the period's first day whose expected close date (as then) lies in the period."""
    cutoff = period.start_time.normalize()
    open_rows = open_deals_at(history, cutoff)
    expected = pd.to_datetime(open_rows[EXPECTED_CLOSE] if EXPECTED_CLOSE in open_rows else open_rows["close_date"])
    return open_rows[(expected.dt.to_period(period.freqstr) == period).to_numpy()].reset_index(drop=True)


@dataclass
class ForecastBacktest:
    """The replay: one row per period and method, the summary per method, and the periods skipped as unresolved."""

    periods: pd.DataFrame
    summary: pd.DataFrame
    skipped: pd.DataFrame


Refit = Callable[[WinModel, pd.DataFrame, pd.Timestamp, TrainConfig], WinModel]

#: How far back the replay looks for resolved periods.
MAX_LOOKBACK_PERIODS = 36


def choose_replay_periods(history: pd.DataFrame, as_of: pd.Timestamp, *, by: Period = "month", periods: int = 8,
                          max_unresolved_share: float = 0.05
                          ) -> tuple[list[tuple[pd.Period, pd.DataFrame]], pd.DataFrame]:
    """Give the last ``periods`` resolved periods with their deals, and the periods skipped as unresolved.

    A period is resolved when it ended on or before ``as_of`` and at most
    ``max_unresolved_share`` of the deals expected in it (as of its first day)
    are still open at ``as_of``: their outcome is unknown, and the fast deals
    that did close would misrepresent the period.
    """
    candidates = resolved_periods(as_of, by, MAX_LOOKBACK_PERIODS)
    chosen: list[tuple[pd.Period, pd.DataFrame]] = []
    skipped = []
    for period in reversed(candidates):
        deals = deals_expected_in(history, period)
        if deals.empty:
            continue
        open_share = float(deals["status"].eq("open").mean())
        if open_share > max_unresolved_share:
            skipped.append({"period": str(period), "deals": len(deals), "still_open_share": open_share})
            continue
        chosen.append((period, deals))
        if len(chosen) == periods:
            break
    return chosen[::-1], pd.DataFrame(skipped, columns=["period", "deals", "still_open_share"])


def backtest_forecast(model: WinModel, training_rows: pd.DataFrame, history: pd.DataFrame,
                      final_amount: pd.Series, config: TrainConfig, *, as_of: pd.Timestamp,
                      by: Period = "month", periods: int = 8, max_unresolved_share: float = 0.05,
                      draws: int = DEFAULT_DRAWS, seed: int = 0, refit: Refit | None = None,
                      progress: Callable[[str], None] | None = None) -> ForecastBacktest:
    """Give the replay of the last ``periods`` resolved periods, winmodel beside the stage-weighted forecast.

    Periods are chosen by :func:`choose_replay_periods`. For each period
    starting at ``t``: the model's recipe is refitted (``refit``, default
    :func:`winmodel.train.refit_at`) on the training rows of deals closed before
    ``t`` only; the deals open at ``t`` whose expected close date as of ``t``
    lies in the period (:func:`deals_expected_in`) are forecast with the
    refitted model and with their CRM stage probability. Deals still open at
    ``as_of`` have no outcome yet: they are dropped and counted
    (``unresolved_dropped``). The actual is the sum of ``final_amount``
    (indexed by opportunity_id) over the deals won; the forecasts use the
    amount as it stood at ``t``.

    ``training_rows`` come from :func:`winmodel.jobs.train.build_training_rows`;
    ``history`` from :func:`winmodel.features.add_history_features`.
    """
    if refit is None:
        from winmodel.train import refit_at as refit
    say = progress or (lambda message: log.info(message))
    chosen, skipped = choose_replay_periods(history, as_of, by=by, periods=periods,
                                            max_unresolved_share=max_unresolved_share)
    if len(skipped):
        say(f"skipped {len(skipped)} recent {by}s whose deals are not resolved yet "
            f"({', '.join(f'{r.period}: {r.still_open_share:.0%} still open' for r in skipped.itertuples())})")
    records = []
    for period, in_period in chosen:
        cutoff = period.start_time.normalize()
        # Only outcomes known at the cut-off reach the refit (refit_at also limits itself to them).
        known = training_rows[training_rows["close_date"] < cutoff]
        refitted = refit(model, known, cutoff, config)
        resolved = in_period[in_period["status"].isin(["won", "lost"])].reset_index(drop=True)
        dropped = len(in_period) - len(resolved)
        amount = pd.to_numeric(resolved["amount"], errors="coerce").fillna(0.0).to_numpy()
        won = resolved["status"].eq("won").to_numpy()
        actual = float(resolved.loc[won, "opportunity_id"].map(final_amount).fillna(0.0).sum())
        probabilities = {"winmodel": refitted.predict_proba(resolved) if len(resolved) else np.zeros(0)}
        if "crm_probability" in resolved and resolved["crm_probability"].notna().any():
            probabilities["stage_weighted"] = (resolved["crm_probability"].astype(float).fillna(0.0) / 100.0
                                               ).clip(0, 1).to_numpy()
        for method, probability in probabilities.items():
            bookings = bookings_distribution(amount, probability, draws=draws, seed=_period_seed(seed, period))
            records.append({
                "period": str(period), "cutoff": f"{cutoff:%Y-%m-%d}", "method": method,
                "deals": len(resolved), "unresolved_dropped": dropped, "pipeline_amount": float(amount.sum()),
                "forecast": bookings.mean, "p10": bookings.p10, "p50": bookings.p50, "p90": bookings.p90,
                "actual": actual, "error": bookings.mean - actual, "abs_error": abs(bookings.mean - actual),
                "covered": bool(bookings.p10 <= actual <= bookings.p90),
            })
        say(f"replay {period}: {len(resolved):,} deals expected to close, forecast "
            f"{records[-len(probabilities)]['forecast']:,.0f} vs actual {actual:,.0f}"
            + (f" ({dropped} still open, left out)" if dropped else ""))
    table = pd.DataFrame(records, columns=list(BACKTEST_COLUMNS))
    return ForecastBacktest(periods=table, summary=summarise_backtest(table), skipped=skipped)


def summarise_backtest(table: pd.DataFrame) -> pd.DataFrame:
    """Give per method: periods, MAE, mean error (bias), MAE as a share of the mean actual, P10-P90 coverage."""
    records = []
    for method in [m for m in METHODS if m in set(table["method"])]:
        part = table[table["method"] == method]
        mean_actual = float(part["actual"].mean())
        records.append({
            "method": method, "periods": len(part), "mae": float(part["abs_error"].mean()),
            "bias": float(part["error"].mean()),
            "relative_mae": float(part["abs_error"].mean() / mean_actual) if mean_actual else float("nan"),
            "coverage_p10_p90": float(part["covered"].mean()),
            "unresolved_dropped": int(part["unresolved_dropped"].sum()),
        })
    return pd.DataFrame(records, columns=["method", "periods", "mae", "bias", "relative_mae",
                                          "coverage_p10_p90", "unresolved_dropped"])
