"""The report job: a scored file -> the offline pipeline review page (one self-contained HTML file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from winmodel.analysis.forecast import forecast_by_period
from winmodel.analysis.report import render_report
from winmodel.data.io import read_table, write_text_atomic
from winmodel.errors import InputError, Problem
from winmodel.jobs.forecast import _train_config, read_forecast_band, split_flagged

NEEDED = ("opportunity_id", "win_probability", "band", "recommendation")
NUMBERS = (
    "amount",
    "win_probability",
    "expected_margin",
    "expected_value",
    "next_best_milestone_uplift",
    "crm_probability",
)


@dataclass
class ReportOutcome:
    """Where the page was written and how many deals it shows."""

    output: Path
    deals: int


def read_scored_for_report(path: Path) -> pd.DataFrame:
    """Give a scored file with its numbers and flags typed (raises InputError when it is not one)."""
    scored = read_table(Path(path))
    missing = [column for column in NEEDED if column not in scored]
    if missing:
        raise InputError(
            Problem(
                file=str(path),
                column=", ".join(missing),
                problem="the file lacks columns of a scored pipeline",
                fix="pass a file written by `winmodel score` (make score writes outputs/scored.csv)",
            )
        )
    typed = {
        name: pd.to_numeric(scored[name], errors="coerce") for name in NUMBERS if name in scored
    }
    if "amount_implausible" in scored:
        typed["amount_implausible"] = (
            scored["amount_implausible"].astype("str").str.lower().isin(["true", "1"])
        )
    return scored.assign(**typed)


def run_report(
    input_path: Path,
    out: Path,
    *,
    model_dir: Path | None = None,
    console: Console | None = None,
) -> ReportOutcome:
    """Write the pipeline review page of a scored file to ``out``; give where and how many deals."""
    console = console or Console()
    scored = read_scored_for_report(Path(input_path))
    folder = Path(model_dir) if model_dir else _train_config(None).tracking.export_dir
    band = read_forecast_band(folder)
    sigma = float(band["sigma"]) if band else 0.0
    usable, flagged = split_flagged(scored)
    forecastable = usable.assign(close_date=pd.to_datetime(usable["close_date"], errors="coerce"))
    forecast = forecast_by_period(
        forecastable.dropna(subset=["amount", "close_date", "win_probability"]),
        shift_sigma=sigma,
        seed=42,
    )
    notes = []
    if len(flagged):
        notes.append(
            f"{len(flagged):,} deal(s) with an implausible amount are left out of the forecast: "
            + ", ".join(
                f"{row.opportunity_id} ({row.amount:,.0f})"
                for row in flagged.head(5).itertuples(index=False)
            )
        )
    if band is None:
        notes.append(
            "No measured forecast band beside the model: the range treats deals as independent "
            "(too narrow); retrain with `make train`."
        )
    versions = (
        sorted(scored["model_version"].dropna().astype(str).unique())
        if "model_version" in scored
        else []
    )
    as_of = str(scored["as_of_date"].dropna().astype(str).max()) if "as_of_date" in scored else ""
    subtitle = (
        f"{len(scored):,} open deals"
        + (f" as of {as_of}" if as_of else "")
        + (f" · model version {', '.join(versions)}" if versions else "")
    )
    page = render_report(scored, forecast, subtitle=subtitle, notes=tuple(notes))
    write_text_atomic(page, Path(out))
    console.print(f"wrote {out}: {len(scored):,} deals ({len(page) / 1e6:.1f} MB, opens offline)")
    return ReportOutcome(Path(out), len(scored))
