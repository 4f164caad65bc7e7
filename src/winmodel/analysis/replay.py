"""Honest replays of past forecasts: the recipe refitted on what was known at each period's start."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from winmodel.analysis.forecast import (
    BACKTEST_COLUMNS,
    DEFAULT_DRAWS,
    ERROR_COLUMNS,
    METHODS,
    PERIOD_CODES,
    Period,
    SharedShift,
    _period_seed,
    bookings_distribution,
    estimate_shared_shift,
)
from winmodel.errors import GateError
from winmodel.features.rows import AS_OF, EXPECTED_CLOSE, select_latest_rows
from winmodel.modeling.model import WinModel
from winmodel.settings import MIN_SHIFT_PERIODS, TrainConfig

log = logging.getLogger(__name__)


def resolved_periods(as_of: pd.Timestamp, by: Period = "month", count: int = 8) -> list[pd.Period]:
    """Give the last ``count`` periods that ended on or before ``as_of``, oldest first."""
    code = PERIOD_CODES[by]
    first_unfinished = (pd.Timestamp(as_of) + pd.Timedelta(days=1)).to_period(code)
    return [first_unfinished - offset for offset in range(count, 0, -1)]


def open_deals_at(history: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Give each deal open at ``cutoff`` as the CRM showed it then: its latest snapshot on or before ``cutoff``.

    ``history`` is :func:`winmodel.features.rows.add_history_features` output
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
    expected = pd.to_datetime(
        open_rows[EXPECTED_CLOSE] if EXPECTED_CLOSE in open_rows else open_rows["close_date"]
    )
    return open_rows[(expected.dt.to_period(period.freqstr) == period).to_numpy()].reset_index(
        drop=True
    )


#: How a replay refits the model's recipe on what was known at a day (default :func:`winmodel.modeling.train.refit_at`).
Refit = Callable[[WinModel, pd.DataFrame, pd.Timestamp, TrainConfig], WinModel]


def replay_forecast_errors(
    model: WinModel,
    training_rows: pd.DataFrame,
    config: TrainConfig,
    periods: Sequence[tuple[pd.Period, pd.DataFrame]],
    *,
    refit_every: int = 1,
    refit: Refit | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Give, per deal, the forecast made at each period's first day by the recipe refitted on what was known then.

    ``periods`` pairs each period with the deals expected in it
    (:func:`deals_expected_in`), in time order. The recipe is refitted at the first of every ``refit_every`` periods
    (default :func:`winmodel.modeling.train.refit_at`, on the training rows closed
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
            refitted = refit_known_at(refit, model, training_rows, period, config)
        if refitted is None or deals.empty:
            say(
                f"shared shift: {period} left out ({'no deals' if deals.empty else 'too little history before it'})"
            )
            continue
        frames.append(_error_rows(period, deals, refitted.predict_proba(deals)))
    if not frames:
        return pd.DataFrame(columns=list(ERROR_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _error_rows(period: pd.Period, deals: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": str(period),
            "opportunity_id": deals["opportunity_id"].to_numpy(),
            "amount": pd.to_numeric(deals["amount"], errors="coerce").fillna(0.0).to_numpy(),
            "probability": probability,
            "status": deals["status"].to_numpy(),
            "close_date": pd.to_datetime(deals["close_date"]).to_numpy(),
        },
        columns=list(ERROR_COLUMNS),
    )


def measure_shared_shift(
    model: WinModel,
    training_rows: pd.DataFrame,
    history: pd.DataFrame,
    config: TrainConfig,
    as_of: pd.Timestamp,
    *,
    refit: Refit | None = None,
    progress: Callable[[str], None] | None = None,
) -> SharedShift:
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
    chosen, _ = choose_replay_periods(
        history, as_of, periods=settings.shift_months, max_unresolved_share=settings.max_open_share
    )
    errors = replay_forecast_errors(
        model,
        training_rows,
        config,
        chosen,
        refit_every=settings.refit_every_months,
        refit=refit,
        progress=progress,
    )
    # Outcomes recorded on the as-of day itself are known.
    return estimate_shared_shift(
        errors,
        pd.Timestamp(as_of) + pd.Timedelta(days=1),
        max_unresolved_share=settings.max_open_share,
        window=settings.shift_months,
    )


@dataclass
class ForecastBacktest:
    """The replay: one row per period and method, the summary per method, and the periods skipped as unresolved."""

    periods: pd.DataFrame
    summary: pd.DataFrame
    skipped: pd.DataFrame


#: How far back the replay looks for resolved periods.
MAX_LOOKBACK_PERIODS = 36


def choose_replay_periods(
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    by: Period = "month",
    periods: int = 8,
    max_unresolved_share: float = 0.05,
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
            skipped.append(
                {"period": str(period), "deals": len(deals), "still_open_share": open_share}
            )
            continue
        chosen.append((period, deals))
        if len(chosen) == periods:
            break
    return chosen[::-1], pd.DataFrame(skipped, columns=["period", "deals", "still_open_share"])


def backtest_forecast(
    model: WinModel,
    training_rows: pd.DataFrame,
    history: pd.DataFrame,
    final_amount: pd.Series,
    config: TrainConfig,
    *,
    as_of: pd.Timestamp,
    by: Period = "month",
    periods: int = 8,
    max_unresolved_share: float = 0.05,
    warmup_periods: int | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    refit: Refit | None = None,
    progress: Callable[[str], None] | None = None,
) -> ForecastBacktest:
    """Give the replay of the last ``periods`` resolved periods, winmodel beside the stage-weighted forecast.

    Periods are chosen by :func:`choose_replay_periods`. For each period
    starting at ``t``: the model's recipe is refitted (``refit``, default
    :func:`winmodel.modeling.train.refit_at`) on the training rows of deals closed before
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
    ``history`` from :func:`winmodel.features.rows.add_history_features`.
    """
    say = progress or (lambda message: log.info(message))
    chosen, skipped = choose_replay_periods(
        history, as_of, by=by, periods=periods, max_unresolved_share=max_unresolved_share
    )
    if len(skipped):
        say(
            f"skipped {len(skipped)} recent {by}s whose deals are not resolved yet "
            f"({', '.join(f'{r.period}: {r.still_open_share:.0%} still open' for r in skipped.itertuples())})"
        )
    settings = config.forecast
    if warmup_periods is None:
        # Months: the window itself. Quarters: enough that a few are resolved before the first one replayed.
        warmup_periods = (
            settings.shift_months
            if by == "month"
            else max(-(-settings.shift_months // 3), MIN_SHIFT_PERIODS) + 2
        )
    warmup = [chosen[0][0] - offset for offset in range(warmup_periods, 0, -1)] if chosen else []
    if warmup:
        say(
            f"measuring the shared shift: forecasts of the {len(warmup)} {by}s from {warmup[0]} to {warmup[-1]}"
        )
    errors = [
        replay_forecast_errors(
            model,
            training_rows,
            config,
            [(period, deals_expected_in(history, period)) for period in warmup],
            refit=refit,
            progress=say,
        )
    ]
    records = []
    for period, in_period in chosen:
        cutoff = period.start_time.normalize()
        refitted = refit_known_at(refit, model, training_rows, period, config)
        if refitted is None:
            raise GateError(
                f"too little history before {period} to refit the model; replay fewer periods"
            )
        probability = refitted.predict_proba(in_period) if len(in_period) else np.zeros(0)
        shift = estimate_shared_shift(
            pd.concat([e for e in errors if len(e)] or errors, ignore_index=True),
            cutoff,
            max_unresolved_share=max_unresolved_share,
            window=max(settings.shift_months, 1),
        )
        errors.append(_error_rows(period, in_period, probability))
        resolved_mask = in_period["status"].isin(["won", "lost"]).to_numpy()
        resolved = in_period[resolved_mask].reset_index(drop=True)
        dropped = len(in_period) - len(resolved)
        amount = pd.to_numeric(resolved["amount"], errors="coerce").fillna(0.0).to_numpy()
        won = resolved["status"].eq("won").to_numpy()
        actual = float(resolved.loc[won, "opportunity_id"].map(final_amount).fillna(0.0).sum())
        methods: dict[str, tuple[np.ndarray, SharedShift | None]] = {
            "winmodel": (probability[resolved_mask], shift)
        }
        if "crm_probability" in resolved and resolved["crm_probability"].notna().any():
            crm = (
                (resolved["crm_probability"].astype(float).fillna(0.0) / 100.0)
                .clip(0, 1)
                .to_numpy()
            )
            methods["stage_weighted"] = (crm, None)
        for method, (method_probability, method_shift) in methods.items():
            sigma = method_shift.sigma if method_shift else 0.0
            bookings = bookings_distribution(
                amount,
                method_probability,
                shift_sigma=sigma,
                draws=draws,
                seed=_period_seed(seed, period),
            )
            records.append(
                {
                    "period": str(period),
                    "cutoff": f"{cutoff:%Y-%m-%d}",
                    "method": method,
                    "deals": len(resolved),
                    "unresolved_dropped": dropped,
                    "pipeline_amount": float(amount.sum()),
                    "forecast": bookings.mean,
                    "p10": bookings.p10,
                    "p50": bookings.p50,
                    "p90": bookings.p90,
                    "actual": actual,
                    "error": bookings.mean - actual,
                    "abs_error": abs(bookings.mean - actual),
                    "covered": bool(bookings.p10 <= actual <= bookings.p90),
                    "shift_sigma": sigma,
                    "shift_periods": len(method_shift.periods) if method_shift else 0,
                }
            )
        say(
            f"replay {period}: {len(resolved):,} deals expected to close, forecast "
            f"{records[-len(methods)]['forecast']:,.0f} vs actual {actual:,.0f}"
            + (f" ({dropped} still open, left out)" if dropped else "")
            + f"; {shift.describe()}"
        )
    table = pd.DataFrame(records, columns=list(BACKTEST_COLUMNS))
    return ForecastBacktest(periods=table, summary=summarise_backtest(table), skipped=skipped)


def refit_known_at(
    refit: Refit | None,
    model: WinModel,
    training_rows: pd.DataFrame,
    period: pd.Period,
    config: TrainConfig,
) -> WinModel | None:
    """Give the recipe refitted (default :func:`winmodel.modeling.train.refit_at`) on outcomes known at the period's
    first day, or None when too few were known."""
    if refit is None:
        from winmodel.modeling.train import refit_at

        refit = refit_at
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
        records.append(
            {
                "method": method,
                "periods": len(part),
                "mae": float(part["abs_error"].mean()),
                "bias": float(part["error"].mean()),
                "relative_mae": float(part["abs_error"].mean() / mean_actual)
                if mean_actual
                else float("nan"),
                "coverage_p10_p90": float(part["covered"].mean()),
                "relative_band_width": float(
                    (
                        (part["p90"] - part["p10"]) / part["forecast"].where(part["forecast"] > 0)
                    ).mean()
                ),
                "unresolved_dropped": int(part["unresolved_dropped"].sum()),
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            "method",
            "periods",
            "mae",
            "bias",
            "relative_mae",
            "coverage_p10_p90",
            "relative_band_width",
            "unresolved_dropped",
        ],
    )


# --------------------------------------------------------------------------- landed bookings

LANDED_METHODS = ("winmodel", "pwon_expected_date", "stage_weighted", "run_rate")

LANDED_BACKTEST_COLUMNS = (
    "period",
    "method",
    "open_deals",
    "forecast",
    "p10",
    "p50",
    "p90",
    "actual",
    "error",
    "covered",
    "new_deals_expected",
    "shift_sigma",
)


@dataclass
class LandedBacktest:
    """The landed-bookings replay: one row per period and method, and the summary per method."""

    periods: pd.DataFrame
    summary: pd.DataFrame


def landed_actual(opportunities: pd.DataFrame, period: pd.Period) -> float:
    """Give what a period booked: the amount of every deal won with its close date inside it."""
    closed = pd.to_datetime(opportunities["close_date"])
    inside = opportunities["status"].eq("won") & (closed >= period.start_time)
    inside &= closed <= period.end_time
    return float(pd.to_numeric(opportunities.loc[inside, "amount"], errors="coerce").sum())


def backtest_landed_bookings(
    model: WinModel,
    training_rows: pd.DataFrame,
    history: pd.DataFrame,
    opportunities: pd.DataFrame,
    config: TrainConfig,
    *,
    as_of: pd.Timestamp,
    periods: int = 12,
    warmup_periods: int = 6,
    refit_every: int = 3,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    refit: Refit | None = None,
    progress: Callable[[str], None] | None = None,
) -> LandedBacktest:
    """Give the replay of the last ``periods`` complete months on *landed* bookings, four methods side by side.

    At each month's first day ``t`` (what was known then only): the recipe is
    refitted (every ``refit_every`` months, on deals closed before ``t``) and a
    horizon model fitted on the history as of ``t``; the deals open at ``t``
    are forecast. The actual is every deal won with its close date in the
    month, whenever it was created (slipped in, pulled in, created and won
    inside it). Methods:

    * ``winmodel``: open deals x P(won within the month) from the horizon model
      + the deals not yet created (:func:`~winmodel.analysis.forecast.new_deal_bookings`),
      with the shared shift measured on the earlier months' landed errors (the
      ``warmup_periods`` months before the first one replayed, then the replayed
      ones as they resolve);
    * ``pwon_expected_date``: P(won) x [expected close date in the month] (the
      forecast before horizons), deals independent;
    * ``stage_weighted``: CRM probability x [expected close date in the month];
    * ``run_rate``: the mean of the three previous months' bookings, its range
      from their spread (normal).
    """
    from winmodel.analysis.forecast import landed_bookings, new_deal_bookings
    from winmodel.modeling.horizon import fit_horizon_model, horizon_curves

    say = progress or (lambda message: log.info(message))
    last = (pd.Timestamp(as_of) + pd.Timedelta(days=1)).to_period("M") - 1
    replayed = [last - offset for offset in range(periods - 1, -1, -1)]
    warmup = [replayed[0] - offset for offset in range(warmup_periods, 0, -1)]
    errors: list[pd.DataFrame] = []
    records = []
    refitted: WinModel | None = None
    horizon = None
    for position, period in enumerate([*warmup, *replayed]):
        cutoff = period.start_time.normalize()
        if position % refit_every == 0 or refitted is None:
            refitted = refit_known_at(refit, model, training_rows, period, config)
            if refitted is None:
                raise GateError(f"too little history before {period} to refit the model")
            horizon = fit_horizon_model(
                refitted,
                history,
                cutoff - pd.Timedelta(days=1),
                seed=seed,
                threads=config.model.threads,
            )
        assert horizon is not None  # fitted with the first refit
        rows = open_deals_at(history, cutoff)
        amount = pd.to_numeric(rows["amount"], errors="coerce").fillna(0.0).to_numpy()
        p_won = refitted.predict_proba(rows) if len(rows) else np.zeros(0)
        # Seen from the month's first day (the months count from it), as a forecast made that day would.
        curves = horizon_curves(horizon, refitted, rows, p_won, as_of=cutoff)
        within = curves.won[:, 0] if len(rows) else np.zeros(0)
        closed = pd.to_datetime(rows["close_date"])
        won_inside = rows["status"].eq("won").to_numpy() & (closed <= period.end_time).to_numpy()
        actual = landed_actual(opportunities, period)
        period_errors = pd.DataFrame(
            {
                "period": str(period),
                "opportunity_id": rows["opportunity_id"].to_numpy(),
                "amount": amount,
                "probability": within,
                # Known once the month is over: won inside it, or not.
                "status": np.where(won_inside, "won", "lost"),
                "close_date": np.full(len(rows), period.end_time.normalize()),
            },
            columns=list(ERROR_COLUMNS),
        )
        if position < len(warmup):
            errors.append(period_errors)
            say(f"landed replay: {period} measured for the shared shift")
            continue
        shift = estimate_shared_shift(
            pd.concat(errors, ignore_index=True)
            if errors
            else pd.DataFrame(columns=list(ERROR_COLUMNS)),
            cutoff,
            max_unresolved_share=1.0,
            window=max(config.forecast.shift_months, 1),
        )
        errors.append(period_errors)
        # Known the day before the month starts: deals created before it, and the past months' outcomes.
        day_before = cutoff - pd.Timedelta(days=1)
        known = opportunities[pd.to_datetime(opportunities["created_date"]) <= day_before]
        new = new_deal_bookings(known, day_before, by="month", period=period)
        landed = landed_bookings(
            0.0,
            amount,
            within,
            new,
            shift_sigma=shift.sigma,
            draws=draws,
            seed=_period_seed(seed, period),
        )
        expected = pd.to_datetime(
            rows[EXPECTED_CLOSE] if EXPECTED_CLOSE in rows else rows["close_date"]
        )
        in_month = (expected.dt.to_period("M") == period).to_numpy()
        crm = (
            pd.to_numeric(rows["crm_probability"], errors="coerce").fillna(0.0).to_numpy() / 100.0
            if "crm_probability" in rows
            else np.zeros(len(rows))
        )
        forecasts: dict[str, tuple[float, float, float, float]] = {
            "winmodel": (landed.expected, landed.p10, landed.p50, landed.p90)
        }
        for method, probability in (("pwon_expected_date", p_won), ("stage_weighted", crm)):
            bookings = bookings_distribution(
                amount[in_month],
                np.clip(probability[in_month], 0, 1),
                draws=draws,
                seed=_period_seed(seed, period),
            )
            forecasts[method] = (bookings.mean, bookings.p10, bookings.p50, bookings.p90)
        trailing = np.array([landed_actual(opportunities, period - back) for back in (1, 2, 3)])
        spread = float(np.std(trailing, ddof=1))
        mean = float(trailing.mean())
        forecasts["run_rate"] = (mean, mean - 1.2816 * spread, mean, mean + 1.2816 * spread)
        for method, (value, p10, p50, p90) in forecasts.items():
            records.append(
                {
                    "period": str(period),
                    "method": method,
                    "open_deals": len(rows),
                    "forecast": value,
                    "p10": p10,
                    "p50": p50,
                    "p90": p90,
                    "actual": actual,
                    "error": value - actual,
                    "covered": bool(p10 <= actual <= p90),
                    "new_deals_expected": new.mean if method == "winmodel" else 0.0,
                    "shift_sigma": shift.sigma if method == "winmodel" else 0.0,
                }
            )
        say(
            f"landed replay {period}: actual {actual:,.0f}; winmodel {landed.expected:,.0f} "
            f"({landed.p10:,.0f}-{landed.p90:,.0f}), P(won) x expected date "
            f"{forecasts['pwon_expected_date'][0]:,.0f}, stage-weighted "
            f"{forecasts['stage_weighted'][0]:,.0f}, run-rate {mean:,.0f}"
        )
    table = pd.DataFrame(records, columns=list(LANDED_BACKTEST_COLUMNS))
    return LandedBacktest(table, summarise_landed(table))


def summarise_landed(table: pd.DataFrame) -> pd.DataFrame:
    """Give per method: periods, MAE, bias, MAE / mean actual, pinball loss at P10/P50/P90, P10-P90 coverage."""
    from winmodel.analysis.forecast import pinball_loss

    records = []
    for method in [m for m in LANDED_METHODS if m in set(table["method"])]:
        part = table[table["method"] == method]
        actual = part["actual"].to_numpy(float)
        records.append(
            {
                "method": method,
                "periods": len(part),
                "mae": float(part["error"].abs().mean()),
                "bias": float(part["error"].mean()),
                "relative_mae": float(part["error"].abs().mean() / actual.mean())
                if actual.mean()
                else float("nan"),
                "pinball_p10": pinball_loss(actual, part["p10"].to_numpy(float), 0.1),
                "pinball_p50": pinball_loss(actual, part["p50"].to_numpy(float), 0.5),
                "pinball_p90": pinball_loss(actual, part["p90"].to_numpy(float), 0.9),
                "coverage_p10_p90": float(part["covered"].mean()),
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            "method",
            "periods",
            "mae",
            "bias",
            "relative_mae",
            "pinball_p10",
            "pinball_p50",
            "pinball_p90",
            "coverage_p10_p90",
        ],
    )
