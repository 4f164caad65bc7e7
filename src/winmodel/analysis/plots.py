"""Figures for runs, reports and notebooks. Each function returns a Figure; the caller saves it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # after matplotlib.use: the backend is chosen first
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter


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


def shap_summary_figure(
    contributions: np.ndarray, matrix: np.ndarray, feature_names: list[str], max_display: int = 15
) -> Figure:
    """Give the SHAP beeswarm of log-odds contributions (n x features, base column excluded)."""
    import shap

    explanation = shap.Explanation(values=contributions, data=matrix, feature_names=feature_names)
    shap.plots.beeswarm(explanation, max_display=max_display, show=False)
    figure = plt.gcf()
    figure.suptitle("SHAP values (log-odds) on holdout deals")
    figure.tight_layout()
    return figure


def backtest_figure(backtest: pd.DataFrame, metric: str = "brier") -> Figure:
    """Give the metric per backtest fold for winmodel and each baseline (the headline moment)."""
    if "moment" in backtest:
        backtest = backtest[backtest["moment"] == backtest["moment"].iloc[0]]
    table = backtest.pivot(index="slice", columns="method", values=metric)
    order = [s for s in backtest["slice"].drop_duplicates()]
    table = table.loc[order]
    figure, axis = plt.subplots(figsize=(7, 4))
    for method in table.columns:
        axis.plot(table.index, table[method], marker="o", label=method)
    axis.set_ylabel(metric)
    axis.set_title(
        f"Backtest by close period: {metric} (lower is better)"
        if metric in ("brier", "log_loss")
        else f"Backtest by close period: {metric}"
    )
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


def _wrapped(text: str, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def scenario_figure(scenarios: pd.DataFrame, direction: str = "win", top: int = 10) -> Figure:
    """Give the win rate (95 % interval) of the top scenarios of one direction, their closest part and the overall rate.

    ``scenarios`` comes from :func:`winmodel.analysis.profile.find_scenarios`.
    """
    part = scenarios[scenarios["direction"] == direction].sort_values("rank").head(top).iloc[::-1]
    figure, axis = plt.subplots(figsize=(8, 0.62 * max(len(part), 1) + 1.4))
    if part.empty:
        axis.text(0.5, 0.5, f"no {direction} scenario passes the rules", ha="center", va="center")
        axis.set_axis_off()
        return figure
    labels = [_wrapped(text) for text in part["scenario"]]
    errors = np.vstack([part["win_rate"] - part["ci_low"], part["ci_high"] - part["win_rate"]])
    colour = "#3b8e5a" if direction == "win" else "#b5483b"
    axis.barh(
        labels,
        part["win_rate"],
        xerr=errors,
        color=colour,
        alpha=0.85,
        label="scenario (95 % interval)",
    )
    axis.scatter(
        part["best_part_rate"],
        labels,
        marker="|",
        s=300,
        color="black",
        zorder=3,
        label="its closest single value or pair",
    )
    overall = float(part["overall_rate"].iloc[0])
    axis.axvline(overall, color="grey", linestyle="--", linewidth=1, label=f"overall {overall:.0%}")
    axis.set_xlim(0, 1)
    axis.xaxis.set_major_formatter(PercentFormatter(1.0))
    axis.set_xlabel("win rate of closed deals")
    axis.set_title(f"Strongest {direction} scenarios")
    axis.tick_params(axis="y", labelsize=8)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8, frameon=False)
    figure.tight_layout()
    return figure


def forecast_figure(table: pd.DataFrame) -> Figure:
    """Give expected bookings per period with the P10-P90 range and the CRM's stage-weighted forecast.

    ``table`` comes from :func:`winmodel.analysis.forecast.forecast_by_period` (the total row is left out).
    """
    part = table[table["period"] != "total"]
    figure, axis = plt.subplots(figsize=(8, 4))
    x = np.arange(len(part))
    errors = np.vstack([part["expected"] - part["p10"], part["p90"] - part["expected"]])
    axis.bar(
        x,
        part["expected"],
        yerr=errors,
        color="#3b6ea8",
        alpha=0.85,
        capsize=4,
        label="winmodel expected (P10-P90)",
    )
    if part["crm_weighted"].notna().any():
        axis.scatter(
            x,
            part["crm_weighted"],
            color="#b5483b",
            marker="D",
            zorder=3,
            label="CRM stage-weighted",
        )
    axis.set_xticks(x, part["period"].astype(str), rotation=30, ha="right")
    axis.set_ylabel("bookings")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.set_title("Expected bookings by expected close period")
    axis.legend()
    figure.tight_layout()
    return figure


def forecast_backtest_figure(periods: pd.DataFrame) -> Figure:
    """Give each method's replayed forecast with its P10-P90 band beside the actual, per period.

    ``periods`` is :attr:`winmodel.analysis.replay.ForecastBacktest.periods`.
    """
    figure, axis = plt.subplots(figsize=(8, 4))
    order = list(dict.fromkeys(periods["period"]))
    x = np.arange(len(order))
    styles = {"winmodel": ("#3b6ea8", -0.12), "stage_weighted": ("#b5483b", 0.12)}
    methods = cast(Iterable[tuple[str, pd.DataFrame]], periods.groupby("method", sort=False))
    for method, part in methods:
        part = part.set_index("period").loc[order]
        colour, shift = styles.get(method, ("grey", 0.0))
        errors = np.vstack([part["forecast"] - part["p10"], part["p90"] - part["forecast"]])
        axis.errorbar(
            x + shift,
            part["forecast"],
            yerr=errors,
            fmt="o",
            color=colour,
            capsize=4,
            label=f"{method.replace('_', ' ')} (P10-P90)",
        )
    actual = periods.drop_duplicates("period").set_index("period").loc[order, "actual"]
    axis.scatter(x, actual, marker="_", s=500, color="black", zorder=3, label="actual (won)")
    axis.set_xticks(x, order, rotation=30, ha="right")
    axis.set_ylabel("bookings")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.set_title("Forecast replay: what each method said on the first day of the period")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
