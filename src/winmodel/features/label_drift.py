"""Give the label-drift report: win rate per value of each win dimension, newest months against before.

A model learns the win rates of the past. When a segment's win rate collapses or rises in the
newest months (a competitor got stronger, a market turned), the model's scores for that segment
lag behind until enough of the new outcomes reach the training data. Training reports such
segments (printed, logged, in the model card) so RevOps can read the scores there with care.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import cast

import numpy as np
import pandas as pd

#: The win dimensions whose values the report compares (those present are used).
DIMENSIONS = (
    "industry",
    "region",
    "growth_stage",
    "primary_pain",
    "deal_type",
    "urgency",
    "trigger_event",
    "primary_competitor",
    "competitive_position",
    "champion_role",
    "customization_required",
    "strategic_value",
)


def segment_values(column: pd.Series) -> pd.Series:
    """Give a dimension column's values as the report names its segments (a missing value: '(blank)')."""
    return column.astype("str").fillna("(blank)")


def wilson_interval(
    wins: np.ndarray, deals: np.ndarray, z: float = 1.96
) -> tuple[np.ndarray, np.ndarray]:
    """Give the Wilson score interval (low, high) of a win rate (``wins`` of ``deals``)."""
    deals = np.maximum(np.asarray(deals, dtype=float), 1e-12)
    rate = np.asarray(wins, dtype=float) / deals
    centre = (rate + z * z / (2 * deals)) / (1 + z * z / deals)
    half = (
        z * np.sqrt(rate * (1 - rate) / deals + z * z / (4 * deals * deals)) / (1 + z * z / deals)
    )
    return centre - half, centre + half


def label_drift(
    deals: pd.DataFrame,
    *,
    recent_days: int = 183,
    as_of: pd.Timestamp | None = None,
    min_deals: int = 30,
    dimensions: Sequence[str] = DIMENSIONS,
) -> pd.DataFrame:
    """Give one row per dimension value: win rate (with 95 % interval) recently and before, drifted.

    ``deals`` holds one row per closed deal: ``status`` (won / lost), ``close_date`` and the
    dimension columns. Recent = closed within ``recent_days`` before ``as_of`` (default: the
    newest close). A value is compared when it has at least ``min_deals`` deals on both sides; it
    is *drifted* when the two intervals do not overlap, or when it is new (``min_deals`` recent
    deals, fewer than 5 before). Sorted drifted first, then by the size of the change.
    """
    as_of = pd.Timestamp(as_of) if as_of is not None else deals["close_date"].max()
    recent = (deals["close_date"] >= as_of - pd.Timedelta(days=recent_days)).to_numpy()
    won = deals["status"].eq("won").to_numpy()
    records = []
    for dimension in [d for d in dimensions if d in deals]:
        values = segment_values(deals[dimension]).to_numpy()
        frame = pd.DataFrame({"value": values, "recent": recent, "won": won})
        grouped = frame.groupby(["value", "recent"])["won"].agg(["sum", "size"])
        stats: dict[tuple[str, bool], tuple[float, float]] = {
            (str(key[0]), bool(key[1])): (float(wins), float(size))
            for key, wins, size in zip(grouped.index, grouped["sum"], grouped["size"], strict=True)
        }
        for value in sorted({value for value, _ in stats}):
            wins_before, deals_before = stats.get((value, False), (0.0, 0.0))
            wins_recent, deals_recent = stats.get((value, True), (0.0, 0.0))
            if deals_recent < min_deals or (deals_before < min_deals and deals_before >= 5):
                continue
            low_recent, high_recent = wilson_interval(
                np.array([wins_recent]), np.array([deals_recent])
            )
            rate_recent = wins_recent / deals_recent
            if deals_before < 5:
                rate_before, low_before, high_before = (np.nan, np.nan, np.nan)
                drifted, kind = True, "new"
            else:
                low, high = wilson_interval(np.array([wins_before]), np.array([deals_before]))
                rate_before, low_before, high_before = (
                    wins_before / deals_before,
                    float(low[0]),
                    float(high[0]),
                )
                drifted = bool(high_recent[0] < low_before or low_recent[0] > high_before)
                kind = "fell" if rate_recent < rate_before else "rose"
            records.append(
                {
                    "dimension": dimension,
                    "value": value,
                    "deals_before": int(deals_before),
                    "win_rate_before": rate_before,
                    "before_low": low_before,
                    "before_high": high_before,
                    "deals_recent": int(deals_recent),
                    "win_rate_recent": rate_recent,
                    "recent_low": float(low_recent[0]),
                    "recent_high": float(high_recent[0]),
                    "drifted": drifted,
                    "change": kind,
                }
            )
    columns = [
        "dimension",
        "value",
        "deals_before",
        "win_rate_before",
        "before_low",
        "before_high",
        "deals_recent",
        "win_rate_recent",
        "recent_low",
        "recent_high",
        "drifted",
        "change",
    ]
    table = pd.DataFrame(records, columns=columns)
    if table.empty:
        return table
    size = (table["win_rate_recent"] - table["win_rate_before"]).abs().fillna(1.0)
    order = np.lexsort((-size.to_numpy(), ~table["drifted"].to_numpy(dtype=bool)))
    return table.iloc[order].reset_index(drop=True)


