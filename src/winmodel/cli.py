"""The ``winmodel`` command line: thin wrappers that parse arguments and call the jobs.

Exit codes: 0 success, 1 bad input or a failed gate, 2 usage error.
Foreseeable input faults print a report, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from winmodel.errors import WinmodelError

if TYPE_CHECKING:
    from winmodel.analysis.forecast import Period

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# OpenMP threads that spin while waiting make LightGBM 5-10x slower on a busy 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

# Known, harmless notices from MLflow about how winmodel logs its model (see registry.py).
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")
warnings.filterwarnings("ignore", message=".*dataset source can be interpreted in multiple ways.*")
# pandera imports pyspark.pandas when pyspark is installed (the [spark] extra); PySpark 4.x then notes
# that pandas >= 3 is "not fully supported yet". tests/test_spark.py checks winmodel's use of it.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

app = typer.Typer(
    name="winmodel",
    help="Win probabilities for B2B deals, learned from your own closed deals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

log = logging.getLogger("winmodel")

#: The shell's code for a command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT_CODE = 130


class Engine(StrEnum):
    """Where `winmodel score` runs the scoring."""

    pandas = "pandas"
    spark = "spark"


def _echo_error(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def generate(
    out: Annotated[
        str,
        typer.Option(
            help="Folder to write opportunities, snapshots and truth into, or a database URL (e.g. duckdb:///data/demo.duckdb) that gets them as tables."
        ),
    ] = "data/demo",
    deals: Annotated[int, typer.Option(min=50, help="Number of deals to generate.")] = 20_000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same history.")
    ] = 7,
    months: Annotated[int, typer.Option(min=6, help="Months of history up to today.")] = 36,
    today: Annotated[
        str | None, typer.Option(help="Last day of the history (YYYY-MM-DD); default 2026-10-31.")
    ] = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Write a realistic synthetic CRM history (opportunities, snapshots, truth)."""
    from winmodel.jobs.generate import run_generate

    run_generate(
        out=out, deals=deals, seed=seed, months=months, today=today, file_format=file_format
    )


@app.command()
def validate(
    data: Annotated[
        str | None,
        typer.Option(
            help="Export file or folder to check, or a database URL (tables opportunities, snapshots)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML mapping from the export onto the contract.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="A pipeline config whose data: section names the data and mapping."),
    ] = None,
) -> None:
    """Check an export against the data contract; exit 1 listing every problem."""
    from winmodel.jobs.validate import run_validate

    if data is None and config is None:
        raise typer.BadParameter(
            "give --data PATH (with optional --mapping FILE) or --config FILE",
            param_hint="--data / --config",
        )
    report = run_validate(data=data, mapping=mapping, config=config)
    typer.echo(report.render())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def audit(
    data: Annotated[
        str | None, typer.Option(help="Export file or folder to audit, or a database URL.")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML mapping from the export onto the contract.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="A training config: its data, thresholds and leakage settings."),
    ] = None,
) -> None:
    """Report leaky columns and whether there are enough closed deals, without training; exit 1 if too few."""
    from winmodel.jobs.audit import run_audit

    if data is None and config is None:
        raise typer.BadParameter(
            "give --data PATH (with optional --mapping FILE) or --config FILE",
            param_hint="--data / --config",
        )
    report = run_audit(data=data, mapping=mapping, config=config)
    typer.echo(report.render())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="The training job declaration.")] = Path(
        "pipelines/train.yaml"
    ),
    data: Annotated[
        str | None,
        typer.Option(help="Override the config's data: a file, a folder or a database URL."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Override the config's mapping file.")
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            help="Register under this name (its own champion, exported to models/NAME) instead of the config's tracking.registered_model."
        ),
    ] = None,
) -> None:
    """Train, backtest, calibrate, log to MLflow, register; promote to champion only if not worse."""
    from winmodel.jobs.train import run_train_cli

    raise typer.Exit(run_train_cli(config, data, mapping, model_name))


@app.command()
def score(
    output: Annotated[
        str | None,
        typer.Option(
            help="Where to write the scored deals: a .csv or .parquet file, or a database table as URL#table (e.g. duckdb:///data/demo.duckdb#scores). Default: the config's output, else outputs/scored.csv."
        ),
    ] = None,
    input_path: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="Export with the open deals, or a database URL (default: the config's data).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model URI or folder. Default: winmodel@champion, else models/champion. Loading a model runs its code: only load models you trust."
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="The scoring job declaration.")] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML mapping of the export onto the contract.")
    ] = None,
    previous: Annotated[
        Path | None, typer.Option(help="An earlier scored file: adds score_change and trend.")
    ] = None,
    shap_out: Annotated[
        Path | None,
        typer.Option(help="Also write every deal's full contributions (log-odds and points)."),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="pandas: in this process. spark: the same scoring on Apache Spark (local[2], or the cluster $SPARK_MASTER names; needs Java and pyspark)."
        ),
    ] = Engine.pandas,
    horizon: Annotated[
        str | None,
        typer.Option(
            help="quarter: also explain why each deal is unlikely to close this quarter "
            "(column reasons_not_this_quarter; needs a model with a horizon model)."
        ),
    ] = None,
) -> None:
    """Score the open deals: probability, reasons, next best milestone, recommendation, expected value."""
    from winmodel.jobs.score import run_score

    if horizon not in (None, "quarter"):
        raise typer.BadParameter("use quarter", param_hint="--horizon")

    run_score(
        config_path=config,
        input_path=input_path,
        output=output,
        model_uri=model,
        mapping=mapping,
        previous=previous,
        shap_out=shap_out,
        engine=engine.value,
        horizon=horizon,
    )


@app.command()
def profile(
    data: Annotated[
        Path, typer.Option(help="Export file or folder with the deals (closed ones are profiled).")
    ] = Path("data/demo"),
    mapping: Annotated[
        Path | None, typer.Option(help="YAML mapping from the export onto the contract.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only deals closed on or after this date (YYYY-MM-DD).")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for the report, its charts and the CSV tables.")
    ] = Path("outputs/profile"),
    min_deals: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Closed deals a scenario needs; default 100 or 2 % of the closed deals, whichever is more.",
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Scenarios shown per direction.")] = 10,
) -> None:
    """Where we win: win rates by dimension with intervals, and the strongest win and loss scenarios."""
    from winmodel.jobs.profile import run_profile

    run_profile(data, mapping=mapping, since=since, out=out, min_deals=min_deals, top=top)


@app.command()
def forecast(
    input_path: Annotated[
        Path | None, typer.Option("--input", help="Scored file from `winmodel score`.")
    ] = None,
    by: Annotated[str, typer.Option(help="Group by expected close month or quarter.")] = "month",
    out: Annotated[
        Path | None, typer.Option(help="Write the table here (.csv or .parquet).")
    ] = None,
    seed: Annotated[
        int,
        typer.Option(help="Seed of the Monte Carlo range; the same seed gives the same figures."),
    ] = 42,
    backtest: Annotated[
        bool,
        typer.Option(
            "--backtest",
            help="Replay past periods instead: refit at each period start, compare with what was won.",
        ),
    ] = False,
    landed: Annotated[
        bool,
        typer.Option(
            "--landed",
            help="With --backtest: replay landed bookings (every deal won in the month, whenever "
            "created) with the horizon model, P(won) x expected date, stage-weighted and run-rate.",
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="With --backtest: the CRM history (export file or folder, with snapshots). "
            "With --input: the CRM data whose won deals and creations give the landed-bookings parts."
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="With --backtest: YAML mapping of the history.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="With --backtest: model URI or folder whose recipe is replayed (default winmodel@champion, else models/champion). With --input: the exported model folder whose measured shared shift widens the range (default models/champion)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="With --backtest: training config (default pipelines/train.yaml)."),
    ] = None,
    periods: Annotated[
        int, typer.Option(min=1, help="With --backtest: number of resolved periods to replay.")
    ] = 8,
    max_open_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="With --backtest: a period counts as resolved when at most this share of its deals is still open.",
        ),
    ] = 0.05,
    warmup_periods: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="With --backtest: earlier periods replayed only to measure the range's shared shift. Default: forecast.shift_months of the config.",
        ),
    ] = None,
) -> None:
    """Expected bookings by expected close period with P10/P50/P90, beside the CRM's stage-weighted forecast."""
    from winmodel.jobs.forecast import run_forecast, run_forecast_backtest, run_landed_backtest

    if by not in ("month", "quarter"):
        raise typer.BadParameter("use month or quarter", param_hint="--by")
    period = cast("Period", by)  # month or quarter, checked just above
    if backtest:
        if data is None:
            raise typer.BadParameter(
                "--backtest needs --data PATH (the CRM history)", param_hint="--data"
            )
        if landed:
            run_landed_backtest(
                data,
                mapping=mapping,
                model_uri=model,
                config_path=config,
                periods=periods,
                warmup_periods=6 if warmup_periods is None else warmup_periods,
                out=out,
            )
            return
        run_forecast_backtest(
            data,
            mapping=mapping,
            model_uri=model,
            config_path=config,
            by=period,
            periods=periods,
            max_open_share=max_open_share,
            warmup_periods=warmup_periods,
            out=out,
        )
        return
    if input_path is None:
        raise typer.BadParameter(
            "give --input SCORED (a file from `winmodel score`), or --backtest --data PATH",
            param_hint="--input",
        )
    run_forecast(
        input_path,
        by=period,
        out=out,
        model_dir=Path(model) if model else None,
        data=data,
        seed=seed,
    )


