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