def describe_drift(table: pd.DataFrame) -> list[str]:
    """Give one sentence per drifted segment: 'industry=retail: won 16 % of 120 recent deals (...)'."""
    lines = []
    for row in table[table["drifted"]].itertuples(index=False):
        recent = (
            f"won {row.win_rate_recent:.0%} of {row.deals_recent} recent deals "
            f"({row.recent_low:.0%}-{row.recent_high:.0%})"
        )
        if row.change == "new":
            lines.append(f"{row.dimension}={row.value}: new in the newest months, {recent}")
        else:
            lines.append(
                f"{row.dimension}={row.value}: {recent} against {row.win_rate_before:.0%} of "
                f"{row.deals_before} before ({row.before_low:.0%}-{row.before_high:.0%})"
            )
    return lines


#: A drifted segment is warned on when the shipped model's gap on its newest closes, in the
#: drift's direction, reaches this many standard errors (or it has too few of them to tell).
LAG_Z = 1.0
#: Below this many newest closes in a drifted segment, the model's gap there cannot be told.
LAG_MIN_DEALS = 10


def model_lag(
    table: pd.DataFrame,
    deals: pd.DataFrame,
    probability: np.ndarray,
    won: np.ndarray,
    shifted: Collection[tuple[str, str]] = (),
) -> pd.DataFrame:
    """Give the report's drifted rows with the shipped model's gap on the newest closes, and whether it lags.

    ``deals`` holds the newest months' closed deals (one row each, the dimension columns),
    ``probability`` the shipped model's P(won) for each, ``won`` the outcomes. A drifted segment
    *lags* when the model's gap there has the drift's sign ("fell": won less than predicted) and
    reaches :data:`LAG_Z` standard errors, or when it has fewer than :data:`LAG_MIN_DEALS` newest
    closes. Where the model already follows the move (other fields explain it, or it learned it),
    scored deals are not warned. A segment in ``shifted`` (``(dimension, value)`` the model carries
    a segment shift for) is not *lagging*: its scored deals carry the shift's own warning, and the
    shift (sized for the deals created lately) can leave its older newest closes under-predicted.
    Columns added: ``newest_deals``, ``newest_won``, ``newest_predicted``, ``newest_z``,
    ``shifted``, ``lagging``, and ``lag``: how the newest closes went against the model ("less",
    "more", or "unknown" below :data:`LAG_MIN_DEALS`).
    """
    drifted = table[table["drifted"]].reset_index(drop=True)
    probability = np.asarray(probability, dtype=float)
    won = np.asarray(won, dtype=float)
    shifted = set(shifted)
    records = []
    for row in drifted.itertuples(index=False):
        column = deals.get(row.dimension)
        inside = (
            np.zeros(len(deals), dtype=bool)
            if column is None
            else (segment_values(column) == row.value).to_numpy(dtype=bool)
        )
        count = int(inside.sum())
        predicted = float(probability[inside].mean()) if count else np.nan
        observed = float(won[inside].mean()) if count else np.nan
        spread = float(np.sqrt(np.sum(probability[inside] * (1 - probability[inside]))))
        z = float(np.sum(won[inside] - probability[inside])) / spread if spread > 0 else 0.0
        direction = {"fell": -1.0, "rose": 1.0}.get(str(row.change), float(np.sign(z)))
        moved = (str(row.dimension), str(row.value)) in shifted
        records.append(
            {
                "newest_deals": count,
                "newest_won": observed,
                "newest_predicted": predicted,
                "newest_z": z,
                "shifted": moved,
                "lagging": not moved and (count < LAG_MIN_DEALS or direction * z >= LAG_Z),
                "lag": "unknown" if count < LAG_MIN_DEALS else "less" if z < 0 else "more",
            }
        )
    return pd.concat([drifted, pd.DataFrame(records, index=drifted.index)], axis=1)


