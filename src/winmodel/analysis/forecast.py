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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from winmodel.modeling.model import WinModel
from winmodel.settings import MIN_SHIFT_PERIODS

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

FORECAST_COLUMNS = (
    "period",
    "deals",
    "pipeline_amount",
    "expected",
    "p10",
    "p50",
    "p90",
    "crm_weighted",
    "crm_p10",
    "crm_p90",
)

BACKTEST_COLUMNS = (
    "period",
    "cutoff",
    "method",
    "deals",
    "unresolved_dropped",
    "pipeline_amount",
    "forecast",
    "p10",
    "p50",
    "p90",
    "actual",
    "error",
    "abs_error",
    "covered",
    "shift_sigma",
    "shift_periods",
)

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


def bookings_distribution(
    amount: npt.ArrayLike,
    probability: npt.ArrayLike,
    *,
    shift_sigma: float = 0.0,
    draws: int = DEFAULT_DRAWS,
    seed: int | Sequence[int] = 0,
    exact_max_deals: int = EXACT_MAX_DEALS,
    chunk_cells: int = CHUNK_CELLS,
) -> Bookings:
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
    probability = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    if amount.shape != probability.shape:
        raise ValueError(
            f"amount and probability differ in length: {amount.shape} vs {probability.shape}"
        )
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
        quantiles = _sampled_quantiles(
            amount, probability, log_odds, shift_sigma, draws, seed, chunk_cells
        )
    p10, p50, p90 = (float(q) for q in quantiles)
    return Bookings(mean, p10, p50, p90, std)


