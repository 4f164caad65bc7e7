"""Figures for runs, reports and notebooks. Each function returns a Figure; the caller saves it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # after matplotlib.use: the backend is chosen first
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def reliability_figure(curves: dict[str, pd.DataFrame], title: str = "Reliability") -> Figure:
    """Give predicted vs observed win rate per bin for each named curve (from reliability_table)."""
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for label, table in curves.items():
        axis.plot(table["predicted"], table["observed"], marker="o", label=label)
    axis.set_xlabel("predicted win probability")
    axis.set_ylabel("observed win rate")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_title(title)
    axis.legend(loc="upper left")
    figure.tight_layout()
    return figure


def importance_figure(importance: pd.DataFrame, top: int = 20) -> Figure:
    """Give a horizontal bar chart of total gain per business item (from TrainingResult.feature_importance)."""
    by_item = importance.groupby("item")["gain"].sum().sort_values().tail(top)
    figure, axis = plt.subplots(figsize=(6.5, 0.3 * len(by_item) + 1.2))
    axis.barh(by_item.index, by_item.to_numpy() / by_item.sum(), color="#3b6ea8")
    axis.set_xlabel("share of total gain")
    axis.set_title("What the model relies on (by business item)")
    figure.tight_layout()
    return figure


def shap_summary_figure(contributions: np.ndarray, matrix: np.ndarray, feature_names: list[str],
                        max_display: int = 15) -> Figure:
    """Give the SHAP beeswarm of log-odds contributions (n x features, base column excluded)."""
    import shap

    explanation = shap.Explanation(values=contributions, data=matrix, feature_names=feature_names)
    shap.plots.beeswarm(explanation, max_display=max_display, show=False)
    figure = plt.gcf()
    figure.suptitle("SHAP values (log-odds) on holdout deals")
    figure.tight_layout()
    return figure


def backtest_figure(backtest: pd.DataFrame, metric: str = "brier") -> Figure:
    """Give the metric per backtest fold for winmodel and each baseline."""
    table = backtest.pivot(index="slice", columns="method", values=metric)
    order = [s for s in backtest["slice"].drop_duplicates()]
    table = table.loc[order]
    figure, axis = plt.subplots(figsize=(7, 4))
    for method in table.columns:
        axis.plot(table.index, table[method], marker="o", label=method)
    axis.set_ylabel(metric)
    axis.set_title(f"Backtest by close period: {metric} (lower is better)" if metric in ("brier", "log_loss")
                   else f"Backtest by close period: {metric}")
    axis.legend()
    plt.setp(axis.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    return figure


def win_rate_figure(table: pd.DataFrame, dimension: str, overall: float) -> Figure:
    """Give win rate with its 95 % interval per value of one dimension (from the profile table)."""
    part = table[table["dimension"] == dimension].sort_values("win_rate")
    figure, axis = plt.subplots(figsize=(6.5, 0.35 * len(part) + 1.2))
    errors = np.vstack([part["win_rate"] - part["ci_low"], part["ci_high"] - part["win_rate"]])
    axis.barh(part["value"].astype(str), part["win_rate"], xerr=errors, color="#3b8e5a", alpha=0.85)
    axis.axvline(overall, color="grey", linestyle="--", linewidth=1, label=f"overall {overall:.0%}")
    axis.set_xlabel("win rate of closed deals (95 % interval)")
    axis.set_title(dimension.replace("_", " "))
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure
