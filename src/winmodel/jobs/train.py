"""The training job: data -> point-in-time rows -> model -> MLflow run -> registry -> gate -> export.

Order matters for safety. Nothing is registered and no alias moves until the
data validated, the leakage guard ran, the model trained, the backtest and the
holdout evaluation finished and every artefact was logged. The champion alias
moves last, and only when the gate says so. A second training started while
one runs stops at once with a clear message (a file lock).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from rich.console import Console
from rich.table import Table

from winmodel.analysis.forecast import FORECAST_BAND_FILE, SharedShift, forecast_band_json
from winmodel.analysis.replay import measure_shared_shift
from winmodel.data.dataset import CRMData, data_digest, data_identity, load_crm_data
from winmodel.errors import GateError, InputError, Problem, WinmodelError
from winmodel.features.rows import (
    AS_OF,
    add_history_features,
    build_training_rows,
    final_state_columns,
)
from winmodel.mlops.export import VERSION_FILE, exported_version
from winmodel.mlops.modelcard import render_model_card
from winmodel.modeling.evaluate import HEADLINE, classification_metrics
from winmodel.modeling.train import Progress, TrainingResult, check_sufficiency, train_win_model
from winmodel.paths import DEMO_DATA_DIR
from winmodel.settings import TrainConfig, load_train_config

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.types import Schema

    from winmodel.mlops.gate import GateDecision

log = logging.getLogger("winmodel")

LOCK_FILE = ".winmodel.lock"


class TrainingBusy(WinmodelError):
    """Raised when another training holds the lock."""


class TrainingInterrupted(WinmodelError):
    """Raised for Ctrl-C during a training: says whether the champion moved (exit code 130)."""

    exit_code = 130


@dataclass
class TrainOutcome:
    """What the job did: the run, the registered version and the gate's decision."""

    run_id: str
    version: str | None
    promoted: bool
    reason: str
    result: TrainingResult
    export_dir: Path | None


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in ("winmodel", "lightgbm", "scikit-learn", "pandas", "numpy", "mlflow", "shap"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def ensure_data(config: TrainConfig, data_path: Path, mapping: Path | None, say: Progress) -> None:
    """Generate the demo history into ``data_path`` when it is the demo folder and missing; else refuse a missing path.

    Only the demo folder (``data/demo``, no mapping, ``generate_demo_if_missing``) is ever filled
    with generated data: a mistyped or unmounted path must not train on synthetic deals. Demo data
    written by an older generator (its GENERATOR_VERSION stamp differs, and the folder holds the
    generator's truth file) is regenerated: its shape may no longer be what training expects.
    """
    from winmodel.jobs.generate import VERSION_STAMP, run_generate
    from winmodel.synth.generator import GENERATOR_VERSION

    is_demo = data_path.resolve() == DEMO_DATA_DIR.resolve() and mapping is None
    generates = is_demo and config.data.generate_demo_if_missing
    if not data_path.exists() and not generates:
        raise InputError(
            Problem(
                file=str(data_path),
                column=None,
                problem="the data path does not exist"
                + (
                    " (a mounted drive or share that is not mounted?)"
                    if data_path.is_absolute()
                    else ""
                ),
                fix="check the path in data.path or --data; only the demo folder data/demo (no mapping) "
                "is generated when missing",
            )
        )
    if not generates:
        return
    demo = config.data.demo
    if data_path.exists():
        stamp = data_path / VERSION_STAMP
        written = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else "1"
        generated = any((data_path / f"truth.{suffix}").is_file() for suffix in ("parquet", "csv"))
        if not generated or written == str(GENERATOR_VERSION):
            return
        say(
            f"the demo data in {data_path} was written by an older winmodel (generator version "
            f"{written}, now {GENERATOR_VERSION}): regenerating it"
        )
    else:
        say(
            f"no data at {data_path}: generating the demo CRM history ({demo.deals:,} deals, "
            f"seed {demo.seed})"
        )
    run_generate(
        out=data_path,
        deals=demo.deals,
        seed=demo.seed,
        months=demo.months,
        today=None,
        file_format="parquet",
    )


def _oracle(data_path: Path) -> pd.Series | None:
    """Give the generator's true probabilities when the data folder has a truth file (synthetic data)."""
    folder = data_path if data_path.is_dir() else data_path.parent
    for name in ("truth.parquet", "truth.csv"):
        file = folder / name
        if file.exists():
            truth = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
            return truth.set_index("opportunity_id")["true_probability"]
    return None


def dataset_schema(frame: pd.DataFrame, head: int = 1000) -> Schema | None:
    """Give the MLflow schema of ``frame`` as the logged dataset records it, from a sample of rows.

    MLflow infers a dataset's schema value by value (3.7 s on 20,000 deals, most of a small
    training's logging). A typed column's type shows in any of its values, and a column is
    *required* unless a value is blank, so the sample is the first ``head`` rows plus, per
    column, its first value and its first blank: the schema is the full frame's. None where a
    sample could differ (an ``object`` column may mix types; an empty frame) or inference fails:
    the caller then leaves it to MLflow, as before.
    """
    from mlflow.types.utils import _infer_schema  # what mlflow's PandasDataset.schema calls

    if frame.empty or any(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes):
        return None
    blank = frame.isna().to_numpy()
    firsts = [marks.argmax(axis=0)[marks.any(axis=0)] for marks in (blank, ~blank)]
    rows = np.union1d(np.arange(min(head, len(frame))), np.concatenate(firsts))
    try:
        schema: Schema = _infer_schema(frame.iloc[rows])
    except Exception:  # mlflow's own inference gives no schema then either
        return None
    return schema


def _flatten(prefix: str, value: object, out: dict[str, str]) -> dict[str, str]:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = str(value)[:500]
    return out


def _champion_metrics(
    client: MlflowClient,
    config: TrainConfig,
    result: TrainingResult,
    rows: pd.DataFrame,
    say: Progress,
) -> tuple[dict[str, float] | None, str | None, dict[str, float] | None]:
    """Give the champion's metrics on the challenger's holdout deals it never saw, and its version.

    Only holdout deals closed on or after the champion's training cut-off (``training_cutoff``,
    else ``trained_on_closes_before`` for older models) are compared: a champion refitted on every
    closed deal has seen the others. The third value is the challenger's metrics on those same
    rows (None when every holdout deal is compared). With fewer than ``gate.min_unseen_deals``
    such deals the champion's metrics say ``too_few_unseen`` and the gate decides on the backtest.
    """
    from winmodel.mlops.registry import CHAMPION, alias_version, load_win_model

    name = config.tracking.registered_model
    champion_version = alias_version(client, name, CHAMPION)
    if champion_version is None:
        return None, None, None
    # The same rows and weights as the challenger's headline: every pre-close row, each deal one.
    holdout = result.holdout_predictions
    keys = rows.set_index(["opportunity_id", AS_OF])
    holdout_rows = keys.loc[
        list(zip(holdout["opportunity_id"], holdout[AS_OF], strict=True))
    ].reset_index()
    try:
        champion = load_win_model(f"models:/{name}@{CHAMPION}")
        probability = champion.predict_proba(holdout_rows)
    except Exception as error:  # an older model may not read today's data
        say(f"the champion (version {champion_version}) cannot score this data: {error}")
        return {"brier": float("inf"), "roc_auc": 0.0, "unusable": 1.0}, champion_version, None
    cutoff = champion.metadata.get("training_cutoff") or champion.metadata.get(
        "trained_on_closes_before"
    )
    unseen = (
        (holdout["close_date"] >= pd.Timestamp(cutoff)).to_numpy()
        if cutoff
        else np.ones(len(holdout), dtype=bool)
    )
    unseen_deals = int(holdout.loc[unseen, "opportunity_id"].nunique())
    if unseen_deals < config.gate.min_unseen_deals:
        say(
            f"only {unseen_deals} holdout deals closed after the champion's training cut-off "
            f"({cutoff}): too few to compare the two, the gate decides on the backtest"
        )
        recorded = champion.metadata.get("backtest_log_loss") or {}
        few = {"too_few_unseen": 1.0, "unseen_deals": float(unseen_deals)}
        if "winmodel" in recorded and "base_rate" in recorded:
            few["backtest_log_loss"] = float(recorded["winmodel"])
            few["backtest_base_rate_log_loss"] = float(recorded["base_rate"])
        return few, champion_version, None
    won = holdout["won"].to_numpy()[unseen]
    weight = holdout["evaluation_weight"].to_numpy()[unseen]
    metrics = classification_metrics(won, probability[unseen], weight)
    metrics["unseen_deals"] = float(unseen_deals)
    if unseen.all():
        return metrics, champion_version, None
    say(
        f"champion and challenger compared on the {unseen_deals} holdout deals the champion never saw"
    )
    challenger = classification_metrics(won, holdout["win_probability"].to_numpy()[unseen], weight)
    return metrics, champion_version, challenger


def _log_figures(result: TrainingResult, rows: pd.DataFrame) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    from winmodel.analysis.plots import (
        backtest_figure,
        importance_figure,
        reliability_figure,
        shap_summary_figure,
    )

    figures = {
        "reliability.png": reliability_figure(
            {
                "before calibration": result.reliability_before,
                "after calibration": result.reliability_after,
            },
            "Reliability on holdout (last pre-close snapshots)",
        ),
        "feature_importance.png": importance_figure(result.feature_importance),
        "backtest_brier.png": backtest_figure(result.backtest, "brier"),
    }
    model = result.model
    holdout = result.holdout_predictions
    sample = holdout[holdout["is_last_before_close"]].head(2000)
    keys = rows.set_index(["opportunity_id", AS_OF])
    sample_rows = keys.loc[
        list(zip(sample["opportunity_id"], sample[AS_OF], strict=True))
    ].reset_index()
    matrix = model.matrix(sample_rows)
    contributions = model.contributions(matrix)[:, :-1]
    figures["shap_summary.png"] = shap_summary_figure(contributions, matrix, model.feature_names)
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plt.close(figure)


def _log_tables(result: TrainingResult, data: CRMData) -> None:
    import mlflow

    from winmodel.analysis.profile import profile_artifacts

    dimensions, scenarios, profile_report = profile_artifacts(data.opportunities)
    tables = {
        "backtest.csv": result.backtest,
        "search.csv": result.search,
        "leakage_report.csv": result.leakage.to_frame(),
        "feature_importance.csv": result.feature_importance,
        "holdout_by_stage.csv": result.holdout_by_stage,
        "holdout_by_segment.csv": result.holdout_by_segment,
        "reliability_before.csv": result.reliability_before,
        "reliability_after.csv": result.reliability_after,
        "win_rate_by_dimension.csv": dimensions,
        "scenarios.csv": scenarios,
        "holdout_predictions.csv": result.holdout_predictions,
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, table in tables.items():
            path = Path(folder) / name
            table.to_csv(path, index=False)
            mlflow.log_artifact(str(path), "tables")
    mlflow.log_text(result.leakage.render(), "leakage_report.txt")
    mlflow.log_text(profile_report, "profile.md")


def run_train(
    config_path: Path,
    *,
    data: Path | str | None = None,
    mapping: Path | None = None,
    model_name: str | None = None,
    console: Console | None = None,
) -> TrainOutcome:
    """Run the training job declared in ``config_path``; give what it did.

    ``model_name`` registers the model under another name (its champion exported to
    ``models/<name>``) than the config's ``tracking.registered_model``.
    Raises InputError for bad data or config, GateError when the data is too thin or the
    champion was trained on other data, TrainingBusy when another training holds the lock.
    """
    console = console or Console(stderr=True)
    config = load_train_config(config_path)
    if model_name is not None:
        try:
            tracking = config.tracking.for_model(model_name)
        except ValueError:
            raise InputError(
                Problem(
                    file="--model-name",
                    column=None,
                    problem=f"{model_name!r} cannot be a registered model name",
                    fix="use letters, digits, '-', '_' and '.', starting with a letter or digit",
                )
            ) from None
        config = config.model_copy(update={"tracking": tracking})
    lock_path = Path(config.tracking.export_dir).parent / LOCK_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=0)
    owner_file = lock_path.with_name(lock_path.name + ".owner")
    try:
        lock.acquire()
    except Timeout:
        raise TrainingBusy(
            f"another training is running for this project: {_lock_owner(owner_file)} holds "
            f"{lock_path}. Wait for it to finish, or stop that process; the lock is released by the "
            "system when its process ends, so there is nothing to delete."
        ) from None
    try:
        owner_file.write_text(
            f"process {os.getpid()} (winmodel train --config {config_path}, started "
            f"{pd.Timestamp.now():%Y-%m-%d %H:%M:%S})",
            encoding="utf-8",
        )
        promoted: list[str] = []  # the version, once the champion alias and its export have moved
        return _run_train_locked(
            config, config_path, data=data, mapping=mapping, console=console, promoted=promoted
        )
    except KeyboardInterrupt:
        name = config.tracking.registered_model
        raise TrainingInterrupted(
            f"interrupted — {name}@champion is now version {promoted[0]} (the promotion had finished)"
            if promoted
            else "interrupted — champion unchanged"
        ) from None
    finally:
        owner_file.unlink(missing_ok=True)
        lock.release()


def _lock_owner(owner_file: Path) -> str:
    """Give who holds the training lock, as its holder wrote it (process id, config, start time)."""
    try:
        return owner_file.read_text(encoding="utf-8").strip() or "a process"
    except OSError:
        return "a process that has not written its name yet"


def _run_train_locked(
    config: TrainConfig,
    config_path: Path,
    *,
    data: Path | str | None,
    mapping: Path | None,
    console: Console,
    promoted: list[str],
) -> TrainOutcome:
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas  # mlflow.data.from_pandas, typed
    from mlflow.tracking import MlflowClient

    from winmodel.mlops import export, gate, registry

    started = time.monotonic()

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {message}")

    location = config.data.location(data)
    mapping_path = mapping or config.data.mapping
    if isinstance(location, Path):
        ensure_data(config, location, mapping_path, say)
    source_name = str(location) if isinstance(location, Path) else location.shown()
    with console.status("reading and validating the data"):
        crm = load_crm_data(location, mapping_path)
    for problem in crm.report.warnings:
        say(f"[yellow]warning[/yellow]: {problem.file}: {problem.column or ''} {problem.problem}")
    closed = crm.opportunities["status"].isin(["won", "lost"])
    won = int(crm.opportunities["status"].eq("won").sum())
    lost = int(crm.opportunities["status"].eq("lost").sum())
    say(
        f"data: {len(crm.opportunities):,} deals ({won:,} won, {lost:,} lost, {int((~closed).sum()):,} open), "
        f"{0 if crm.snapshots is None else len(crm.snapshots):,} snapshots, as of {crm.as_of:%Y-%m-%d}"
    )

    with console.status("building point-in-time rows"):
        rows, shape_warnings = build_training_rows(crm, config)
    for warning in shape_warnings:
        say(f"[yellow]warning[/yellow]: {warning}")
    say(f"training rows: {len(rows):,} rows of {rows['opportunity_id'].nunique():,} closed deals")

    # Thin data stops here, before an MLflow run is opened (the same check runs again in training).
    last_rows = rows[rows["is_last_before_close"]]
    for warning in check_sufficiency(
        int(last_rows["status"].eq("won").sum()),
        int(last_rows["status"].eq("lost").sum()),
        minimum=config.training.min_deals_per_class,
        comfortable=config.training.warn_deals_per_class,
        file=crm.files.get("opportunities", source_name),
    ):
        say(f"[yellow]warning[/yellow]: {warning}")

    tracking_uri = config.tracking.resolved_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    identity = data_identity(crm)
    champion_digest = _refuse_a_champion_of_other_data(MlflowClient(), config, identity)
    mlflow.set_experiment(config.tracking.experiment)
    extra = [(feature.name, feature.kind) for feature in crm.extra_features]
    oracle = _oracle(location) if isinstance(location, Path) else None

    with mlflow.start_run(run_name=f"{config.name} {pd.Timestamp.now():%Y-%m-%d %H:%M}") as run:
        mlflow.set_tags(
            {
                "winmodel.config_path": str(config_path),
                "winmodel.config_digest": config.digest(),
                "winmodel.data_digest": data_digest(crm),
                # Lineage: the data the champion this run is compared with was trained on.
                "winmodel.champion_data_digest": champion_digest or "none",
                **{f"winmodel.identity.{key}": value for key, value in identity.items()},
                "winmodel.git_commit": _git_commit(),
                **{f"version.{name}": value for name, value in _package_versions().items()},
            }
        )
        mlflow.log_params(_flatten("", config.model_dump(mode="json"), {}))
        mlflow.log_params({"data.path_used": source_name, "data.mapping_used": str(mapping_path)})
        dataset = from_pandas(
            crm.opportunities,
            # A database URL has no MLflow source type: it is recorded as a tag of a code source.
            source=source_name
            if isinstance(location, Path)
            else CodeDatasetSource(tags={"winmodel.database": source_name}),
            targets="status",
            name="opportunities",
            digest=data_digest(crm),
        )
        schema = dataset_schema(crm.opportunities)
        if schema is not None:
            dataset.__dict__["schema"] = schema  # primes mlflow's cached property
        mlflow.log_input(dataset, context="training")

        with console.status("training (leakage guard, search, backtest, calibration)"):
            result = train_win_model(
                rows,
                config,
                extra_features=extra,
                oracle_probability=oracle,
                progress=say,
                file=crm.files.get("opportunities", source_name),
                final_state=final_state_columns(crm),
                open_deals=_open_deals(crm),
                snapshot_columns=[] if crm.snapshots is None else list(crm.snapshots.columns),
            )
        result.warnings[:0] = shape_warnings
        with console.status("measuring the forecast range (past months replayed)"):
            shift = _measure_forecast_shift(result, rows, crm, config, say)
        say(f"forecast range: {shift.describe()}")
        with console.status("fitting the horizon model (when deals close)"):
            _fit_horizon(result, crm, config, say)
        for warning in result.warnings:
            mlflow.set_tag("winmodel.warning", warning[:5000])

        metrics = {}
        for record in result.backtest.to_dict("records"):
            slice_name = (
                "holdout"
                if record["slice"] == "holdout"
                else "backtest_" + record["test_start"][:7]
            )
            if record["moment"] != HEADLINE:
                if record["slice"] != "holdout" or record["method"] != "winmodel":
                    continue
                slice_name = "holdout_at_" + _metric_key(str(record["moment"]))
            for metric in ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift"):
                value = record[metric]
                if np.isfinite(value):
                    metrics[f"{slice_name}.{record['method']}.{metric}"] = float(value)
        backtest_model = result.backtest[
            (result.backtest["slice"] != "holdout")
            & (result.backtest["method"] == "winmodel")
            & (result.backtest["moment"] == HEADLINE)
        ]
        for metric in ("roc_auc", "brier", "log_loss", "ece"):
            if len(backtest_model):
                metrics[f"backtest_mean.winmodel.{metric}"] = float(backtest_model[metric].mean())
        metrics.update({f"oracle.{k}": v for k, v in result.oracle.items()})
        metrics["training.maturity_days"] = float(result.maturity_days)
        metrics["training.leakage_excluded"] = float(len(result.leakage.excluded))
        metrics["forecast.shift_sigma"] = shift.sigma
        metrics["forecast.shift_periods"] = float(len(shift.periods))
        mlflow.log_metrics(metrics)
        mlflow.log_text(shift.periods.to_csv(index=False), "tables/forecast_shift.csv")
        with console.status("logging plots and tables"):
            _log_tables(result, crm)
            if config.tracking.figures:
                _log_figures(result, rows)

        facts = {
            "source": source_name,
            "mapping": str(mapping_path) if mapping_path else None,
            "closed_deals": won + lost,
            "won": won,
            "lost": lost,
            "as_of": f"{crm.as_of:%Y-%m-%d}",
            "has_snapshots": crm.has_snapshots,
            "snapshot_source": {
                "snapshots": "the export's own snapshots table",
                "field_history": "replayed from the field history",
            }.get(str(crm.snapshot_source)),
        }

        # Every check passed: from here on the registry changes.
        with console.status("logging and registering the model"):
            info = registry.log_win_model(
                result.model,
                rows.head(50),
                metadata={"config_digest": config.digest(), "data_digest": data_digest(crm)},
            )
            model_version = registry.register(info.model_uri, config.tracking.registered_model)
        client = MlflowClient()
        name = config.tracking.registered_model
        registry.tag_version(
            client,
            name,
            model_version,
            {
                **{f"{registry.IDENTITY_TAG}{key}": value for key, value in identity.items()},
                "winmodel.data_digest": data_digest(crm),
                "winmodel.champion_data_digest": champion_digest or "none",
            },
        )
        registry.set_alias(client, name, registry.CHALLENGER, model_version)
        champion_metrics, champion_version, same_deals = _champion_metrics(
            client, config, result, rows, say
        )
        too_few_unseen = bool(champion_metrics and champion_metrics.get("too_few_unseen"))
        inputs = gate.gate_inputs(result, rows, config.gate, champion_saw_holdout=too_few_unseen)
        challenger_metrics = inputs.challenger
        if same_deals is not None:
            challenger_metrics = {k: same_deals[k] for k in challenger_metrics}
        pooled = inputs.pooled
        if pooled is not None and {"winmodel", "base_rate"} <= set(pooled):
            say(
                ("the champion saw the holdout" if too_few_unseen else "small data")
                + f" ({inputs.closed_deals} closed deals): log loss over every time-ordered fold "
                f"{pooled['winmodel']:.4f}, base rate {pooled['base_rate']:.4f}"
            )
        decision = gate.decide_promotion(
            challenger_metrics, champion_metrics, config.gate, inputs.base_rate_brier, pooled
        )
        gate_text = (
            f"{'PROMOTED' if decision.promote else 'NOT PROMOTED'}: version {model_version} — "
            f"{decision.reason}"
            + (f" (champion was version {champion_version})" if champion_version else "")
        )
        mlflow.set_tags(
            {
                "winmodel.gate": "promoted" if decision.promote else "refused",
                "winmodel.gate_reason": decision.reason[:5000],
                "winmodel.model_version": model_version,
            }
        )
        if champion_metrics is not None:
            mlflow.log_metrics(
                {f"gate.champion.{k}": v for k, v in champion_metrics.items() if np.isfinite(v)}
            )
        card = render_model_card(result, facts={**facts, "version": model_version}, gate=gate_text)
        mlflow.log_text(card, "model_card.md")
        client.update_model_version(name, model_version, description=card[:5000])
        export_dir = None
        if decision.promote:
            export_dir = config.tracking.export_dir
            try:
                registry.set_alias(client, name, registry.CHAMPION, model_version)
                with console.status("exporting the champion to models/"):
                    export.export_model(
                        f"models:/{name}/{model_version}",
                        export_dir,
                        extra_files={
                            "MODEL_CARD.md": card,
                            VERSION_FILE: model_version,
                            FORECAST_BAND_FILE: forecast_band_json(result.model),
                        },
                    )
            except BaseException:
                _keep_alias_with_export(
                    client, name, model_version, champion_version, export_dir, say
                )
                if exported_version(export_dir) == model_version:
                    # The export had switched (the stop came while old copies were pruned): the
                    # champion is the new version, and an interruption must say so.
                    promoted.append(model_version)
                raise
            promoted.append(model_version)
        say(gate_text)
        _print_summary(
            console,
            result,
            decision,
            model_version,
            run.info.run_id,
            tracking_uri,
            time.monotonic() - started,
            experiment=config.tracking.experiment,
            registered_model=config.tracking.registered_model,
        )
        return TrainOutcome(
            run.info.run_id, model_version, decision.promote, decision.reason, result, export_dir
        )


def _refuse_a_champion_of_other_data(
    client: MlflowClient, config: TrainConfig, identity: dict[str, str]
) -> str | None:
    """Stop before anything is logged when the champion was trained on other data; give its data digest.

    A challenger trained on another company's export, another mapping or other contract columns
    would be judged against a champion that never saw such data. The job stops (GateError)
    unless ``gate.replace_incompatible_champion`` is set.
    """
    from winmodel.mlops.gate import identity_mismatch
    from winmodel.mlops.registry import CHAMPION, alias_version, version_identity

    name = config.tracking.registered_model
    champion_version = alias_version(client, name, CHAMPION)
    if champion_version is None:
        return None
    tags = client.get_model_version(name, champion_version).tags
    mismatch = identity_mismatch(
        identity,
        version_identity(client, name, champion_version),
        name=name,
        champion_version=champion_version,
    )
    if mismatch and not config.gate.replace_incompatible_champion:
        raise GateError(f"NOT TRAINED: {mismatch}.")
    return tags.get("winmodel.data_digest")


def _fit_horizon(result: TrainingResult, crm: CRMData, config: TrainConfig, say: Progress) -> None:
    """Fit the horizon model onto the trained model, after checking it on the holdout; log both in the run.

    Like the forecast range, it is secondary: without snapshots (or with too few outcomes) the model is
    saved without it, the horizon columns are then left out of scored files, and the run says why.
    """
    import mlflow

    from winmodel.modeling.horizon import fit_horizon_model, horizon_holdout

    if not config.horizon.fit:
        mlflow.set_tag("winmodel.horizon", "not fitted: horizon.fit is off in the config")
        say("horizon model: not fitted (horizon.fit is off in the config)")
        return
    if not crm.has_snapshots:
        mlflow.set_tag("winmodel.horizon", "not fitted: the export has no snapshots")
        say("horizon model: not fitted (no snapshots to learn when deals close from)")
        return
    assert crm.snapshots is not None  # has_snapshots: a table with rows
    history = add_history_features(crm.opportunities, crm.snapshots)
    model = result.model
    threads, seed = config.model.threads, config.seed
    # The holdout's first day: the model never learned from a deal closed after it.
    cutoff = pd.Timestamp(
        str(model.metadata.get("holdout_window", "")).split(" to ")[0] or crm.as_of
    )
    try:
        metrics, reliability = horizon_holdout(
            model, history, cutoff, crm.as_of, seed=seed, threads=threads
        )
        model.horizon = fit_horizon_model(model, history, crm.as_of, seed=seed, threads=threads)
    except ValueError as reason:
        mlflow.set_tag("winmodel.horizon", f"not fitted: {reason}"[:5000])
        say(f"[yellow]horizon model not fitted[/yellow]: {reason}")
        return
    model.horizon.metadata["holdout"] = {"cutoff": f"{cutoff:%Y-%m-%d}", **metrics}
    mlflow.log_metrics({f"horizon.holdout.{key}": value for key, value in metrics.items()})
    mlflow.log_text(reliability.to_csv(index=False), "tables/horizon_reliability.csv")
    briers = {
        key.split(".")[-1]: value for key, value in metrics.items() if "integrated_brier" in key
    }
    say(
        f"horizon model: checked on {int(metrics['deals']):,} deals open on {cutoff:%Y-%m-%d}; "
        "integrated Brier "
        + ", ".join(f"{name} {value:.4f}" for name, value in briers.items())
        + (
            f"; this quarter P(won) ECE {metrics['this_quarter.ece']:.3f}"
            if "this_quarter.ece" in metrics
            else ""
        )
    )


def _measure_forecast_shift(
    result: TrainingResult, rows: pd.DataFrame, crm: CRMData, config: TrainConfig, say: Progress
) -> SharedShift:
    """Measure the forecast range's shared shift of the new model's recipe; keep it on the model.

    The range is secondary to the model: when it cannot be measured, the training goes on with deals
    treated as independent, and says why (a warning in the run and the model card).
    """
    if not crm.has_snapshots:
        shift = SharedShift.unmeasured("the export has no snapshots to rebuild past forecasts from")
    else:
        # Rebuilt here rather than kept from the training rows: training's peak memory stays as it was.
        assert crm.snapshots is not None  # has_snapshots: a table with rows
        history = add_history_features(crm.opportunities, crm.snapshots)
        try:
            shift = measure_shared_shift(
                result.model, rows, history, config, crm.as_of, progress=say
            )
        except Exception as error:  # any failure here leaves the model itself untouched
            log.debug("measuring the forecast range failed", exc_info=True)
            shift = SharedShift.unmeasured(f"measuring it failed: {type(error).__name__}: {error}")
            result.warnings.append(f"forecast range: {shift.describe()}")
    result.model.metadata["forecast_shift"] = {
        "sigma": shift.sigma,
        "by": "month",
        "periods": len(shift.periods),
        "first_period": str(shift.periods["period"].iloc[0]) if len(shift.periods) else None,
        "last_period": str(shift.periods["period"].iloc[-1]) if len(shift.periods) else None,
        "description": shift.describe(),
    }
    return shift


def _keep_alias_with_export(
    client: MlflowClient,
    name: str,
    model_version: str,
    previous: str | None,
    export_dir: Path,
    say: Progress,
) -> None:
    """After a failed promotion, point ``champion`` at the model the export holds (scoring's default).

    The export is switched in one rename: it holds either the new model (the failure came after,
    e.g. while old copies were pruned) or the previous one, and the alias follows it.
    """
    from winmodel.mlops import registry

    if exported_version(export_dir) == model_version:
        return
    try:
        registry.restore_alias(client, name, registry.CHAMPION, previous)
    except Exception as error:  # the original failure matters more; say how to repair by hand
        say(
            f"[red]could not put the champion alias back on version {previous}[/red] ({error}); run: "
            f"mlflow.MlflowClient().set_registered_model_alias({name!r}, 'champion', {previous!r})"
        )


def _metric_key(moment: str) -> str:
    """Give a moment's name as an MLflow metric key part: '50 % of life' -> '50pct_of_life'."""
    return moment.replace(" %", "pct").replace(" ", "_")


def _open_deals(crm: CRMData) -> pd.DataFrame:
    """Give the export's open deals as they stand on the as-of day (for the leakage guard)."""
    opportunities = crm.opportunities
    return opportunities[opportunities["status"].eq("open")].assign(**{AS_OF: crm.as_of})


def _print_summary(
    console: Console,
    result: TrainingResult,
    decision: GateDecision,
    model_version: str,
    run_id: str,
    tracking_uri: str,
    seconds: float,
    *,
    experiment: str = "winmodel",
    registered_model: str = "winmodel",
) -> None:
    table = Table(
        title="Holdout (newest months): every pre-close snapshot, each deal weighing one",
        caption="as a scorer sees deals; by moment of their lives below. "
        "lift: win rate of the top 10 % of scores over the overall win rate",
    )
    table.add_column(
        "method", justify="left", overflow="fold"
    )  # names wrap, never cut at 80 columns
    for column in ("ROC AUC", "Brier", "log loss", "ECE", "lift"):
        table.add_column(column, justify="right", no_wrap=True)
    row: Any  # a record of the holdout metrics: its fields are the table's columns
    for row in result.holdout_metrics.itertuples(index=False):
        table.add_row(
            row.method,
            f"{row.roc_auc:.3f}",
            f"{row.brier:.4f}",
            f"{row.log_loss:.4f}",
            f"{row.ece:.3f}",
            f"{row.top_decile_lift:.2f}",
        )
    console.print(table)
    moments = Table(title="winmodel through the deals' lives (holdout)")
    for column in ("moment", "deals", "ROC AUC", "Brier", "log loss", "ECE"):
        moments.add_column(column, justify="right" if column != "moment" else "left")
    for row in result.holdout_by_moment.itertuples(index=False):
        moments.add_row(
            str(row.moment),
            f"{row.deals:,.0f}",
            f"{row.roc_auc:.3f}",
            f"{row.brier:.4f}",
            f"{row.log_loss:.4f}",
            f"{row.ece:.3f}",
        )
    if len(result.holdout_by_moment) > 1:
        console.print(moments)
    for note in result.baseline_notes:
        console.print(f"note: {note}")
    if result.oracle:
        console.print(
            f"oracle Brier {result.oracle['oracle_brier']:.4f}: the model reaches "
            f"{result.oracle['oracle_skill_share']:.1%} of the best possible skill over the base rate"
        )
    verdict = (
        "[green]promoted to champion[/green]" if decision.promote else "[red]not promoted[/red]"
    )
    console.print(f"model version {model_version}: {verdict} — {decision.reason}")
    console.print(
        f"MLflow run {run_id} (experiment {experiment!r}) in {tracking_uri}; took {seconds:.0f}s. "
        f"`make ui`, then Model training → Model registry → {registered_model} (README)"
    )


def run_train_cli(
    config: Path, data: Path | str | None, mapping: Path | None, model_name: str | None = None
) -> int:
    """Run the job for the command line; give the exit code (1 when the gate refused the challenger)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    outcome = run_train(config, data=data, mapping=mapping, model_name=model_name)
    return 0 if outcome.promoted else 1
