"""When a deal will close: a discrete-time competing-risks model (won / lost / still open) by calendar month.

P(won) says whether a deal is winnable; a forecast needs *when*. The horizon
model learns, from the snapshot history, the monthly hazards of the two
outcomes: for a deal seen on day ``t`` (an *origin*), month ``k`` after
``t``'s month (``k = 0`` is the rest of ``t``'s month) has
``h_won(k) = P(won in month k | open at its start)`` and ``h_lost(k)``. One
LightGBM multiclass model (open / won / lost) is fitted on *person-period*
rows: one row per origin and month the deal was at risk, labelled with what
happened in that month. Deals still open at the data's as-of date are
censored (their months up to the last complete one count as "stayed open"),
never dropped. Features are the win model's own (the same fitted
:class:`~winmodel.features.builder.FeatureBuilder` on the origin's
point-in-time row) plus the month: its offset ``k``, the share of the month
left on day ``t`` (for ``k = 0``), months to the CRM's expected close month,
and whether it closes a quarter.

Why this and not a survival library: the data is already in point-in-time
rows, the hazards need the same features and categories as the win model,
LightGBM is already a dependency, and the competing risks come for free from
a three-class softmax. scikit-survival and lifelines would add a dependency
for a Cox or random-survival-forest model that handles one event type at a
time (or needs its own encoders), with no gain on this kind of data.

From the hazards (months ``0 .. MAX_OFFSET - 1`` explicitly, the hazards of
month ``MAX_OFFSET`` repeated after it) the cumulative incidences
``W(k) = P(won by the end of month k)`` and ``L(k)`` follow, and their limits
``W(inf) + L(inf) = 1``. The curve is then *anchored* to the calibrated
P(won) ``p`` the scored file shows: ``W'(k) = W(k) p / W(inf)``,
``L'(k) = L(k) (1 - p) / L(inf)``, ``open(k) = 1 - W'(k) - L'(k)``. So, by
construction, won + lost + open = 1 at every horizon, each curve is
non-decreasing (open non-increasing), and P(won by t) tends to ``p``: the
horizon model decides *when*, the calibrated win model *whether*.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from winmodel.features.rows import AS_OF, EXPECTED_CLOSE
from winmodel.modeling.model import WinModel
from winmodel.modeling.treeshap import TreeScores, UnsupportedBooster, softmax

log = logging.getLogger(__name__)

#: Months modelled one by one (0 = the rest of the origin's month); later months share the last hazard.
MAX_OFFSET = 6

#: Months the curve is extended to (for slip risk and the predicted close month of slow deals).
CURVE_MONTHS = 36

#: One weekly snapshot in this many is an origin of training rows (on the calendar, per deal).
ORIGIN_STRIDE = 6

#: Person-period classes (LightGBM multiclass labels).
OPEN, WON, LOST = 0, 1, 2

HORIZON_COLUMNS = (
    "p_won_this_month",
    "p_won_this_quarter",
    "p_won_next_quarter",
    "p_lost_this_quarter",
    "p_open_end_of_quarter",
    "slip_risk",
    "predicted_close_month",
)

#: The interval features appended to the win model's features, in matrix order.
INTERVAL_FEATURES = (
    "horizon_offset",
    "horizon_month_left",
    "horizon_months_to_expected",
    "horizon_quarter_end",
)

_PARAMS: dict[str, Any] = {
    "objective": "multiclass",
    "num_class": 3,
    "learning_rate": 0.1,
    "num_leaves": 15,
    "max_depth": 5,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "max_bin": 63,
    "verbosity": -1,
}
_ROUNDS = 120


@dataclass
class HorizonModel:
    """The fitted monthly competing-risks hazards (booster over the win model's features + the month).

    ``metadata`` holds the training facts and, after :func:`horizon_reliability`, the reliability
    per horizon.
    """

    booster: lgb.Booster
    max_offset: int = MAX_OFFSET
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def scores(self) -> TreeScores | None:
        """Give the numba walk of the booster's trees (built once), or None for a split kind it lacks."""
        if "_scores" not in self.__dict__:
            try:
                self.__dict__["_scores"] = TreeScores(self.booster)
            except UnsupportedBooster as reason:
                log.info("horizon hazards from LightGBM's predict: %s", reason)
                self.__dict__["_scores"] = None
        scores: TreeScores | None = self.__dict__["_scores"]
        return scores

    def __getstate__(self) -> dict[str, Any]:
        # The walk's arrays are rebuilt from the booster after loading; they are not saved.
        return {key: value for key, value in self.__dict__.items() if key != "_scores"}

    def month_probabilities(self, base: np.ndarray, months: np.ndarray) -> np.ndarray:
        """Give deals x months x 3 probabilities (open, won, lost), ``booster.predict``'s values.

        Deal ``r`` in month ``k`` has the features ``base[r]`` (the win model's) then
        ``months[r, k]`` (:data:`INTERVAL_FEATURES`). The numba walk visits each tree once per
        deal for all its months; LightGBM's predict, the fallback, needs every month's full row.
        """
        if self.scores is not None:
            return softmax(self.scores.variant_raw_scores(base, months))
        deals, width = months.shape[:2]
        rows = np.hstack([np.repeat(base, width, axis=0), months.reshape(deals * width, -1)])
        return np.asarray(self.booster.predict(rows)).reshape(deals, width, 3)

    def to_files(self) -> dict[str, bytes]:
        """Give the files this model adds to a saved winmodel model (see docs/model-format.md)."""
        spec = {"max_offset": self.max_offset, "interval_features": list(INTERVAL_FEATURES)}
        return {
            HORIZON_BOOSTER: self.booster.model_to_string().encode(),
            HORIZON_SPEC: (
                json.dumps({**spec, "metadata": self.metadata}, indent=1, default=_plain) + "\n"
            ).encode(),
        }

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> HorizonModel:
        """Give the model back from :meth:`to_files`' contents."""
        spec = json.loads(files[HORIZON_SPEC])
        if list(spec["interval_features"]) != list(INTERVAL_FEATURES):
            raise ValueError(
                f"the horizon model uses interval features {spec['interval_features']}, this "
                f"winmodel builds {list(INTERVAL_FEATURES)}"
            )
        booster = lgb.Booster(model_str=files[HORIZON_BOOSTER].decode())
        return cls(booster, int(spec["max_offset"]), dict(spec.get("metadata") or {}))


HORIZON_BOOSTER = "horizon_booster.txt"
HORIZON_SPEC = "horizon.json"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- person-period rows


def _month_index(dates: pd.Series) -> np.ndarray:
    """Give calendar months as integers (year * 12 + month - 1); NaT as -1."""
    stamps = pd.to_datetime(dates)
    index = (stamps.dt.year * 12 + stamps.dt.month - 1).to_numpy(dtype="float64")
    return np.where(np.isnan(index), -1, index).astype(np.int64)


def _origins(history: pd.DataFrame, as_of: pd.Timestamp, stride: int) -> pd.DataFrame:
    """Give the rows known at ``as_of`` of deals then open, one week in ``stride`` per deal.

    The weeks are chosen on the calendar (a deal's own phase, from its id), never from the
    deal's life: choosing, say, evenly spread rows up to the close would choose on the outcome's
    timing (a row a third of the way through a life has two thirds of it ahead). Every origin
    weighs one: each stands for ``stride`` weeks at risk.
    """
    known = history[AS_OF] <= as_of
    before_close = history["status"].eq("open") | (history[AS_OF] < history["close_date"])
    rows = history[known & before_close]
    week = (pd.to_datetime(rows[AS_OF]) - pd.Timestamp("1970-01-05")).dt.days.to_numpy() // 7
    phase = pd.util.hash_array(rows["opportunity_id"].to_numpy(dtype=object)) % np.uint64(stride)
    chosen = rows[(week % stride) == phase.astype(np.int64)]
    origins: pd.DataFrame = chosen.assign(origin_weight=1.0).reset_index(drop=True)
    return origins


def person_period_rows(
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    origin_stride: int = ORIGIN_STRIDE,
    max_offset: int = MAX_OFFSET,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Give the origins, and per person-period row: origin position, month offset and label.

    ``history`` is :func:`winmodel.features.rows.add_history_features` output
    (``opportunity_id``, ``as_of_date``, ``created_date``, ``close_date`` (actual
    for closed deals), ``status``). Only what was known at ``as_of`` is used: an
    outcome dated after ``as_of`` counts as still open. An origin contributes
    its months from its own (``k = 0``) up to the month of its outcome (labelled
    won or lost) or, censored, up to the last month complete on ``as_of``
    (labelled open); at most ``max_offset + 12`` months each.
    """
    as_of = pd.Timestamp(as_of)
    origins = _origins(history, as_of, origin_stride)
    start = _month_index(origins[AS_OF])
    closed = (
        origins["status"].isin(["won", "lost"]).to_numpy()
        & (pd.to_datetime(origins["close_date"]) <= as_of).to_numpy()
    )
    event_month = np.where(closed, _month_index(origins["close_date"]), -1)
    as_of_month = int(_month_index(pd.Series([as_of]))[0])
    month_complete = (as_of + pd.Timedelta(days=1)).month != as_of.month
    last_complete = as_of_month if month_complete else as_of_month - 1
    last = np.where(closed, event_month, last_complete) - start
    last = np.minimum(last, max_offset + 12)
    count = np.maximum(last + 1, 0)
    origin = np.repeat(np.arange(len(origins)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    won = origins["status"].eq("won").to_numpy()
    is_event = closed[origin] & (offset == (event_month - start)[origin])
    label = np.where(is_event, np.where(won[origin], WON, LOST), OPEN)
    return origins, origin, offset, label


def _interval_features(origins: pd.DataFrame, origin: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Give the interval features (:data:`INTERVAL_FEATURES`) of person-period rows."""
    day = pd.to_datetime(origins[AS_OF])
    month_left = ((day.dt.days_in_month - day.dt.day) / day.dt.days_in_month).to_numpy(float)
    start = _month_index(origins[AS_OF])
    if EXPECTED_CLOSE in origins:
        expected = _month_index(origins[EXPECTED_CLOSE])
        to_expected = np.where(expected >= 0, expected - start, np.nan).astype(float)
    else:
        to_expected = np.full(len(origins), np.nan)
    month = start[origin] + offset
    return np.column_stack(
        [
            np.minimum(offset, MAX_OFFSET).astype(float),
            np.where(offset == 0, month_left[origin], 1.0),
            to_expected[origin] - offset,
            (month % 12 % 3 == 2).astype(float),
        ]
    )


def _matrix(
    win_model: WinModel,
    origins: pd.DataFrame,
    origin: np.ndarray,
    offset: np.ndarray,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """Give person-period rows' features: the origin's win-model features (``base``, built when not given) and the month's."""
    base = win_model.matrix(origins) if base is None else base
    return np.hstack([base[origin], _interval_features(origins, origin, offset)])


def fit_horizon_model(
    win_model: WinModel,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    seed: int = 0,
    threads: int = 0,
    origin_stride: int = ORIGIN_STRIDE,
) -> HorizonModel:
    """Give the monthly won/lost hazards learned from what ``history`` showed on ``as_of``.

    ``win_model`` provides the features (its fitted builder); see
    :func:`person_period_rows` for the rows (one weekly snapshot in ``origin_stride``
    of each deal, chosen on the calendar, is an origin).
    """
    origins, origin, offset, label = person_period_rows(history, as_of, origin_stride=origin_stride)
    if not (label == WON).any() or not (label == LOST).any():
        raise ValueError(
            "the horizon model needs won and lost deals closed before the as-of date; found "
            f"{int((label == WON).sum())} won and {int((label == LOST).sum())} lost"
        )
    matrix = _matrix(win_model, origins, origin, offset)
    weight = origins["origin_weight"].to_numpy(float)[origin]
    names = [*win_model.feature_names, *INTERVAL_FEATURES]
    dataset = lgb.Dataset(
        matrix,
        label=label,
        weight=weight,
        feature_name=names,
        categorical_feature=list(win_model.feature_builder.categorical_indices_),
        free_raw_data=True,
    )
    params = {**_PARAMS, "seed": seed, "num_threads": threads, "deterministic": True}
    booster = lgb.train(params, dataset, num_boost_round=_ROUNDS)
    counts = np.bincount(label, minlength=3)
    log.debug(
        "horizon model: %d person-months of %d origins (%d won, %d lost months)",
        len(label),
        len(origins),
        counts[WON],
        counts[LOST],
    )
    return HorizonModel(
        booster,
        MAX_OFFSET,
        {
            "as_of": f"{pd.Timestamp(as_of):%Y-%m-%d}",
            "person_months": len(label),
            "origins": len(origins),
            "won_months": int(counts[WON]),
            "lost_months": int(counts[LOST]),
        },
    )


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class HorizonCurves:
    """Per deal and calendar month from the origin's month (column ``k``): the anchored outcome curves.

    ``won[i, k]`` is P(won by the end of month k), ``lost`` likewise, ``open = 1 - won - lost``;
    ``p_won`` the limit of ``won`` (the calibrated P(won)), ``origin_month`` the month index of k = 0.
    """

    won: np.ndarray
    lost: np.ndarray
    open: np.ndarray
    p_won: np.ndarray
    origin_month: np.ndarray


def hazards(
    horizon: HorizonModel,
    win_model: WinModel,
    rows: pd.DataFrame,
    base: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Give the won and lost hazards of months ``0 .. max_offset`` per row (n x (max_offset + 1) each).

    ``base`` is the win model's matrix of ``rows`` when the caller has it.
    """
    n, width = len(rows), horizon.max_offset + 1
    base = win_model.matrix(rows) if base is None else base
    origin = np.arange(n)
    months = np.stack(
        [_interval_features(rows, origin, np.full(n, k)) for k in range(width)], axis=1
    )
    probability = horizon.month_probabilities(base, months)
    return probability[:, :, WON], probability[:, :, LOST]


def anchored_curves(
    won_hazard: np.ndarray,
    lost_hazard: np.ndarray,
    p_won: np.ndarray,
    *,
    months: int = CURVE_MONTHS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give (won, lost, open) cumulative curves over ``months`` months, anchored so that won tends to ``p_won``.

    The last hazard column repeats for every later month. See the module notes.
    """
    width = won_hazard.shape[1]
    extra = max(months - width, 0)
    hw = np.hstack([won_hazard, np.repeat(won_hazard[:, -1:], extra, axis=1)])[:, :months]
    hl = np.hstack([lost_hazard, np.repeat(lost_hazard[:, -1:], extra, axis=1)])[:, :months]
    total = np.clip(hw + hl, 1e-12, 1.0)
    hw, hl = hw * np.minimum(1.0, 1.0 / total), hl * np.minimum(1.0, 1.0 / total)
    survival = np.cumprod(np.hstack([np.ones((len(hw), 1)), 1.0 - hw - hl]), axis=1)
    won = np.cumsum(survival[:, :-1] * hw, axis=1)
    lost = np.cumsum(survival[:, :-1] * hl, axis=1)
    # The limits: after the modelled months the last hazards go on, a geometric tail.
    tail_w, tail_l = won_hazard[:, -1], lost_hazard[:, -1]
    share_won = tail_w / np.clip(tail_w + tail_l, 1e-12, None)
    at_tail = survival[:, width - 1] if width <= months else survival[:, -1]
    won_limit = won[:, width - 2] + at_tail * share_won if width >= 2 else share_won
    won_limit = np.clip(won_limit, 1e-9, 1 - 1e-9)
    p = np.clip(np.asarray(p_won, dtype=float), 0.0, 1.0)
    won = np.minimum(won * (p / won_limit)[:, None], p[:, None])
    lost = np.minimum(lost * ((1.0 - p) / (1.0 - won_limit))[:, None], (1.0 - p)[:, None])
    return won, lost, np.clip(1.0 - won - lost, 0.0, 1.0)


def horizon_curves(
    horizon: HorizonModel,
    win_model: WinModel,
    rows: pd.DataFrame,
    p_won: np.ndarray | None = None,
    *,
    as_of: pd.Timestamp | None = None,
    months: int = CURVE_MONTHS,
    base: np.ndarray | None = None,
) -> HorizonCurves:
    """Give the anchored curves of point-in-time rows (``p_won`` default: the win model's calibrated P(won)).

    With ``as_of`` the months count from that day (the scoring or forecast day), each deal as its
    latest row showed it; otherwise from each row's own date. ``base``: the win model's matrix
    of ``rows`` when the caller has it (not with ``as_of``, which moves the rows' features).
    """
    if base is not None and as_of is not None:
        raise ValueError("give base or as_of, not both: as_of changes the rows' features")
    rows = rows.reset_index(drop=True)
    if p_won is None:
        p_won = win_model.predict_proba(rows)
    if as_of is not None:
        rows = rows.assign(**{AS_OF: pd.Timestamp(as_of)})
    won_hazard, lost_hazard = hazards(horizon, win_model, rows, base)
    won, lost, still_open = anchored_curves(won_hazard, lost_hazard, p_won, months=months)
    return HorizonCurves(won, lost, still_open, np.asarray(p_won, float), _month_index(rows[AS_OF]))


def horizon_columns(curves: HorizonCurves, rows: pd.DataFrame) -> pd.DataFrame:
    """Give the scored file's horizon columns (:data:`HORIZON_COLUMNS`) from the curves of ``rows``.

    Months are calendar months from each row's as-of date: this month is k = 0,
    this quarter ends at the month closing the as-of date's quarter, next quarter
    three months later. ``p_won_next_quarter`` is P(won by the end of next
    quarter) (cumulative, like the others). ``slip_risk`` is P(still open at the
    end of the CRM's expected close month) (this month when that date has passed).
    ``predicted_close_month`` is the median month of the won-time distribution
    (the first month by whose end half of the deal's P(won) is reached).
    """
    rows = rows.reset_index(drop=True)
    n = len(rows)
    index = np.arange(n)
    start = curves.origin_month
    quarter_end = 2 - (start % 12) % 3
    next_quarter_end = quarter_end + 3
    if EXPECTED_CLOSE in rows:
        expected = _month_index(rows[EXPECTED_CLOSE])
    else:
        expected = _month_index(rows["close_date"])
    months = curves.won.shape[1]
    slip_month = np.clip(np.where(expected >= 0, expected - start, 0), 0, months - 1)
    half = curves.won >= (curves.p_won[:, None] / 2.0) - 1e-12
    median = np.where(half.any(axis=1), np.argmax(half, axis=1), months - 1)
    month = start + median
    close_month = np.char.add(
        np.char.add((month // 12).astype(str), "-"), np.char.zfill((month % 12 + 1).astype(str), 2)
    )
    return pd.DataFrame(
        {
            "p_won_this_month": curves.won[:, 0],
            "p_won_this_quarter": curves.won[index, quarter_end],
            "p_won_next_quarter": curves.won[index, next_quarter_end],
            "p_lost_this_quarter": curves.lost[index, quarter_end],
            "p_open_end_of_quarter": curves.open[index, quarter_end],
            "slip_risk": np.where(expected >= 0, curves.open[index, slip_month], np.nan),
            "predicted_close_month": np.where(curves.p_won > 0, close_month, ""),
        }
    )


# --------------------------------------------------------------------------- evaluation


def expected_close_curves(
    rows: pd.DataFrame, p_won: np.ndarray, *, months: int = CURVE_MONTHS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give the curves of "P(won) at the expected close date": the whole outcome lands in the CRM's month.

    The baseline the forecast used before horizons: a deal is open until the end of
    its expected close month (this month when it has passed), then won with P(won).
    """
    start = _month_index(rows[AS_OF])
    expected = _month_index(rows[EXPECTED_CLOSE] if EXPECTED_CLOSE in rows else rows["close_date"])
    at = np.clip(expected - start, 0, None)
    decided = np.arange(months)[None, :] >= at[:, None]
    p = np.asarray(p_won, float)[:, None]
    won, lost = decided * p, decided * (1 - p)
    return won, lost, 1.0 - won - lost


def stage_curves(
    history: pd.DataFrame, as_of: pd.Timestamp, rows: pd.DataFrame, *, months: int = CURVE_MONTHS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give the Aalen-Johansen curves by CRM stage: monthly won/lost hazards of each stage, pooled.

    The non-parametric baseline: the discrete-time Aalen-Johansen estimator on
    the same person-period rows (events over deals at risk, per stage and month
    offset, censoring handled the same way), applied to each row's stage.
    """
    origins, origin, offset, label = person_period_rows(history, as_of)
    stage = origins["stage"].astype(str).to_numpy()[origin] if "stage" in origins else None
    frame = pd.DataFrame(
        {
            "stage": stage if stage is not None else "all",
            "offset": np.minimum(offset, MAX_OFFSET),
            "won": (label == WON) * origins["origin_weight"].to_numpy()[origin],
            "lost": (label == LOST) * origins["origin_weight"].to_numpy()[origin],
            "weight": origins["origin_weight"].to_numpy()[origin],
        }
    )
    sums = frame.groupby(["stage", "offset"]).sum()
    pooled = frame.groupby("offset")[["won", "lost", "weight"]].sum()
    width = MAX_OFFSET + 1
    row_stage = (
        rows["stage"].astype(str).to_numpy() if "stage" in rows else np.full(len(rows), "all")
    )
    hw = np.zeros((len(rows), width))
    hl = np.zeros((len(rows), width))
    for k in range(width):
        fallback = pooled.loc[k] if k in pooled.index else None
        for value in np.unique(row_stage):
            key = (value, k)
            source = sums.loc[key] if key in sums.index else fallback
            if source is None or source["weight"] <= 0:
                continue
            mask = row_stage == value
            hw[mask, k] = source["won"] / source["weight"]
            hl[mask, k] = source["lost"] / source["weight"]
    won_limit = _limit(hw, hl)
    return anchored_curves(hw, hl, won_limit, months=months)


def _limit(hw: np.ndarray, hl: np.ndarray) -> np.ndarray:
    """Give the won limit of hazard curves whose last month repeats."""
    survival = np.cumprod(np.hstack([np.ones((len(hw), 1)), 1.0 - hw - hl]), axis=1)
    won = np.cumsum(survival[:, :-1] * hw, axis=1)
    share = hw[:, -1] / np.clip(hw[:, -1] + hl[:, -1], 1e-12, None)
    limit: np.ndarray = won[:, -2] + survival[:, -2] * share
    return limit


def integrated_brier(
    curves: tuple[np.ndarray, np.ndarray, np.ndarray],
    won_by: np.ndarray,
    lost_by: np.ndarray,
) -> float:
    """Give the integrated Brier score over the months observed: mean over months of the three-state Brier.

    ``won_by[i, k]`` / ``lost_by[i, k]`` are the outcomes (0/1) or their true
    probabilities (then the score is the expected Brier, noise included); the
    first ``won_by.shape[1]`` months are used.
    """
    months = won_by.shape[1]
    won, lost, still_open = (c[:, :months] for c in curves)
    open_by = 1.0 - won_by - lost_by
    # E[(p - y)^2] = (p - q)^2 + q (1 - q) for y ~ Bernoulli(q); exact for 0/1 outcomes too.
    score = sum(
        (p - q) ** 2 + q * (1 - q)
        for p, q in ((won, won_by), (lost, lost_by), (still_open, open_by))
    )
    return float(np.mean(score))


def reliability_table(
    predicted: np.ndarray, observed: np.ndarray, *, bins: int = 10
) -> pd.DataFrame:
    """Give predicted vs observed by decile of the prediction (``bin``, ``deals``, ``predicted``, ``observed``)."""
    frame = pd.DataFrame({"predicted": predicted, "observed": observed})
    edges = np.unique(np.quantile(predicted, np.linspace(0, 1, bins + 1)))
    frame["bin"] = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, len(edges) - 2)
    table = frame.groupby("bin").agg(
        deals=("predicted", "size"), predicted=("predicted", "mean"), observed=("observed", "mean")
    )
    return table.reset_index()


def expected_calibration_error(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Give the deal-weighted mean |predicted - observed| over the deciles of :func:`reliability_table`."""
    table = reliability_table(predicted, observed)
    return float(np.average(np.abs(table["predicted"] - table["observed"]), weights=table["deals"]))


def open_rows_at(history: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Give the deals open at ``cutoff`` as the CRM showed them then (their latest row on or before it)."""
    cutoff = pd.Timestamp(cutoff)
    is_open = history["status"].eq("open")
    known = (history[AS_OF] <= cutoff) & (is_open | (history[AS_OF] < history["close_date"]))
    open_then = (history["created_date"] < cutoff) & (is_open | (history["close_date"] >= cutoff))
    rows = history[known & open_then].sort_values(["opportunity_id", AS_OF], kind="stable")
    return rows.groupby("opportunity_id", sort=False).tail(1).reset_index(drop=True)


def observed_outcomes(rows: pd.DataFrame, as_of: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Give won-by and lost-by (0/1, deals x months) for the months from each row's month complete on ``as_of``."""
    as_of = pd.Timestamp(as_of)
    start = _month_index(rows[AS_OF])
    month_complete = (as_of + pd.Timedelta(days=1)).month != as_of.month
    last = int(_month_index(pd.Series([as_of]))[0]) - (0 if month_complete else 1)
    months = max(int(last - start.max()) + 1, 0)
    close = _month_index(rows["close_date"])
    closed_by = (pd.to_datetime(rows["close_date"]) <= as_of).to_numpy()
    offset = close - start
    status = rows["status"].to_numpy()
    won = np.column_stack(
        [(status == "won") & closed_by & (offset <= k) for k in range(months)]
    ).reshape(len(rows), months)
    lost = np.column_stack(
        [(status == "lost") & closed_by & (offset <= k) for k in range(months)]
    ).reshape(len(rows), months)
    return won.astype(float), lost.astype(float)


def horizon_holdout(
    win_model: WinModel,
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    as_of: pd.Timestamp,
    *,
    seed: int = 0,
    threads: int = 0,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Give the horizon model's honest check: fitted on what was known at ``cutoff``, scored on deals open then.

    The outcomes are those known on ``as_of`` for every month complete by then.
    ``win_model`` must not have learned from deals closed after ``cutoff`` (the
    training holdout's start is such a cut-off). Gives metrics (per month and for
    this month / this quarter: Brier and ECE of P(won by then); integrated Brier
    of winmodel, the Aalen-Johansen-by-stage curves and P(won) at the expected
    close date) and the reliability tables (``horizon``, ``bin``, ``deals``,
    ``predicted``, ``observed``).
    """
    # Known on the day before the cut-off: a deal closing on the cut-off day is open then, not an outcome.
    known_on = pd.Timestamp(cutoff) - pd.Timedelta(days=1)
    horizon = fit_horizon_model(win_model, history, known_on, seed=seed, threads=threads)
    # Seen from the cut-off day itself (the months count from its month), as a scorer would.
    rows = open_rows_at(history, cutoff)
    rows = rows.assign(**{AS_OF: pd.Timestamp(cutoff)})
    won_by, lost_by = observed_outcomes(rows, as_of)
    metrics: dict[str, float] = {"deals": float(len(rows)), "months": float(won_by.shape[1])}
    tables = []
    if not len(rows) or not won_by.shape[1]:
        return metrics, pd.DataFrame(columns=["horizon", "bin", "deals", "predicted", "observed"])
    curves = horizon_curves(horizon, win_model, rows)
    start = curves.origin_month
    named = {f"month_{k}": np.full(len(rows), k) for k in range(won_by.shape[1])}
    named["this_month"] = np.zeros(len(rows), dtype=int)
    named["this_quarter"] = 2 - (start % 12) % 3
    named["next_quarter"] = named["this_quarter"] + 3
    index = np.arange(len(rows))
    for name, month in named.items():
        if month.max() >= won_by.shape[1]:
            continue
        predicted, observed = curves.won[index, month], won_by[index, month]
        metrics[f"{name}.brier"] = float(np.mean((predicted - observed) ** 2))
        metrics[f"{name}.ece"] = expected_calibration_error(predicted, observed)
        metrics[f"{name}.predicted"] = float(predicted.mean())
        metrics[f"{name}.observed"] = float(observed.mean())
        tables.append(reliability_table(predicted, observed).assign(horizon=name))
    p_won = curves.p_won
    for method, method_curves in (
        ("winmodel", (curves.won, curves.lost, curves.open)),
        ("stage_aalen_johansen", stage_curves(history, cutoff, rows)),
        ("pwon_at_expected_close", expected_close_curves(rows, p_won)),
    ):
        metrics[f"integrated_brier.{method}"] = integrated_brier(method_curves, won_by, lost_by)
    table = pd.concat(tables, ignore_index=True)
    return metrics, table[["horizon", "bin", "deals", "predicted", "observed"]]


__all__ = [
    "HORIZON_COLUMNS",
    "HorizonCurves",
    "HorizonModel",
    "anchored_curves",
    "expected_close_curves",
    "fit_horizon_model",
    "horizon_columns",
    "horizon_curves",
    "horizon_holdout",
    "integrated_brier",
    "observed_outcomes",
    "open_rows_at",
    "person_period_rows",
    "reliability_table",
    "stage_curves",
]
