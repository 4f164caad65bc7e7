"""Where the company wins: win rates of closed deals by dimension, with intervals and lift."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from winmodel import contract

#: Columns profiled: the win dimensions and the qualification items of the method.
PROFILE_GROUPS = ("segment", "problem", "trigger", "competition", "champion", "qualification")


def wilson_interval(wins: np.ndarray, deals: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Give the Wilson score interval (low, high) of a win rate."""
    wins = np.asarray(wins, dtype=float)
    deals = np.asarray(deals, dtype=float)
    z = norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = wins / deals
        denominator = 1 + z**2 / deals
        centre = (rate + z**2 / (2 * deals)) / denominator
        half = z * np.sqrt(rate * (1 - rate) / deals + z**2 / (4 * deals**2)) / denominator
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def profile_columns(opportunities: pd.DataFrame) -> list[str]:
    """Give the dimension and qualification columns present in the data (numbers are banded)."""
    names = contract.columns_in_group(*PROFILE_GROUPS)
    return [name for name in names if name in opportunities and opportunities[name].notna().any()]


def banded(values: pd.Series, name: str) -> pd.Series:
    """Give a column as profile values: categories as text, numbers in quartile bands."""
    spec = contract.spec_for(name)
    if spec is not None and spec.kind in ("number", "integer") and values.nunique() > 6:
        numbers = pd.to_numeric(values, errors="coerce")
        try:
            bands = pd.qcut(numbers, 4, duplicates="drop")
        except ValueError:
            return numbers.astype("str")
        labels = bands.cat.categories
        text = {interval: f"{interval.left:,.0f} to {interval.right:,.0f}" for interval in labels}
        return bands.map(text).astype("str").where(numbers.notna(), "(blank)")
    return values.astype("str").where(values.notna(), "(blank)")


def win_rates_by_dimension(opportunities: pd.DataFrame, columns: list[str] | None = None,
                           min_deals: int = 1) -> pd.DataFrame:
    """Give, per column and value, closed deals, wins, win rate, Wilson 95 % interval and lift over the overall rate."""
    closed = opportunities[opportunities["status"].isin(contract.CLOSED_STATUSES)]
    won = closed["status"].eq("won")
    overall = float(won.mean()) if len(closed) else float("nan")
    records = []
    for name in columns or profile_columns(closed):
        values = banded(closed[name], name)
        grouped = won.groupby(values).agg(["sum", "count"])
        grouped = grouped[grouped["count"] >= min_deals]
        low, high = wilson_interval(grouped["sum"].to_numpy(), grouped["count"].to_numpy())
        spec = contract.spec_for(name)
        for (value, row), lo, hi in zip(grouped.iterrows(), low, high, strict=True):
            records.append({
                "dimension": name, "group": spec.group if spec else "extra", "value": value,
                "deals": int(row["count"]), "wins": int(row["sum"]),
                "win_rate": row["sum"] / row["count"], "ci_low": lo, "ci_high": hi,
                "lift": (row["sum"] / row["count"]) / overall if overall else float("nan"),
            })
    return pd.DataFrame(records, columns=["dimension", "group", "value", "deals", "wins", "win_rate",
                                          "ci_low", "ci_high", "lift"])