@app.command()
def report(
    input_path: Annotated[
        Path, typer.Option("--input", help="Scored file from `winmodel score`.")
    ] = Path("outputs/scored.csv"),
    out: Annotated[Path, typer.Option(help="The page to write (.html).")] = Path(
        "outputs/pipeline.html"
    ),
    model: Annotated[
        Path | None,
        typer.Option(
            help="Exported model folder whose measured forecast band widens the range (default models/champion)."
        ),
    ] = None,
) -> None:
    """Write the offline pipeline review page: counts and value, forecast chart, deal table and cards."""
    from winmodel.jobs.report import run_report

    run_report(input_path, out, model_dir=model)


@app.command()
def triage(
    input_path: Annotated[
        Path | None,
        typer.Option("--input", help="A scored file to judge on the demo's truth (with --data)."),
    ] = None,
    backtest: Annotated[
        bool,
        typer.Option(
            "--backtest",
            help="Replay past months (recipe refitted at each month's start), choose the decision table's thresholds.",
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(help="The CRM history (with snapshots); its truth table when it is the demo."),
    ] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping of the history.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model URI or folder whose recipe is replayed (default winmodel@champion, else models/champion)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="The scoring config: cost model, bands, triage targets (default pipelines/score.yaml)."
        ),
    ] = None,
    train_config: Annotated[
        Path | None, typer.Option(help="The training config (default pipelines/train.yaml).")
    ] = None,
    periods: Annotated[int, typer.Option(min=1, help="With --backtest: months to replay.")] = 6,
    out: Annotated[
        Path | None, typer.Option(help="With --backtest: write the figures per month here.")
    ] = None,
) -> None:
    """How much of the expected margin the pursue list holds, against the oracle, amount and everything."""
    from winmodel.jobs.triage import run_triage, run_triage_backtest

    if data is None:
        raise typer.BadParameter("give --data PATH (the CRM history)", param_hint="--data")
    if backtest:
        run_triage_backtest(
            data,
            mapping=mapping,
            model_uri=model,
            config_path=config,
            train_config_path=train_config,
            periods=periods,
            out=out,
        )
        return
    if input_path is None:
        raise typer.BadParameter(
            "give --input SCORED (judged on the demo's truth) or --backtest", param_hint="--input"
        )
    run_triage(input_path, data)


@app.command("export-crm")
def export_crm(
    input_path: Annotated[
        Path, typer.Option("--input", help="Scored file from `winmodel score`.")
    ] = Path("outputs/scored.csv"),
    mapping: Annotated[
        Path,
        typer.Option(
            help="The CRM's mapping, with a write_back: section (e.g. pipelines/mappings/salesforce.yaml)."
        ),
    ] = Path("pipelines/mappings/salesforce.yaml"),
    out: Annotated[
        Path, typer.Option(help="Upsert file to write (.csv for Data Loader or a HubSpot import).")
    ] = Path("outputs/upsert.csv"),
) -> None:
    """Write an upsert file of the scores in the CRM's own field names and limits (import it into the CRM)."""
    from winmodel.jobs.export_crm import run_export_crm

    run_export_crm(input_path, mapping, out)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "numba", "shap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").addFilter(
        lambda record: "CloudPickle" not in record.getMessage()
    )


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logging.")] = False,
) -> None:
    _configure_logging(verbose)


def main() -> None:
    """Run the command line; turn winmodel errors into a message and exit code 1."""
    try:
        # Without standalone mode click returns the exit code of typer.Exit instead of exiting.
        code = app(standalone_mode=False)
    except WinmodelError as error:
        _echo_error(str(error))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        # Ctrl-C: outputs are written atomically and the champion moves last, so nothing is half-done.
        _echo_error("interrupted — nothing was half-written")
        sys.exit(INTERRUPTED_EXIT_CODE)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        _echo_error("aborted")
        sys.exit(1)
    except typer.TyperException as error:
        # Usage errors (exit 2) arrive here in non-standalone mode. Typer vendors its own click,
        # so the installed click's exception classes would not match them.
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            _echo_error(error.format_message())
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