def _shift_nodes(shift_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Give the shared shift's quadrature nodes and weights (one node at 0 when there is no shift)."""
    if shift_sigma == 0:
        return np.zeros(1), np.ones(1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(SHIFT_NODES)
    return nodes * shift_sigma, weights / weights.sum()


def _centred_log_odds(
    probability: np.ndarray, nodes: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Give log-odds that, shifted by the shared shift (its quadrature ``nodes``), average back to ``probability``.

    A symmetric shift of the log-odds pulls the average probability towards
    one half. Each deal's log-odds ``l`` solve ``E[expit(l + z)] == p`` (the
    expectation by the Gauss-Hermite rule of :func:`_shift_nodes`): Newton
    steps from the probit approximation ``logit(p) * sqrt(1 + pi * sigma^2 / 8)``.
    Probabilities of exactly 0 or 1 stay certain.
    """
    variance = float(weights @ nodes**2)
    with np.errstate(divide="ignore"):
        centred: np.ndarray = logit(probability) * np.sqrt(1 + np.pi * variance / 8)
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


def _shifted_probability(
    probability: np.ndarray, log_odds: np.ndarray | None, shifts: np.ndarray
) -> np.ndarray:
    """Give each deal's probability under each shift (one row per shift); ``log_odds`` None: no shift."""
    if log_odds is None:
        return np.broadcast_to(probability, (len(shifts), len(probability)))
    shifted: np.ndarray = expit(log_odds[None, :] + shifts[:, None])
    return shifted


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
    quantiles: np.ndarray = totals[order][np.minimum(index, len(order) - 1)]
    return quantiles


def _sampled_quantiles(
    amount: np.ndarray,
    probability: np.ndarray,
    log_odds: np.ndarray | None,
    shift_sigma: float,
    draws: int,
    seed: int | Sequence[int],
    chunk_cells: int,
) -> np.ndarray:
    """Give P10, P50, P90 from ``draws`` Monte Carlo totals, drawn in chunks of whole draws.

    ``log_odds`` are the centred log-odds the shared shift moves (None: no shift).
    """
    rng = np.random.default_rng(seed)
    if log_odds is not None:
        # The shifts come from their own stream, so the deals' draws are those of the unshifted band.
        shifts = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]).normal(
            0.0, shift_sigma, draws
        )
    totals = np.empty(draws)
    rows = max(1, chunk_cells // len(amount))
    for start in range(0, draws, rows):
        stop = min(start + rows, draws)
        # Draws are consumed row by row, so the totals do not depend on the chunk size.
        uniform = rng.random((stop - start, len(amount)))
        won = uniform < (
            probability if log_odds is None else expit(log_odds[None, :] + shifts[start:stop, None])
        )
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


def forecast_by_period(
    deals: pd.DataFrame,
    *,
    by: Period = "month",
    probability: str = "win_probability",
    shift_sigma: float = 0.0,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> pd.DataFrame:
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
    frame = pd.DataFrame(
        {
            "amount": pd.to_numeric(deals["amount"], errors="coerce"),
            "probability": pd.to_numeric(deals[probability], errors="coerce"),
            "period": period_of(deals["close_date"], by),
        },
        index=deals.index,
    )
    has_crm = (
        "crm_probability" in deals
        and pd.to_numeric(deals["crm_probability"], errors="coerce").notna().any()
    )
    if has_crm:
        frame["crm"] = pd.to_numeric(deals["crm_probability"], errors="coerce").fillna(0.0) / 100.0
    frame = frame.dropna(subset=["amount", "probability", "period"])
    records = []
    # The period column holds pandas Periods (period_of); None stands for the whole pipeline.
    groups: list[tuple[pd.Period | None, pd.DataFrame]] = [
        (cast(pd.Period, period), part) for period, part in frame.groupby("period", sort=True)
    ]
    groups.append((None, frame))
    for period, part in groups:
        model = bookings_distribution(
            part["amount"],
            part["probability"],
            shift_sigma=shift_sigma,
            draws=draws,
            seed=_period_seed(seed, period),
        )
        record = {
            "period": "total" if period is None else str(period),
            "deals": len(part),
            "pipeline_amount": float(part["amount"].sum()),
            "expected": model.mean,
            "p10": model.p10,
            "p50": model.p50,
            "p90": model.p90,
        }
        if has_crm:
            crm = bookings_distribution(
                part["amount"], part["crm"], draws=draws, seed=_period_seed(seed, period)
            )
            record.update(crm_weighted=crm.mean, crm_p10=crm.p10, crm_p90=crm.p90)
        else:
            record.update(crm_weighted=np.nan, crm_p10=np.nan, crm_p90=np.nan)
        records.append(record)
    return pd.DataFrame(records, columns=list(FORECAST_COLUMNS))


def period_shift(
    amount: np.ndarray, probability: np.ndarray, won: np.ndarray
) -> tuple[float, float] | None:
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
            return (
                f"shared shift not measured ({len(self.periods)} resolved periods, "
                f"{MIN_SHIFT_PERIODS} needed): the band treats deals as independent"
            )
        return (
            f"shared shift sigma {self.sigma:.3f} log-odds, measured on {len(self.periods)} periods "
            f"({self.periods['period'].iloc[0]} to {self.periods['period'].iloc[-1]})"
        )


def estimate_shared_shift(
    errors: pd.DataFrame,
    cutoff: pd.Timestamp,
    *,
    max_unresolved_share: float = 0.05,
    window: int = SHIFT_WINDOW,
) -> SharedShift:
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
        period = pd.Period(cast(str, period_label))  # the errors' periods are texts
        if period.end_time >= cutoff:
            continue
        known = (
            deals["status"].isin(["won", "lost"]).to_numpy()
            & (deals["close_date"] < cutoff).to_numpy()
        )
        if 1 - known.mean() > max_unresolved_share:
            continue
        part = deals[known]
        shift = period_shift(
            part["amount"].to_numpy(),
            part["probability"].to_numpy(),
            part["status"].eq("won").to_numpy(),
        )
        if shift is not None:
            records.append(
                {
                    "period": str(period),
                    "deals": len(part),
                    "shift": shift[0],
                    "standard_error": shift[1],
                }
            )
    periods = pd.DataFrame(records, columns=list(SHIFT_COLUMNS)).tail(window).reset_index(drop=True)
    if len(periods) < MIN_SHIFT_PERIODS:
        return SharedShift(0.0, periods)
    variance = float(np.mean(periods["shift"] ** 2) - np.mean(periods["standard_error"] ** 2))
    return SharedShift(float(np.sqrt(max(variance, 0.0))), periods)


def forecast_band_json(model: WinModel) -> str:
    """Give the shared shift training measured for ``model`` as the JSON written beside its export."""
    return json.dumps(model.metadata["forecast_shift"], indent=2) + "\n"


# --------------------------------------------------------------------------- landed bookings

LANDED_COLUMNS = (
    "period",
    "as_of",
    "already_won",
    "open_deals",
    "open_pipeline",
    "open_expected",
    "new_deals_expected",
    "new_deals_std",
    "expected",
    "p10",
    "p50",
    "p90",
)


@dataclass(frozen=True)
class NewDealBookings:
    """What deals not yet created bring into a period: measured on the same stretch of past periods."""

    mean: float
    std: float
    values: tuple[float, ...]  # one per past period, oldest first


def new_deal_bookings(
    opportunities: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    by: Period = "month",
    periods: int = 12,
    period: pd.Period | None = None,
) -> NewDealBookings:
    """Give the bookings expected from deals created after ``as_of`` and won by the end of ``period``.

    ``period`` defaults to the month or quarter holding ``as_of`` (a forecast
    made on the day before a period starts names that period).

    Measured on the ``periods`` complete periods before ``as_of``'s, each cut
    at the same number of days into it as ``as_of``: the amount of the deals
    created after that cut and won by the period's end (creation by month x
    conversion within the period, in one figure). Their spread is the
    uncertainty. Needs ``created_date``, ``close_date``, ``status``, ``amount``.
    """
    as_of = pd.Timestamp(as_of)
    current = period if period is not None else as_of.to_period(PERIOD_CODES[by])
    into = as_of - current.start_time
    created = pd.to_datetime(opportunities["created_date"])
    closed = pd.to_datetime(opportunities["close_date"])
    won = opportunities["status"].eq("won")
    amount = pd.to_numeric(opportunities["amount"], errors="coerce").fillna(0.0)
    values = []
    for back in range(periods, 0, -1):
        past = current - back
        cut = past.start_time + into
        if created.min() > past.start_time:
            continue  # before the history starts, the period cannot be measured
        landed = won & (created > cut) & (closed <= past.end_time)
        values.append(float(amount[landed].sum()))
    if not values:
        return NewDealBookings(0.0, 0.0, ())
    return NewDealBookings(
        float(np.mean(values)),
        float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        tuple(values),
    )


@dataclass(frozen=True)
class LandedBookings:
    """A period's landed-bookings forecast: its three parts and the range of their total."""

    already_won: float
    open_expected: float
    new_deals: NewDealBookings
    expected: float
    p10: float
    p50: float
    p90: float


def landed_bookings(
    already_won: float,
    amount: npt.ArrayLike,
    probability_within: npt.ArrayLike,
    new_deals: NewDealBookings,
    *,
    shift_sigma: float = 0.0,
    draws: int = DEFAULT_DRAWS,
    seed: int | Sequence[int] = 0,
) -> LandedBookings:
    """Give what a period will book: already won + open deals x P(won within the period) + deals not yet created.

    The open deals are Bernoulli bets moved together by the shared shift
    (``shift_sigma``, see :func:`bookings_distribution`); the new deals' part is
    drawn from a gamma distribution with the mean and spread measured in past
    periods (:func:`new_deal_bookings`; a fixed amount when it has no spread).
    P10/P50/P90 are Monte Carlo quantiles of the sum (fixed seed).
    """
    amount = np.asarray(amount, dtype=float)
    probability = np.clip(np.asarray(probability_within, dtype=float), 0.0, 1.0)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    open_totals = _open_totals(amount, probability, shift_sigma, draws, seed)
    if new_deals.std > 0 and new_deals.mean > 0:
        shape = (new_deals.mean / new_deals.std) ** 2
        new_totals = rng.gamma(shape, new_deals.mean / shape, draws)
    else:
        new_totals = np.full(draws, new_deals.mean)
    totals = already_won + open_totals + new_totals
    p10, p50, p90 = (float(q) for q in np.quantile(totals, QUANTILES, method="inverted_cdf"))
    open_expected = float(amount @ probability)
    return LandedBookings(
        float(already_won),
        open_expected,
        new_deals,
        float(already_won) + open_expected + new_deals.mean,
        p10,
        p50,
        p90,
    )


def _open_totals(
    amount: np.ndarray, probability: np.ndarray, shift_sigma: float, draws: int, seed: Any
) -> np.ndarray:
    """Give ``draws`` Monte Carlo totals of ``sum(amount * Bernoulli(probability))`` under the shared shift."""
    if len(amount) == 0:
        return np.zeros(draws)
    log_odds = None
    shifts = np.zeros(draws)
    if shift_sigma > 0:
        nodes, weights = _shift_nodes(shift_sigma)
        log_odds = _centred_log_odds(probability, nodes, weights)
        shifts = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]).normal(
            0.0, shift_sigma, draws
        )
    rng = np.random.default_rng(seed)
    totals = np.empty(draws)
    rows = max(1, CHUNK_CELLS // len(amount))
    for start in range(0, draws, rows):
        stop = min(start + rows, draws)
        chance = (
            probability if log_odds is None else expit(log_odds[None, :] + shifts[start:stop, None])
        )
        totals[start:stop] = (rng.random((stop - start, len(amount))) < chance) @ amount
    return totals


def pinball_loss(actual: np.ndarray, predicted: np.ndarray, level: float) -> float:
    """Give the mean pinball (quantile) loss of ``predicted`` as the ``level`` quantile of ``actual``."""
    gap = np.asarray(actual, float) - np.asarray(predicted, float)
    return float(np.mean(np.maximum(level * gap, (level - 1) * gap)))
