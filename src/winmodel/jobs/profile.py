"""The profile job: an export -> where the company wins, as tables, charts and a Markdown report.

Writes into ``--out`` (default ``outputs/profile``): ``win_rates_by_dimension.csv``,
``scenarios.csv`` (every scenario that passes the rules, ranked), ``report.md``
and its charts in ``figures/``; prints the strongest scenarios.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from winmodel.analysis.profile import (
    closed_deals,
    default_min_deals,
    find_scenarios,
    render_profile_report,
    win_rates_by_dimension,
)
from winmodel.data.io import neutralise_spreadsheet_formulas, write_table_atomic, write_text_atomic
from winmodel.errors import InputError, Problem
from winmodel.paths import OUTPUTS_DIR

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger("winmodel")

DEFAULT_PROFILE_DIR = OUTPUTS_DIR / "profile"
SHOWN_SCENARIOS = 10


@dataclass
class ProfileOutcome:
    """What the profile found and where it was written."""

    dimensions: pd.DataFrame
    scenarios: pd.DataFrame
    closed: int
    won: int
    files: dict[str, Path] = field(default_factory=dict)


def run_profile(
    data: Path,
    *,
    mapping: Path | None = None,
    since: str | pd.Timestamp | None = None,
    out: Path = DEFAULT_PROFILE_DIR,
    min_deals: int | None = None,
    top: int = SHOWN_SCENARIOS,
    charts: bool = True,
    console: Console | None = None,
) -> ProfileOutcome:
    """Profile the closed deals of the export at ``data``; print the scenarios and write the report to ``out``."""
    from winmodel.data.dataset import load_crm_data

    console = console or Console()
    since_date = _parse_since(since)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(
            Problem(
                file=str(out),
                column=None,
                problem="--out names a file, not a folder",
                fix="give a folder for the report (it is created if missing)",
            )
        )
    crm = load_crm_data(Path(data), mapping)
    closed = closed_deals(crm.opportunities, since_date)
    if closed.empty:
        raise InputError(
            Problem(
                file=crm.files.get("opportunities", str(data)),
                column="status",
                problem="no closed (won or lost) deal"
                + (f" closed on or after {since_date:%Y-%m-%d}" if since_date else ""),
                fix="profile an export with closed deals, or an earlier --since date",
            )
        )
    won = int(closed["status"].eq("won").sum())
    dimensions = win_rates_by_dimension(closed)
    scenarios = find_scenarios(closed, min_deals=min_deals, top=None)
    support = default_min_deals(len(closed)) if min_deals is None else min_deals
    period = _period_text(closed, since_date)

    out.mkdir(parents=True, exist_ok=True)
    # Values come from the export: neutralise any that a spreadsheet would run as a formula.
    files = {
        "dimensions": write_table_atomic(
            neutralise_spreadsheet_formulas(dimensions), out / "win_rates_by_dimension.csv"
        ),
        "scenarios": write_table_atomic(
            neutralise_spreadsheet_formulas(scenarios), out / "scenarios.csv"
        ),
    }
    figures = _write_figures(dimensions, scenarios, out, top, won / len(closed)) if charts else {}
    report = render_profile_report(
        dimensions,
        scenarios[scenarios["rank"] <= top],
        closed=len(closed),
        won=won,
        period=period,
        min_deals=support,
        figures=figures,
    )
    files["report"] = write_text_atomic(report, out / "report.md")

    console.print(
        f"{len(closed):,} closed deals ({period}): {won:,} won, overall win rate "
        f"{won / len(closed):.0%}; scenarios need at least {support:,} deals"
    )
    for direction in ("win", "loss"):
        console.print(_scenario_table(scenarios, direction, top))
    console.print(f"wrote {files['report']}, {files['scenarios']} and {files['dimensions']}")
    return ProfileOutcome(dimensions, scenarios, len(closed), won, files)


def _parse_since(since: str | pd.Timestamp | None) -> pd.Timestamp | None:
    if since is None or isinstance(since, pd.Timestamp):
        return since
    try:
        return pd.Timestamp(since)
    except (ValueError, TypeError):
        raise InputError(
            Problem(
                file="--since",
                column=None,
                problem=f"'{since}' is not a date",
                fix="give the date as YYYY-MM-DD, e.g. --since 2025-01-01",
            )
        ) from None


def _period_text(closed: pd.DataFrame, since: pd.Timestamp | None) -> str:
    dates = pd.to_datetime(closed["close_date"]).dropna()
    if dates.empty:
        return "close dates unknown"
    return f"closed {max(dates.min(), since) if since is not None else dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}"


def _write_figures(
    dimensions: pd.DataFrame, scenarios: pd.DataFrame, out: Path, top: int, overall: float
) -> dict[str, str]:
    """Save the scenario charts and one chart per dimension; give their paths relative to ``out``."""
    import matplotlib.pyplot as plt

    from winmodel.analysis.plots import scenario_figure, win_rate_figure

    folder = out / "figures"
    folder.mkdir(exist_ok=True)
    # Called without arguments: each maker holds its loop value as a default argument.
    makers: dict[str, Callable[..., Figure]] = {
        f"scenarios_{direction}": (lambda d=direction: scenario_figure(scenarios, d, top))
        for direction in ("win", "loss")
    }
    for dimension in dimensions["dimension"].drop_duplicates():
        makers[str(dimension)] = lambda d=dimension: win_rate_figure(dimensions, d, overall)
    paths = {}
    for name, make in makers.items():
        figure = make()
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=90)
        plt.close(figure)  # one at a time: dozens of open figures cost memory and a warning
        paths[name] = f"figures/{path.name}"
    return paths


def _scenario_table(scenarios: pd.DataFrame, direction: str, top: int) -> Table:
    part = scenarios[scenarios["direction"] == direction].sort_values("rank").head(top)
    title = "Win scenarios: where we win" if direction == "win" else "Loss scenarios: where we lose"
    view = Table(title=title, show_lines=False)
    view.add_column("#", justify="right")
    view.add_column("scenario: win rate, closed deals, overall rate")
    view.add_column("its closest part", justify="left")
    row: Any  # a record of the scenarios table: its fields are the table's columns
    for row in part.itertuples(index=False):
        view.add_row(str(row.rank), row.sentence, f"{row.best_part}: {row.best_part_rate:.0%}")
    if part.empty:
        view.add_row("", f"no {direction} scenario passes the rules", "")
    return view
