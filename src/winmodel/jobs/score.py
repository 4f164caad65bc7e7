"""The scoring job: open deals -> scored file (atomically written) + a drift summary in MLflow.

The model comes from ``--model`` (any MLflow model URI or folder: you trust what
you load, MLflow models contain pickles), else ``models:/winmodel@champion`` in
the project's tracking store, else the exported ``models/champion/``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from winmodel.data.database import is_database_url, shown_url, split_table_url, write_database_table
from winmodel.data.dataset import load_crm_data
from winmodel.data.io import neutralise_spreadsheet_formulas, read_table, write_table_atomic
from winmodel.data.validate import implausible_amounts
from winmodel.engines.parallel import ChunkScorer, worker_count
from winmodel.errors import InputError, Problem
from winmodel.features.drift import drift_report
from winmodel.features.rows import open_deal_rows
from winmodel.mlops.registry import resolve_model
from winmodel.modeling.model import WinModel
from winmodel.scoring.decide import AMOUNT_FLAG, AMOUNT_LIMIT, pipeline_shares
from winmodel.scoring.horizons import NO_HORIZON_NOTE, quarter_reasons
from winmodel.scoring.reasons import Catalogue, load_catalogue
from winmodel.scoring.score import check_model_input, finish_scores, item_points, shap_table
from winmodel.settings import ScoreConfig, load_score_config
from winmodel.timing import NO_TIMER, Timer

log = logging.getLogger("winmodel")

DRIFT_SAMPLE = 200_000

#: "spark" scores on Apache Spark through winmodel.engines.spark (pip extra [spark], Java).
ENGINES = ("pandas", "spark")


@dataclass
class ScoreOutcome:
    """What a scoring run wrote (a file, or ``url#table`` with the password hidden) and measured."""

    output: str
    scored: pd.DataFrame
    skipped_closed: int
    model_version: str
    drift: dict[str, float]


def _log_drift(
    config: ScoreConfig,
    model_version: str,
    model_uri: str,
    summary: dict[str, float],
    table: pd.DataFrame,
    output: str,
    say: Callable[[str], None],
) -> None:
    """Record the scoring run and its drift figures in MLflow (linked to the model version)."""
    import mlflow

    try:
        mlflow.set_tracking_uri(config.tracking.resolved_tracking_uri())
        mlflow.set_experiment(f"{config.tracking.experiment}-scoring")
        with mlflow.start_run(run_name=f"score {pd.Timestamp.now():%Y-%m-%d %H:%M}"):
            mlflow.set_tags(
                {
                    "winmodel.model_version": model_version,
                    "winmodel.model_uri": model_uri,
                    "winmodel.output": str(output),
                }
            )
            mlflow.log_metrics(
                {f"drift.{k}": float(v) for k, v in summary.items() if np.isfinite(v)}
            )
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "drift.csv"
                table.to_csv(path, index=False)
                mlflow.log_artifact(str(path))
    except Exception as error:  # drift logging must never lose a finished scoring
        say(f"[yellow]warning[/yellow]: drift summary not logged to MLflow: {error}")


def flag_implausible_amounts(
    rows: pd.DataFrame, opportunities: pd.DataFrame, say: Callable[[str], None]
) -> pd.DataFrame:
    """Give the open deals' rows with ``amount_implausible`` and ``amount_limit`` (judged on the whole export)."""
    if "amount" not in opportunities or "amount" not in rows:
        return rows
    _, limit = implausible_amounts(opportunities["amount"])
    if limit is None:
        return rows
    amount = pd.to_numeric(rows["amount"], errors="coerce")
    flagged = (amount > limit).fillna(False).to_numpy(dtype=bool)
    if flagged.any():
        say(
            f"[yellow]warning[/yellow]: {int(flagged.sum()):,} open deal(s) have an amount above "
            f"{limit:,.0f} (10 x the export's 99.9th percentile), e.g. "
            + ", ".join(rows.loc[flagged, "opportunity_id"].astype(str).head(5))
            + ": flagged (amount_implausible), sent to check their amount, counted apart by the forecast"
        )
    columns: dict[str, np.ndarray] = {
        AMOUNT_FLAG: flagged,
        AMOUNT_LIMIT: np.full(len(rows), limit),
    }
    return rows.assign(**columns)


def _shares_table(shares: pd.DataFrame) -> Table:
    view = Table(title="Pipeline by recommendation (count and value shares)")
    for column in ("recommendation", "deals", "share of deals", "amount", "share of value"):
        view.add_column(column, justify="left" if column == "recommendation" else "right")
    for record in shares.to_dict("records"):
        view.add_row(
            str(record["recommendation"]),
            f"{int(record['deals']):,}",
            f"{float(record['deal_share']):.1%}",
            f"{float(record['amount']):,.0f}",
            f"{float(record['value_share']):.1%}",
        )
    return view


def _with_quarter_reasons(
    scored: pd.DataFrame,
    model: WinModel,
    rows: pd.DataFrame,
    catalogue: Catalogue,
    count: int,
    say: Callable[[str], None],
) -> pd.DataFrame:
    """Give the scored frame with ``reasons_not_this_quarter`` (blank, and said, without a horizon model)."""
    if model.horizon is None:
        say(f"[yellow]--horizon quarter[/yellow]: {NO_HORIZON_NOTE}")
        return scored.assign(reasons_not_this_quarter="")
    reasons = quarter_reasons(model, rows, catalogue, count)
    by_deal = pd.Series(reasons.to_numpy(), index=rows["opportunity_id"].astype("str").to_numpy())
    return scored.assign(
        reasons_not_this_quarter=scored["opportunity_id"].astype("str").map(by_deal).fillna("")
    )


def run_score(
    *,
    config_path: Path | None,
    input_path: Path | str | None,
    output: Path | str | None,
    model_uri: str | None = None,
    mapping: Path | None = None,
    previous: Path | None = None,
    shap_out: Path | None = None,
    console: Console | None = None,
    log_to_mlflow: bool = True,
    timer: Timer = NO_TIMER,
    engine: str = "pandas",
    horizon: str | None = None,
) -> ScoreOutcome:
    """Score every open deal of the input and write the result atomically; give what was done.

    ``engine`` "spark" scores the same rows with the same code on Spark (see :mod:`winmodel.engines.spark`).
    ``horizon`` "quarter" adds ``reasons_not_this_quarter`` (:func:`winmodel.scoring.horizons.quarter_reasons`).
    """
    console = console or Console(stderr=True)
    config = load_score_config(config_path) if config_path else ScoreConfig()
    started = time.monotonic()

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {message}")

    target = output if output is not None else config.output
    to_database = is_database_url(str(target))
    if to_database:
        split_table_url(str(target))  # a missing table name is found now, not after the scoring
    output = Path(target)
    if not to_database and output.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(
            Problem(
                file=str(output),
                column=None,
                problem="unknown output format",
                fix="name the output file .csv or .parquet",
            )
        )
    if engine not in ENGINES:
        raise InputError(
            Problem(
                file="--engine",
                column=None,
                problem=f"unknown engine {engine!r}",
                fix="use " + " or ".join(ENGINES),
            )
        )
    if engine == "spark":
        from winmodel.engines.spark import require_spark

        require_spark()  # before the data is read: a missing Java is found in a second, not a minute
    catalogue = load_catalogue(config.language)
    location = config.data.location(input_path)
    source_name = str(location) if isinstance(location, Path) else location.shown()
    crm = load_crm_data(location, mapping or config.data.mapping, timer=timer)
    with timer.stage("read"):
        previous_frame = read_table(previous) if previous else None
    if previous_frame is not None and not {"opportunity_id", "score"} <= set(
        previous_frame.columns
    ):
        raise InputError(
            Problem(
                file=str(previous),
                column="opportunity_id, score",
                problem="the previous scored file lacks opportunity_id or score",
                fix="pass a file written by `winmodel score`",
            )
        )
    with timer.stage("load_model"):
        model, version, used_uri = resolve_model(model_uri or config.model_uri, config)
    say(f"model: version {version} ({used_uri})")
    if model.horizon is None:
        say(f"[yellow]note[/yellow]: {NO_HORIZON_NOTE}")

    # Worker processes (large inputs only) start now and load while the rows are prepared.
    open_deals = int(crm.opportunities["status"].eq("open").sum())
    workers = worker_count(config, open_deals) if engine == "pandas" else 1
    with ChunkScorer(model, config, catalogue, version, workers) as scorer:
        with timer.stage("features"):
            rows, skipped = open_deal_rows(crm)
        say(
            f"scoring {len(rows):,} open deals ({skipped:,} closed deals skipped)"
            + (f" in {workers} processes" if workers > 1 else "")
        )
        check_model_input(model, rows, crm.files.get("opportunities", source_name))
        rows = flag_implausible_amounts(rows, crm.opportunities, say)
        del crm  # the point-in-time rows hold all scoring needs; free the export before scoring
        if engine == "spark":
            from winmodel.engines.spark import score_rows_on_spark

            scored = score_rows_on_spark(rows, model, config, version, previous_frame, timer=timer)
        else:
            scored = finish_scores(scorer.score(rows, timer), previous_frame)

    if horizon == "quarter":
        scored = _with_quarter_reasons(scored, model, rows, catalogue, config.reasons_per_side, say)

    with timer.stage("drift"):
        # Shares of a feature's bins are measured on at most DRIFT_SAMPLE evenly spaced deals.
        sample = rows.iloc[:: max(1, len(rows) // DRIFT_SAMPLE)]
        drift_table, drift_summary = drift_report(
            model.reference,
            model.feature_builder,
            model.matrix(sample),
            sample,
            scored["win_probability"].to_numpy(),
        )
        drift_summary["deals"] = float(len(rows))
    say(
        f"drift: max PSI {drift_summary['max_psi']:.3f} "
        f"({int(drift_summary['features_psi_over_0_25'])} features above 0.25), unseen categories up to "
        f"{drift_summary['unseen_category_share']:.1%}, mean predicted {drift_summary['mean_predicted']:.1%} "
        f"vs training base rate {drift_summary['training_base_rate']:.1%}"
    )

    with timer.stage("write"):
        if to_database:
            write_database_table(scored, str(target))
            shown_output = shown_url(str(target))
        else:
            to_write = (
                neutralise_spreadsheet_formulas(scored)
                if output.suffix.lower() == ".csv"
                else scored
            )
            write_table_atomic(to_write, output)
            shown_output = str(output)
    if shap_out is not None:
        table = shap_table(model, rows).merge(item_points(model, rows), on="opportunity_id")
        write_table_atomic(table, Path(shap_out))
    if log_to_mlflow:
        _log_drift(config, version, used_uri, drift_summary, drift_table, shown_output, say)
    say(f"wrote {len(scored):,} scored deals to {shown_output}")
    console.print(_shares_table(pipeline_shares(scored)))
    return ScoreOutcome(shown_output, scored, skipped, version, drift_summary)