def describe_lag(row: pd.Series) -> str:
    """Give the model's side of a drifted segment: '... newest closes: 16% won against 25% predicted'."""
    if row["shifted"]:
        return "the model shifts this segment (see the segment shifts): scored deals say so"
    if row["newest_deals"] < LAG_MIN_DEALS:
        return (
            f"{row['newest_deals']} of its deals closed in the holdout months, too few to tell "
            "whether the model lags: scored deals are warned"
        )
    seen = (
        f"its {row['newest_deals']} newest closes won {row['newest_won']:.0%} against "
        f"{row['newest_predicted']:.0%} predicted (z {row['newest_z']:+.2f})"
    )
    if row["lagging"]:
        return f"{seen}: the model lags, scored deals are warned"
    return f"{seen}: the model follows the move, scored deals are not warned"


def shifted_segments(shifts: Sequence[Mapping[str, object]]) -> dict[tuple[str, str], float]:
    """Give each shifted segment's total log-odds shift from a model's ``segment_shifts`` (a segment can have two)."""
    total: dict[tuple[str, str], float] = {}
    for shift in shifts:
        key = (str(shift["dimension"]), str(shift["value"]))
        total[key] = total.get(key, 0.0) + float(cast(float, shift["logit_shift"]))
    return total


def below_test_chances(shifts: Sequence[Mapping[str, object]]) -> dict[tuple[str, str], float]:
    """Give the segments shifted only below the test, each with the chance that it moved (``moved_chance``).

    A segment with a shift that passed the test (chance 1, or a model trained before the field
    existed) is not in it.
    """
    chances: dict[tuple[str, str], float] = {}
    for shift in shifts:
        key = (str(shift["dimension"]), str(shift["value"]))
        chance = float(cast(float, shift.get("moved_chance", 1.0)))
        chances[key] = max(chance, chances.get(key, 0.0))
    return {key: chance for key, chance in chances.items() if chance < 1.0}


def drift_warnings(
    rows: pd.DataFrame,
    drifted: Sequence[Sequence[str]],
    shifted: Mapping[tuple[str, str], float] | None = None,
    lags: Sequence[Sequence[str]] = (),
    chances: Mapping[tuple[str, str], float] | None = None,
) -> pd.Series:
    """Give per row a warning naming the drifted or shifted segments the deal falls in ('' if none).

    ``drifted`` holds ``(dimension, value)`` pairs (the model's ``drifted_values``): the training
    saw that segment's win rate move in the newest months, so its score there may lag. ``lags``
    holds ``(dimension, value, lag)`` (the model's ``drifted_lags``, models trained since the lag
    check): how the segment's newest closes went against the model ("less": won less than it
    predicts, "more", or "unknown": too few to tell). A missing value is the segment
    ``(blank)``, as the report names it. ``shifted`` maps ``(dimension, value)`` to the log-odds shift the model applies there (the
    model's ``segment_shifts``, :mod:`winmodel.modeling.segment_shift`): the warning says so, and
    for a segment in ``chances`` (shifted below the test, :func:`below_test_chances`) the chance
    that it moved, which weighted the shift.
    """
    shifted = dict(shifted or {})
    chances = dict(chances or {})
    lag_of = {(str(d), str(v)): str(lag) for d, v, lag in lags}
    segments = list(dict.fromkeys([*((str(d), str(v)) for d, v in drifted), *shifted]))
    text = pd.Series("", index=rows.index, dtype="str")
    for dimension, value in segments:
        if dimension not in rows:
            continue
        inside = (segment_values(rows[dimension]) == str(value)).to_numpy(dtype=bool)
        shift = shifted.get((dimension, value))
        lag = lag_of.get((dimension, value), "")
        chance = chances.get((dimension, value))
        weighted = "" if chance is None else f", weighted by a {chance:.0%} chance that it moved"
        label = (
            f"label drift: {dimension}={value} won {'less' if shift < 0 else 'more'} than the "
            f"model expected in the newest months; score shifted {shift:+.2f} log-odds for it"
            f"{weighted}"
            if shift is not None
            else f"label drift: {dimension}={value} won {lag} in the newest months than the model "
            f"predicts there; its score may be too {'high' if lag == 'less' else 'low'}"
            if lag in ("less", "more")
            else f"label drift: {dimension}={value} win rate moved recently"
        )
        text[inside] = np.where(text[inside] == "", label, text[inside] + "; " + label)
    return text


def add_drift_warnings(
    warnings: pd.Series,
    rows: pd.DataFrame,
    drifted: Sequence[Sequence[str]],
    shifted: Mapping[tuple[str, str], float] | None = None,
    lags: Sequence[Sequence[str]] = (),
    chances: Mapping[tuple[str, str], float] | None = None,
) -> pd.Series:
    """Give ``warnings`` (per-row text) with the label-drift and segment-shift warnings joined on."""
    extra = drift_warnings(rows, drifted, shifted, lags, chances).to_numpy()
    current = warnings.astype("str").to_numpy()
    joined = np.where(extra == "", current, np.where(current == "", extra, current + "; " + extra))
    return pd.Series(joined, index=warnings.index, dtype="str")
