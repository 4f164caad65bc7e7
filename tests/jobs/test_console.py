"""What a person sees in an 80-column terminal: whole figures and names, never cut with "…"."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from rich.console import Console

from winmodel.jobs.forecast import _forecast_table, _money
from winmodel.jobs.train import _print_summary
from winmodel.mlops.gate import GateDecision


def _render(renderable) -> str:
    console = Console(width=80, record=True, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_money_is_shown_in_three_figures():
    assert [_money(v) for v in (0, 950, 992_200, 14_889, 36_861_000, 264_930_000, 2.5e9)] == [
        "0",
        "950",
        "992 k",
        "14.9 k",
        "36.9 M",
        "265 M",
        "2.50 B",
    ]
    assert _money(float("nan")) == "—" and _money(-1_234_567) == "-1.23 M"


def test_the_forecast_table_fits_80_columns_without_cutting_a_figure():
    table = pd.DataFrame(
        {
            "period": ["2026-11", "2026-12", "total"],
            "deals": [2640, 890, 3530],
            "pipeline_amount": [264_930_123.0, 11_209_000.0, 276_139_123.0],
            "expected": [92_320_000.0, 4_039_000.0, 96_359_000.0],
            "p10": [70_160_000.0, 2_930_000.0, 73_090_000.0],
            "p50": [91_310_000.0, 4_003_000.0, 95_313_000.0],
            "p90": [116_450_000.0, 5_169_000.0, 121_619_000.0],
            "crm_weighted": [160_730_000.0, 2_741_000.0, 163_471_000.0],
        }
    )
    text = _render(_forecast_table(table, "month", Path("outputs/scored.csv")))
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "265 M" in text and "CRM stage-weighted" in text


def test_the_training_summary_fits_80_columns_without_cutting_a_name():
    metrics = pd.DataFrame(
        {
            "method": ["winmodel", "base_rate", "crm_stage_probability", "logistic_regression"],
            "roc_auc": [0.862, 0.5, 0.714, 0.873],
            "brier": [0.1359, 0.2224, 0.2440, 0.1327],
            "log_loss": [0.4241, 0.6372, 0.6809, 0.4191],
            "ece": [0.045, 0.047, 0.229, 0.067],
            "top_decile_lift": [2.84, 0.65, 1.53, 2.95],
        }
    )
    moments = pd.DataFrame(
        {
            "moment": ["all pre-close snapshots", "25 % of life", "last before close"],
            "deals": [1_204, 1_180, 1_204],
            "roc_auc": [0.872, 0.801, 0.903],
            "brier": [0.1372, 0.1731, 0.1190],
            "log_loss": [0.4322, 0.5210, 0.3801],
            "ece": [0.021, 0.034, 0.025],
        }
    )
    note = (
        "crm_stage_probability left out of the comparison: the export's CRM probability is its "
        "final state on closed deals (AUC 0.99 or more), not what a rep saw before the close"
    )
    console = Console(width=80, record=True, force_terminal=False, color_system=None)
    _print_summary(
        console,
        SimpleNamespace(
            holdout_metrics=metrics,
            holdout_by_moment=moments,
            baseline_notes=[note],
            oracle={"oracle_brier": 0.1201, "oracle_skill_share": 0.91},
        ),
        GateDecision(True, "no champion yet", {}, None),
        "1",
        "b0e770ee616f4b7eadb447b4c6b30463",
        "sqlite:///mlflow.db",
        40.0,
    )
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "crm_stage_probability" in text and "top 10 %" in text
    assert "last before close" in text and "not what a rep saw before the close" in " ".join(
        text.split()
    )
