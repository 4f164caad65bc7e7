"""A typed 2,000,000,000 is flagged at scoring, sent to be checked, and counted apart by the forecast."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from winmodel.jobs.forecast import run_forecast
from winmodel.jobs.score import run_score


def test_an_implausible_amount_is_flagged_checked_and_left_out_of_the_forecast(
    trained_project, small_history, tmp_path
):
    data = tmp_path / "data"
    data.mkdir()
    opportunities = small_history.opportunities.copy()
    snapshots = small_history.snapshots.copy()
    deal = opportunities.loc[opportunities["status"] == "open", "opportunity_id"].iloc[3]
    opportunities.loc[opportunities["opportunity_id"] == deal, "amount"] = 2_000_000_000.0
    snapshots.loc[snapshots["opportunity_id"] == deal, "amount"] = 2_000_000_000.0
    opportunities.to_parquet(data / "opportunities.parquet")
    snapshots.to_parquet(data / "snapshots.parquet")

    console = Console(record=True, width=200)
    outcome = run_score(
        config_path=None,
        input_path=data,
        output=tmp_path / "scored.csv",
        model_uri=str(trained_project.export_dir),
        console=console,
        log_to_mlflow=False,
    )
    printed = console.export_text()
    assert "share of deals" in printed and "share of value" in printed
    assert f"e.g. {deal}" in printed.replace("\n", " ")
    scored = outcome.scored.set_index("opportunity_id")
    assert bool(scored.loc[deal, "amount_implausible"])
    assert scored.loc[deal, "decision_rule"] == "qualify.check_amount"
    assert "2,000,000,000" in scored.loc[deal, "recommendation_reason"]
    assert int(scored["amount_implausible"].sum()) == 1

    forecast_console = Console(record=True, width=200)
    result = run_forecast(
        tmp_path / "scored.csv", model_dir=trained_project.export_dir, console=forecast_console
    )
    total = result.table.set_index("period").loc["total"]
    assert total["deals"] == len(scored) - 1
    assert total["pipeline_amount"] < 2_000_000_000
    assert total["p10"] <= total["expected"] <= total["p90"]
    text = forecast_console.export_text().replace("\n", " ")
    assert "1 deal(s) with an implausible amount" in text and deal in text
    assert pd.notna(total["expected"])
