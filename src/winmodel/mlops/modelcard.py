"""The model card: what a model was trained on, how good it is against the baselines, and its limits."""

from __future__ import annotations

from typing import Any

import pandas as pd

from winmodel.modeling.train import TrainingResult

LIMITS = """\
- Probabilities are learned from this company's own closed deals; they describe what
  happened to deals like this one, not what will happen to it. Read them as odds, not promises.
- The next best milestone is an association learned from past deals: completing it is
  associated with a higher win rate; it is not proven to cause one.
- Deals unlike any in the training window (new segments, products or competitors) get
  weaker scores; the scoring output flags unseen values per deal in `data_warnings`.
- The newest months are held out for testing and calibration, so the booster has not seen
  them; very recent shifts reach the scores through calibration only.
- Activity volume (calls, emails, meetings) is kept as a feature on purpose: its low
  importance shows that activity is not progress.
"""


def _table(frame: pd.DataFrame, columns: list[str], digits: int = 3) -> str:
    if frame.empty:
        return "(none)"
    shown = frame[columns].copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda value: f"{value:.{digits}f}")
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def render_model_card(
    result: TrainingResult, *, facts: dict[str, Any], gate: str | None = None
) -> str:
    """Give the model card as Markdown."""
    metadata = result.model.metadata
    metrics = _table(
        result.holdout_metrics,
        ["method", "roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift", "deals"],
    )
    stage = _table(
        result.holdout_by_stage,
        [
            c
            for c in ("stage", "roc_auc", "brier", "ece", "deals", "win_rate")
            if c in result.holdout_by_stage
        ],
    )
    oracle = ""
    if result.oracle:
        oracle = (
            f"\nOn synthetic data the truth is known: the oracle's Brier on the holdout's last "
            f"pre-close snapshots is {result.oracle['oracle_brier']:.4f}; the model reaches "
            f"{result.oracle['oracle_skill_share']:.1%} of the oracle's skill over the base rate.\n"
        )
    excluded = ", ".join(result.leakage.excluded) or "none"
    lines = [
        f"# winmodel model card{(' — version ' + str(facts['version'])) if facts.get('version') else ''}",
        "",
        "## Data",
        f"- Source: `{facts.get('source', '?')}` (mapping: `{facts.get('mapping') or 'none'}`)",
        f"- Closed deals used: {facts.get('closed_deals', '?')} "
        f"({facts.get('won', '?')} won, {facts.get('lost', '?')} lost); data as of {facts.get('as_of', '?')}",
        f"- Snapshots: {'yes, point-in-time rows' if facts.get('has_snapshots') else 'no (flat export: progress fields may be final-state)'}",
        f"- Booster trained on deals closed before {metadata['trained_on_closes_before']} "
        f"(maturity cut-off {metadata['maturity_days']} days: {metadata['training_deals']} deals, "
        f"{metadata['training_rows']} rows)",
        f"- Early stopping and {metadata['calibration']} calibration: closes {metadata['validation_window']}"
        + (
            " (then the booster was refitted on train + validation with the calibration kept)"
            if metadata.get("refit_with_validation")
            else ""
        ),
        f"- Holdout (test and promotion gate): closes {metadata['holdout_window']}",
        "",
        "## Model",
        f"- LightGBM, {metadata['trees']} trees, shape {metadata['shape']}",
        f"- {len(metadata['features'])} features; excluded by the leakage guard: {excluded}",
        f"- Forecast range: {metadata['forecast_shift']['description']}"
        if "forecast_shift" in metadata
        else "- Forecast range: shared shift not measured (deals treated as independent)",
        "",
        "## Holdout: last pre-close snapshot of each deal, against the baselines",
        metrics,
        oracle,
        "## Holdout by stage (all pre-close snapshots, weighted)",
        stage,
        "",
        "## Promotion",
        gate or "(not decided)",
        "",
        "## Known limits",
        LIMITS,
    ]
    if result.warnings:
        lines += ["## Warnings from this training", *[f"- {w}" for w in result.warnings], ""]
    return "\n".join(lines)
