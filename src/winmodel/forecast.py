"""Expected bookings with a range, and an honest replay of past forecasts.

A pipeline's bookings are a sum of bets: deal *i* brings its
amount with probability *p_i*, nothing otherwise. Their total is distributed
as ``sum(amount_i * Bernoulli(p_i))`` when deals are independent: the mean is exact (``sum(amount_i *
p_i)``), the quantiles come from exact enumeration for a handful of deals and
from Monte Carlo with a fixed seed otherwise (vectorised, in chunks, so a large
pipeline does not fill memory). The CRM's stage-weighted forecast is the same
sum with ``crm_probability / 100`` in place of the model's probability.

Deals are not independent: a month where the market turns, or where the model
is a little too pessimistic, moves every deal of the month the same way. The
band therefore adds a *shared shift*: each Monte Carlo draw moves the log-odds
of all the period's deals by the same ``z ~ N(0, sigma^2)``. ``sigma`` is
measured, never assumed: forecasts of past months are rebuilt as of each
month's first day with the recipe refitted on what was known then
(:func:`replay_forecast_errors`); for each month resolved since, the shift
that would have made its forecast match what was won is found, and the part
of those shifts' spread that independent deals cannot explain is kept
(:func:`estimate_shared_shift`, method of moments). Training measures it on
the latest resolved months and stores it with the model
(:func:`measure_shared_shift`); :func:`backtest_forecast` measures it again at
each replayed period's start from the months before it, and reports how often
the band covered what was won.

The replay (:func:`backtest_forecast`) rebuilds, for each past period, the
forecast that could have been made on its first day ``t``: the model's recipe
refitted with only the deals closed before ``t``, applied to the deals open at
``t`` as the CRM showed them then (their latest snapshot on or before ``t``,
never the row of their own close), whose expected close date (as of ``t``)
falls in the period. The actual is the amount those same deals were finally
won for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from winmodel.errors import GateError
from winmodel.features import AS_OF, EXPECTED_CLOSE, select_latest_rows
from winmodel.model import WinModel
from winmodel.pipeline_config import MIN_SHIFT_PERIODS, TrainConfig

log = logging.getLogger(__name__)

Period = Literal["month", "quarter"]
PERIOD_CODES = {"month": "M", "quarter": "Q"}

DEFAULT_DRAWS = 20_000
#: Up to this many deals the quantiles are exact (2**12 outcomes); above, Monte Carlo.
EXACT_MAX_DEALS = 12
#: Uniform draws per Monte Carlo chunk (deals x draws): bounds memory at about 40 MB.
CHUNK_CELLS = 2_000_000
QUANTILES = (0.1, 0.5, 0.9)
#: Gauss-Hermite nodes for the exact path's integral over the shared shift.
SHIFT_NODES = 40
#: The shared shift is measured on at most this many of the latest resolved periods by default, and
#: only from MIN_SHIFT_PERIODS on (with fewer the band keeps deals independent).
SHIFT_WINDOW = 12

FORECAST_COLUMNS = ("period", "deals", "pipeline_amount", "expected", "p10", "p50", "p90",
                    "crm_weighted", "crm_p10", "crm_p90")
BACKTEST_COLUMNS = ("period", "cutoff", "method", "deals", "unresolved_dropped", "pipeline_amount",
                    "forecast", "p10", "p50", "p90", "actual", "error", "abs_error", "covered",
                    "shift_sigma", "shift_periods")
#: The file beside an exported model that carries its forecast band's shared shift (read without loading it).
FORECAST_BAND_FILE = "FORECAST_BAND.json"
ERROR_COLUMNS = ("period", "opportunity_id", "amount", "probability", "status", "close_date")
SHIFT_COLUMNS = ("period", "deals", "shift", "standard_error")
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
                          shift_sigma: float = 0.0, draws: int = DEFAULT_DRAWS, seed: int | Sequence[int] = 0,
                          exact_max_deals: int = EXACT_MAX_DEALS, chunk_cells: int = CHUNK_CELLS) -> Bookings:
    """Give mean, P10, P50, P90 and standard deviation of ``sum(amount * Bernoulli(probability))``.

    With ``shift_sigma`` 0 the deals are independent. Otherwise every deal's
    log-odds move together by one ``z ~ N(0, shift_sigma^2)`` (the shared shift,
    see the module notes), centred so that each deal's average probability stays
    ``probability``: the mean is ``sum(amount * probability)`` either way. Mean and
    standard deviation are exact (the shift integrated by a 40-node Gauss-Hermite
    rule); quantiles are exact (inverted CDF: the smallest total whose
    cumulative probability reaches the level) up to ``exact_max_deals`` deals,
    else Monte Carlo estimates from ``draws`` draws seeded by ``seed`` (the same
    seed gives the same figures, whatever ``chunk_cells``).
    """
    amount = np.asarray(amount, dtype=float)
    probability = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    if amount.shape != probability.shape:
        raise ValueError(f"amount and probability differ in length: {amount.shape} vs {probability.shape}")
    if not (np.isfinite(shift_sigma) and shift_sigma >= 0):
        raise ValueError(f"shift_sigma must be a finite number >= 0, got {shift_sigma!r}")
    if len(amount) == 0:
        return Bookings(0.0, 0.0, 0.0, 0.0, 0.0)
    if not (np.isfinite(amount).all() and np.isfinite(probability).all()):
        raise ValueError("amount and probability must be finite (no blanks)")
    mean = float(amount @ probability)
    nodes, weights = _shift_nodes(shift_sigma)
    log_odds = _centred_log_odds(probability, nodes, weights) if shift_sigma else None
    shifted = _shifted_probability(probability, log_odds, nodes)  # one row per node
    expected = shifted @ amount
    within = (shifted * (1 - shifted)) @ amount**2
    std = float(np.sqrt(weights @ within + weights @ (expected - weights @ expected) ** 2))
    if len(amount) <= exact_max_deals:
        quantiles = _exact_quantiles(amount, shifted, weights)
    else:
        quantiles = _sampled_quantiles(amount, probability, log_odds, shift_sigma, draws, seed, chunk_cells)
    return Bookings(mean, *(float(q) for q in quantiles), std)


def _shift_nodes(shift_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Give the shared shift's quadrature nodes and weights (one node at 0 when there is no shift)."""
    if shift_sigma == 0:
        return np.zeros(1), np.ones(1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(SHIFT_NODES)
    return nodes * shift_sigma, weights / weights.sum()


def _centred_log_odds(probability: np.ndarray, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Give log-odds that, shifted by the shared shift (its quadrature ``nodes``), average back to ``probability``.

    A symmetric shift of the log-odds pulls the average probability towards
    one half. Each deal's log-odds ``l`` solve ``E[expit(l + z)] == p`` (the
    expectation by the Gauss-Hermite rule of :func:`_shift_nodes`): Newton
    steps from the probit approximation ``logit(p) * sqrt(1 + pi * sigma^2 / 8)``.
    Probabilities of exactly 0 or 1 stay certain.
    """
    variance = float(weights @ nodes**2)
    with np.errstate(divide="ignore"):
        centred = logit(probability) * np.sqrt(1 + np.pi * variance / 8)
    inside = (probability > 0) & (probability < 1)
    log_odds, target = centred[inside], probability[inside]
    for _ in range(50):
        shifted = expit(log_odds[:, None] + nodes[None, :])
        gap = shifted @ weights - target
        slope = (shifted * (1 - shifted)) @ weights
        log_odds = log_odds - np.clip(gap / np.maximum(slope, 1e-300), -1.0, 1.0)
        if np.all(np.abs(gap) <= 1e-12 + 1e-9 * np.minimum(target, 1 - target)):
            break
    centred[inside] = log_odds
    return centred


def _shifted_probability(probability: np.ndarray, log_odds: np.ndarray | None, shifts: np.ndarray) -> np.ndarray:
    """Give each deal's probability under each shift (one row per shift); ``log_odds`` None: no shift."""
    if log_odds is None:
        return np.broadcast_to(probability, (len(shifts), len(probability)))
    return expit(log_odds[None, :] + shifts[:, None])


def _exact_quantiles(amount: np.ndarray, shifted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Give P10, P50, P90 by enumerating every won/lost outcome of a few deals, averaged over the shifts."""
    outcomes = (np.arange(2 ** len(amount))[:, None] >> np.arange(len(amount))) & 1
    totals = outcomes @ amount
    chance = np.zeros(len(totals))
    for probability, weight in zip(shifted, weights, strict=True):
        chance += weight * np.prod(np.where(outcomes == 1, probability, 1 - probability), axis=1)
    order = np.argsort(totals, kind="stable")
    cumulative = np.cumsum(chance[order])
    # A small tolerance so that P(total <= x) = 0.1 exactly counts as reaching the 10 % level.
    index = np.searchsorted(cumulative, np.asarray(QUANTILES) - 1e-12, side="left")
    return totals[order][np.minimum(index, len(order) - 1)]


def _sampled_quantiles(amount: np.ndarray, probability: np.ndarray, log_odds: np.ndarray | None,
                       shift_sigma: float, draws: int, seed: int | Sequence[int], chunk_cells: int) -> np.ndarray:
    """Give P10, P50, P90 from ``draws`` Monte Carlo totals, drawn in chunks of whole draws.

    ``log_odds`` are the centred log-odds the shared shift moves (None: no shift).
    """
    rng = np.random.default_rng(seed)
    if log_odds is not None:
        # The shifts come from their own stream, so the deals' draws are those of the unshifted band.
        shifts = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]).normal(0.0, shift_sigma, draws)
    totals = np.empty(draws)
    rows = max(1, chunk_cells // len(amount))
    for start in range(0, draws, rows):
        stop = min(start + rows, draws)
        # Draws are consumed row by row, so the totals do not depend on the chunk size.
        uniform = rng.random((stop - start, len(amount)))
        won = uniform < (probability if log_odds is None else expit(log_odds[None, :] + shifts[start:stop, None]))
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
                       shift_sigma: float = 0.0, draws: int = DEFAULT_DRAWS, seed: int = 0) -> pd.DataFrame:
    """Give expected bookings per expected close period, with P10/P50/P90 and the CRM's stage-weighted forecast.

    Needs ``amount``, ``close_date`` (the expected close date of an open deal)
    and the ``probability`` column (0-1); ``crm_probability`` (0-100) is used
    when present. Rows lacking any of the needed values are left out (the caller
    reports them). One row per period in time order, then a ``total`` row whose
    range is that of the whole pipeline (not the sum of the periods' ranges).
    The model's band includes the shared shift ``shift_sigma`` (measured by
    training, on months); the CRM's band treats its deals as independent. A
    quarter, and the total, get one shift for all their deals: right when
    shifts persist from month to month (they do on the demo history), wider
    than needed when months move independently.
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
        model = bookings_distribution(part["amount"], part["probability"], shift_sigma=shift_sigma, draws=draws,
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


# --------------------------------------------------------------------------- the shared shift

#: How a replay refits the model's recipe on what was known at a day (default :func:`winmodel.train.refit_at`).
Refit = Callable[[WinModel, pd.DataFrame, pd.Timestamp, TrainConfig], WinModel]


def replay_forecast_errors(model: WinModel, training_rows: pd.DataFrame, config: TrainConfig,
                           periods: Sequence[tuple[pd.Period, pd.DataFrame]], *, refit_every: int = 1,
                           refit: Refit | None = None, progress: Callable[[str], None] | None = None
                           ) -> pd.DataFrame:
    """Give, per deal, the forecast made at each period's first day by the recipe refitted on what was known then.

    ``periods`` pairs each period with the deals expected in it
    (:func:`deals_expected_in`), in time order. The recipe is refitted at the first of every ``refit_every`` periods
    (default :func:`winmodel.train.refit_at`, on the training rows closed
    before that day); a refit forecasts the periods until the next one, all
    of which start after it. A period with too little history before it to
    refit is left out. The rows (:data:`ERROR_COLUMNS`) keep each deal's final
    ``status`` and ``close_date`` so that :func:`estimate_shared_shift` can
    tell, for any later day, which outcomes were known then.
    """
    say = progress or (lambda message: log.info(message))
    frames = []
    refitted: WinModel | None = None
    for position, (period, deals) in enumerate(periods):
        if position % refit_every == 0 or refitted is None:
            refitted = _refit_known_at(refit, model, training_rows, period, config)
        if refitted is None or deals.empty:
            say(f"shared shift: {period} left out ({'no deals' if deals.empty else 'too little history before it'})")
            continue
        frames.append(_error_rows(period, deals, refitted.predict_proba(deals)))
    if not frames:
        return pd.DataFrame(columns=list(ERROR_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _error_rows(period: pd.Period, deals: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "period": str(period), "opportunity_id": deals["opportunity_id"].to_numpy(),
        "amount": pd.to_numeric(deals["amount"], errors="coerce").fillna(0.0).to_numpy(),
        "probability": probability, "status": deals["status"].to_numpy(),
        "close_date": pd.to_datetime(deals["close_date"]).to_numpy(),
    }, columns=list(ERROR_COLUMNS))


def period_shift(amount: np.ndarray, probability: np.ndarray, won: np.ndarray) -> tuple[float, float] | None:
    """Give the log-odds shift that makes a period's forecast equal what was won, and its standard error.

    The shift ``d`` solves ``sum(amount * expit(logit(p) + d)) == sum(amount * won)``.
    Its standard error is what independent deals alone would produce (delta
    method). A period where nothing (or everything) was won has no finite
    shift: half its smallest deal is counted as won (or lost) instead, a
    continuity correction that keeps such periods, with a large shift. None
    when the period has no amount at all.
    """
    amount, won = np.asarray(amount, dtype=float), np.asarray(won, dtype=bool)
    log_odds = logit(np.clip(np.asarray(probability, dtype=float), 1e-9, 1 - 1e-9))
    total = float(amount.sum())
    if total <= 0:
        return None
    half_smallest = float(amount[amount > 0].min()) / 2
    target = float(np.clip(amount[won].sum(), half_smallest, total - half_smallest))

    def gap(shift: float) -> float:
        return float(amount @ expit(log_odds + shift)) - target

    low, high = -1.0, 1.0
    while gap(low) > 0:
        low *= 2
    while gap(high) < 0:
        high *= 2
    shift = brentq(gap, low, high, xtol=1e-9)
    shifted = expit(log_odds + shift)
    slope = float(amount @ (shifted * (1 - shifted)))
    return shift, float(np.sqrt(amount**2 @ (shifted * (1 - shifted))) / slope)


@dataclass(frozen=True)
class SharedShift:
    """The measured shared shift: its standard deviation and the periods it was measured on."""

    sigma: float
    periods: pd.DataFrame  # SHIFT_COLUMNS, one row per period used
    #: Why it was not measured, when the reason is not a lack of resolved periods.
    note: str | None = None

    @classmethod
    def unmeasured(cls, note: str) -> SharedShift:
        """Give the shift that could not be measured (sigma 0: deals independent), and why."""
        return cls(0.0, pd.DataFrame(columns=list(SHIFT_COLUMNS)), note)

    @property
    def measured(self) -> bool:
        """Whether enough periods were resolved to measure it (otherwise sigma is 0: deals independent)."""
        return self.note is None and len(self.periods) >= MIN_SHIFT_PERIODS

    def describe(self) -> str:
        """Give one line for people: the shift and where it comes from."""
        if self.note is not None:
            return f"shared shift not measured ({self.note}): the band treats deals as independent"
        if not self.measured:
            return (f"shared shift not measured ({len(self.periods)} resolved periods, "
                    f"{MIN_SHIFT_PERIODS} needed): the band treats deals as independent")
        return (f"shared shift sigma {self.sigma:.3f} log-odds, measured on {len(self.periods)} periods "
                f"({self.periods['period'].iloc[0]} to {self.periods['period'].iloc[-1]})")


def estimate_shared_shift(errors: pd.DataFrame, cutoff: pd.Timestamp, *, max_unresolved_share: float = 0.05,
                          window: int = SHIFT_WINDOW) -> SharedShift:
    """Give the shared shift as it could be measured on ``cutoff`` from ``errors`` (:func:`replay_forecast_errors`).

    A period counts when it ended before ``cutoff`` and at most
    ``max_unresolved_share`` of its deals had no known outcome then (still open,
    or closed on or after ``cutoff``); only the outcomes known then are used. Of
    those periods, the latest ``window`` give one shift each
    (:func:`period_shift`); ``sigma^2`` is their mean square less their mean
    squared standard error (what independent deals explain), floored at 0. A
    steady bias counts as spread here: the band widens for it rather than
    moving. Fewer than :data:`MIN_SHIFT_PERIODS` periods give ``sigma`` 0.
    """
    cutoff = pd.Timestamp(cutoff)
    records = []
    for period_label, deals in errors.groupby("period", sort=True):
        period = pd.Period(period_label)
        if period.end_time >= cutoff:
            continue
        known = deals["status"].isin(["won", "lost"]).to_numpy() & (deals["close_date"] < cutoff).to_numpy()
        if 1 - known.mean() > max_unresolved_share:
            continue
        part = deals[known]
        shift = period_shift(part["amount"].to_numpy(), part["probability"].to_numpy(),
                             part["status"].eq("won").to_numpy())
        if shift is not None:
            records.append({"period": str(period), "deals": len(part), "shift": shift[0],
                            "standard_error": shift[1]})
    periods = pd.DataFrame(records, columns=list(SHIFT_COLUMNS)).tail(window).reset_index(drop=True)
    if len(periods) < MIN_SHIFT_PERIODS:
        return SharedShift(0.0, periods)
    variance = float(np.mean(periods["shift"] ** 2) - np.mean(periods["standard_error"] ** 2))
    return SharedShift(float(np.sqrt(max(variance, 0.0))), periods)


def measure_shared_shift(model: WinModel, training_rows: pd.DataFrame, history: pd.DataFrame,
                         config: TrainConfig, as_of: pd.Timestamp, *, refit: Refit | None = None,
                         progress: Callable[[str], None] | None = None) -> SharedShift:
    """Give the shared shift of ``model``'s recipe as measured on ``as_of`` (what training stores with the model).

    The latest ``config.forecast.shift_months`` months resolved by ``as_of``
    (:func:`choose_replay_periods`) are forecast as of their first day
    (:func:`replay_forecast_errors`, refitting every
    ``config.forecast.refit_every_months``), and give the shift
    (:func:`estimate_shared_shift`).
    """
    settings = config.forecast
    if settings.shift_months == 0:
        return SharedShift.unmeasured("forecast.shift_months is 0")
    chosen, _ = choose_replay_periods(history, as_of, periods=settings.shift_months,
                                      max_unresolved_share=settings.max_open_share)
    errors = replay_forecast_errors(model, training_rows, config, chosen, refit_every=settings.refit_every_months,
                                    refit=refit, progress=progress)
    # Outcomes recorded on the as-of day itself are known.
    return estimate_shared_shift(errors, pd.Timestamp(as_of) + pd.Timedelta(days=1),
                                 max_unresolved_share=settings.max_open_share, window=settings.shift_months)


def forecast_band_json(model: WinModel) -> str:
    """Give the shared shift training measured for ``model`` as the JSON written beside its export."""
    return json.dumps(model.metadata["forecast_shift"], indent=2) + "\n"


@dataclass
class ForecastBacktest:
    """The replay: one row per period and method, the summary per method, and the periods skipped as unresolved."""

    periods: pd.DataFrame
    summary: pd.DataFrame
    skipped: pd.DataFrame


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
                      warmup_periods: int | None = None, draws: int = DEFAULT_DRAWS, seed: int = 0,
                      refit: Refit | None = None, progress: Callable[[str], None] | None = None) -> ForecastBacktest:
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

    winmodel's band includes the shared shift measured at ``t``
    (:func:`estimate_shared_shift`, on up to ``config.forecast.shift_months``
    periods) from the forecasts of earlier periods, each made the same way at
    its own first day: the ``warmup_periods`` (default
    ``config.forecast.shift_months`` months; by quarter, a third of that plus
    two, at least five) periods before the first replayed one,
    refitted only for this, and the replayed periods already resolved at
    ``t``. The stage-weighted band treats deals as independent.

    ``training_rows`` come from :func:`winmodel.jobs.train.build_training_rows`;
    ``history`` from :func:`winmodel.features.add_history_features`.
    """
    say = progress or (lambda message: log.info(message))
    chosen, skipped = choose_replay_periods(history, as_of, by=by, periods=periods,
                                            max_unresolved_share=max_unresolved_share)
    if len(skipped):
        say(f"skipped {len(skipped)} recent {by}s whose deals are not resolved yet "
            f"({', '.join(f'{r.period}: {r.still_open_share:.0%} still open' for r in skipped.itertuples())})")
    settings = config.forecast
    if warmup_periods is None:
        # Months: the window itself. Quarters: enough that a few are resolved before the first one replayed.
        warmup_periods = (settings.shift_months if by == "month"
                          else max(-(-settings.shift_months // 3), MIN_SHIFT_PERIODS) + 2)
    warmup = [chosen[0][0] - offset for offset in range(warmup_periods, 0, -1)] if chosen else []
    if warmup:
        say(f"measuring the shared shift: forecasts of the {len(warmup)} {by}s from {warmup[0]} to {warmup[-1]}")
    errors = [replay_forecast_errors(model, training_rows, config,
                                     [(period, deals_expected_in(history, period)) for period in warmup],
                                     refit=refit, progress=say)]
    records = []
    for period, in_period in chosen:
        cutoff = period.start_time.normalize()
        refitted = _refit_known_at(refit, model, training_rows, period, config)
        if refitted is None:
            raise GateError(f"too little history before {period} to refit the model; replay fewer periods")
        probability = refitted.predict_proba(in_period) if len(in_period) else np.zeros(0)
        shift = estimate_shared_shift(pd.concat([e for e in errors if len(e)] or errors, ignore_index=True), cutoff,
                                      max_unresolved_share=max_unresolved_share,
                                      window=max(settings.shift_months, 1))
        errors.append(_error_rows(period, in_period, probability))
        resolved_mask = in_period["status"].isin(["won", "lost"]).to_numpy()
        resolved = in_period[resolved_mask].reset_index(drop=True)
        dropped = len(in_period) - len(resolved)
        amount = pd.to_numeric(resolved["amount"], errors="coerce").fillna(0.0).to_numpy()
        won = resolved["status"].eq("won").to_numpy()
        actual = float(resolved.loc[won, "opportunity_id"].map(final_amount).fillna(0.0).sum())
        methods = {"winmodel": (probability[resolved_mask], shift)}
        if "crm_probability" in resolved and resolved["crm_probability"].notna().any():
            crm = (resolved["crm_probability"].astype(float).fillna(0.0) / 100.0).clip(0, 1).to_numpy()
            methods["stage_weighted"] = (crm, None)
        for method, (method_probability, method_shift) in methods.items():
            sigma = method_shift.sigma if method_shift else 0.0
            bookings = bookings_distribution(amount, method_probability, shift_sigma=sigma, draws=draws,
                                             seed=_period_seed(seed, period))
            records.append({
                "period": str(period), "cutoff": f"{cutoff:%Y-%m-%d}", "method": method,
                "deals": len(resolved), "unresolved_dropped": dropped, "pipeline_amount": float(amount.sum()),
                "forecast": bookings.mean, "p10": bookings.p10, "p50": bookings.p50, "p90": bookings.p90,
                "actual": actual, "error": bookings.mean - actual, "abs_error": abs(bookings.mean - actual),
                "covered": bool(bookings.p10 <= actual <= bookings.p90), "shift_sigma": sigma,
                "shift_periods": len(method_shift.periods) if method_shift else 0,
            })
        say(f"replay {period}: {len(resolved):,} deals expected to close, forecast "
            f"{records[-len(methods)]['forecast']:,.0f} vs actual {actual:,.0f}"
            + (f" ({dropped} still open, left out)" if dropped else "") + f"; {shift.describe()}")
    table = pd.DataFrame(records, columns=list(BACKTEST_COLUMNS))
    return ForecastBacktest(periods=table, summary=summarise_backtest(table), skipped=skipped)


def _refit_known_at(refit: Refit | None, model: WinModel, training_rows: pd.DataFrame, period: pd.Period,
                    config: TrainConfig) -> WinModel | None:
    """Give the recipe refitted (default :func:`winmodel.train.refit_at`) on outcomes known at the period's
    first day, or None when too few were known."""
    if refit is None:
        from winmodel.train import refit_at as refit
    cutoff = period.start_time.normalize()
    # Only outcomes known at the cut-off reach the refit (refit_at also limits itself to them).
    known = training_rows[training_rows["close_date"] < cutoff]
    if known.empty:
        return None
    try:
        return refit(model, known, cutoff, config)
    except GateError:
        return None


def summarise_backtest(table: pd.DataFrame) -> pd.DataFrame:
    """Give per method: periods, MAE, mean error (bias), MAE as a share of the mean actual, P10-P90 coverage
    and the band's mean width as a share of the forecast (a band that covers by being wide says little)."""
    records = []
    for method in [m for m in METHODS if m in set(table["method"])]:
        part = table[table["method"] == method]
        mean_actual = float(part["actual"].mean())
        records.append({
            "method": method, "periods": len(part), "mae": float(part["abs_error"].mean()),
            "bias": float(part["error"].mean()),
            "relative_mae": float(part["abs_error"].mean() / mean_actual) if mean_actual else float("nan"),
            "coverage_p10_p90": float(part["covered"].mean()),
            "relative_band_width": float(((part["p90"] - part["p10"]) / part["forecast"].where(part["forecast"] > 0)
                                          ).mean()),
            "unresolved_dropped": int(part["unresolved_dropped"].sum()),
        })
    return pd.DataFrame(records, columns=["method", "periods", "mae", "bias", "relative_mae",
                                          "coverage_p10_p90", "relative_band_width", "unresolved_dropped"])
