"""The model card: what a model was trained on, how good it is against the baselines, and its limits."""

from __future__ import annotations

from typing import Any

import pandas as pd

from winmodel.modeling.segment_shift import SegmentShift
from winmodel.modeling.train import TrainingResult, describe_shape
from winmodel.settings import ShapeCandidate

LIMITS = """\
- Probabilities are learned from this company's own closed deals; they describe what
  happened to deals like this one, not what will happen to it. Read them as odds, not promises.
- The next best milestone is an association learned from past deals: completing it is
  associated with a higher win rate; it is not proven to cause one.
- Deals unlike any in the training window (new segments, products or competitors) get
  weaker scores; the scoring output flags unseen values per deal in `data_warnings`.
- The booster learns the newest months' mature deals (it is refitted on every closed deal), but
  deals created in them are too young to be in its training: a segment whose win rate moved
  lately is shifted only when the newest deals show it beyond chance (see Segment shifts), and a
  shift moves the segment's older open deals too.
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


#: Beside the holdout table when the HistGB peer was fitted (``splits.peers``).
PEER_PARAGRAPH = [
    "`hist_gradient_boosting_defaults` is scikit-learn's HistGradientBoostingClassifier with its",
    "defaults on the same features and deals: where winmodel does not beat it, its complexity",
    "is not earning its keep on this data.",
]


def render_model_card(
    result: TrainingResult, *, facts: dict[str, Any], gate: str | None = None
) -> str:
    """Give the model card as Markdown."""
    metadata = result.model.metadata
    shape = metadata.get("shape") or {}
    logistic = shape.get("family") == "logistic"
    # The booster's trees: those learned, then one per segment shift (named apart).
    shift_trees = len(metadata.get("segment_shifts", []))
    trees = (
        f"{metadata['trees'] - shift_trees} (+ {shift_trees} segment-shift)"
        if shift_trees
        else f"{metadata['trees']}"
    )
    peer_fitted = "hist_gradient_boosting_defaults" in set(
        result.holdout_metrics.get("method", pd.Series(dtype="str"))
    )
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
    final_state = [f.feature for f in result.leakage.findings if f.check == "final_state"]
    excluded = ", ".join(f for f in result.leakage.excluded if f not in final_state) or "none"
    final_excluded = ", ".join(metadata.get("final_state_excluded", [])) or "none"
    final_allowed = ", ".join(metadata.get("final_state_allowed", [])) or "none"
    moments = _table(
        result.holdout_by_moment,
        [
            c
            for c in ("moment", "deals", "roc_auc", "brier", "log_loss", "ece")
            if c in result.holdout_by_moment
        ],
    )
    notes = "".join(f"\n- {note}" for note in result.baseline_notes)
    lines = [
        f"# winmodel model card{(' — version ' + str(facts['version'])) if facts.get('version') else ''}",
        "",
        "## Data",
        f"- Source: `{facts.get('source', '?')}` (mapping: `{facts.get('mapping') or 'none'}`)",
        f"- Closed deals used: {facts.get('closed_deals', '?')} "
        f"({facts.get('won', '?')} won, {facts.get('lost', '?')} lost); data as of {facts.get('as_of', '?')}",
        f"- Snapshots: {facts.get('snapshot_source') or 'none (a flat export: a closed deal is known only at close)'}",
        f"- Booster trained on deals closed before {metadata['trained_on_closes_before']} "
        f"(maturity cut-off {metadata['maturity_days']} days: {metadata['training_deals']} deals, "
        f"{metadata['training_rows']} rows)",
        (
            f"- {metadata['calibration'].capitalize()} calibration"
            if logistic
            else f"- Early stopping and {metadata['calibration']} calibration"
        )
        + f": closes {metadata['validation_window']}"
        + (
            " (then the booster was refitted on train + validation with the calibration kept)"
            if metadata.get("refit_with_validation")
            else ""
        ),
        f"- Holdout (test and promotion gate): closes {metadata['holdout_window']}",
        *(
            [
                "- After the holdout judged it, the booster was refitted on every closed deal "
                f"before {metadata['training_cutoff']} (holdout months included), calibrated on "
                "the backtest's and holdout's out-of-fold scores"
            ]
            if metadata.get("refit_on_all_closed")
            else []
        ),
        "",
        "## Label drift (newest six months against before)",
        *(
            [f"- {line}" for line in metadata.get("drifted_segments", [])]
            or ["- no segment's win rate moved beyond its 95 % interval"]
        ),
        "",
        "## Segment shifts (the newest months' deals against the model's probabilities)",
        *(
            [
                f"- {SegmentShift.from_dict(shift).describe()}"
                for shift in metadata.get("segment_shifts", [])
            ]
            or ["- none: no segment's newest deals won more or less than predicted beyond chance"]
        ),
        "",
        "## Model",
        (
            f"- A penalised logistic regression (L2 {shape.get('lambda_l2')}: one-hot categories, "
            f"scaled numbers) distilled into {trees} LightGBM stumps, shape {shape}"
            if logistic
            else f"- A blend, {describe_shape(ShapeCandidate(**shape))} of the log-odds: LightGBM "
            "trees and a penalised logistic regression distilled into stumps (the search judged "
            f"it better than either alone), shipped as one booster of {trees} trees, "
            f"shape {shape}"
            if shape.get("blend_with")
            else f"- LightGBM, {trees} trees, shape {shape}"
        ),
        f"- {len(metadata['features'])} features; excluded by the leakage guard: {excluded}",
        f"- Left out as final state (mutable, known only as it stood at close): {final_excluded}; "
        f"allowed by the config anyway: {final_allowed}",
        f"- Forecast range: {metadata['forecast_shift']['description']}"
        if "forecast_shift" in metadata
        else "- Forecast range: shared shift not measured (deals treated as independent)",
        "",
        "## Holdout against the baselines: every pre-close snapshot, each deal weighing one",
        "",
        "What a scorer sees: deals at every moment of their lives, not only just before they close.",
        *(PEER_PARAGRAPH if peer_fitted else []),
        "",
        metrics,
        notes,
        "",
        "## winmodel through the deals' lives (holdout)",
        "",
        "The snapshot nearest 25 %, 50 % and 75 % of each deal's life (created to close), and the",
        "last one before close (the easiest moment).",
        "",
        moments,
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
