"""The forecast job: a scored file -> expected bookings per close period with a range; or the honest replay.

``run_forecast`` reads what ``winmodel score`` wrote and rolls it up by expected
close month or quarter. ``run_forecast_backtest`` replays the last periods of a
CRM history with the champion's recipe refitted at each period start (see
:func:`winmodel.analysis.replay.backtest_forecast`) and compares the result with the
CRM's stage-weighted forecast.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from winmodel.analysis.forecast import DEFAULT_DRAWS, FORECAST_BAND_FILE, Period, forecast_by_period
from winmodel.analysis.replay import (
    ForecastBacktest,
    LandedBacktest,
    backtest_forecast,
    backtest_landed_bookings,
)
from winmodel.data.io import read_table, write_table_atomic
from winmodel.errors import InputError, Problem, example_rows
from winmodel.mlops.export import exported_version

if TYPE_CHECKING:
    from winmodel.data.dataset import CRMData
    from winmodel.modeling.model import WinModel
    from winmodel.settings import TrainConfig

log = logging.getLogger("winmodel")

DEFAULT_TRAIN_CONFIG = Path("pipelines/train.yaml")
SCORED_COLUMNS = ("amount", "close_date", "win_probability")


@dataclass
class ForecastOutcome:
    """The forecast table, where it was written and how many scored rows were left out."""

    table: pd.DataFrame
    output: Path | None
    left_out: int
    landed: pd.DataFrame | None = None


@dataclass
class BacktestOutcome:
    """The replay and where it was written."""

    backtest: ForecastBacktest
    output: Path | None
    model_version: str
    seconds: float


def _money(value: float) -> str:
    """Give an amount for the screen in three significant figures (36.9 M, 992 k): the tables fit
    80 columns; the file written with --out holds every digit."""
    if value is None or not np.isfinite(value):
        return "—"
    size = abs(value)
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if size >= scale * 0.9995:
            shown = value / scale
            digits = 2 if abs(shown) < 10 else 1 if abs(shown) < 100 else 0
            return f"{shown:.{digits}f} {unit}"
    return f"{value:,.0f}"


def read_scored(path: Path) -> tuple[pd.DataFrame, int]:
    """Give the scored deals usable for a forecast and how many rows were left out (blank values).

    Raises InputError when a needed column is missing or a probability lies outside 0-1.
    """
    scored = read_table(Path(path))
    missing = [column for column in SCORED_COLUMNS if column not in scored]
    if missing:
        raise InputError(
            Problem(
                file=str(path),
                column=", ".join(missing),
                problem="the scored file lacks the columns a forecast needs",
                fix="pass a file written by `winmodel score` (it has amount, close_date and win_probability)",
            )
        )
    first = int(scored.attrs.get("first_row", 1))
    frame = scored.assign(
        amount=pd.to_numeric(scored["amount"], errors="coerce"),
        close_date=pd.to_datetime(scored["close_date"], errors="coerce"),
        win_probability=pd.to_numeric(scored["win_probability"], errors="coerce"),
    )
    if "crm_probability" in frame:
        frame = frame.assign(
            crm_probability=pd.to_numeric(frame["crm_probability"], errors="coerce")
        )
    labels = pd.RangeIndex(first, first + len(frame))
    outside = frame["win_probability"].notna() & ~frame["win_probability"].between(0, 1)
    if outside.any():
        raise InputError(
            Problem(
                file=str(path),
                column="win_probability",
                problem="probabilities outside 0-1",
                fix="pass a file written by `winmodel score`; win_probability is a share, not a percentage",
                rows=int(outside.sum()),
                examples=example_rows(labels[outside.to_numpy()]),
            )
        )
    blank = frame[list(SCORED_COLUMNS)].isna().any(axis=1)
    if blank.any():
        log.warning(
            "%s: %d rows without amount, close date or probability are left out (e.g. %s %s)",
            path,
            int(blank.sum()),
            scored.attrs.get("row_unit", "row"),
            ", ".join(example_rows(labels[blank.to_numpy()])),
        )
    return frame[~blank.to_numpy()], int(blank.sum())


def split_flagged(scored: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give (the deals to forecast, the deals whose amount scoring flagged as implausible)."""
    if "amount_implausible" not in scored:
        return scored, scored.iloc[:0]
    flagged = scored["amount_implausible"].astype("str").str.lower().isin(["true", "1"]).to_numpy()
    return scored[~flagged], scored[flagged]


def read_forecast_band(model_dir: Path) -> dict[str, Any] | None:
    """Give the shared shift stored beside an exported model (:data:`FORECAST_BAND_FILE`), or None."""
    path = Path(model_dir) / FORECAST_BAND_FILE
    if not path.is_file():
        return None
    try:
        band: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        sigma = float(band["sigma"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(
            Problem(
                file=str(path),
                column="sigma",
                problem=f"unreadable forecast band ({error})",
                fix="re-export the model with `make train`, or delete the file to forecast "
                "with independent deals",
            )
        ) from error
    if not (np.isfinite(sigma) and sigma >= 0):
        raise InputError(
            Problem(
                file=str(path),
                column="sigma",
                problem=f"sigma {sigma} is not a number >= 0",
                fix="re-export the model with `make train`",
            )
        )
    band["version"] = exported_version(model_dir)
    return band


def _band_of(scored: pd.DataFrame, model_dir: Path, by: Period, console: Console) -> float:
    """Give the shared shift for the scored file: the one measured for the model that scored it."""
    band = read_forecast_band(model_dir)
    if band is None:
        console.print(
            f"[yellow]no {FORECAST_BAND_FILE} in {model_dir}[/yellow]: the range treats deals as "
            "independent and is too narrow; a model of another job: --model models/<its name>; "
            "else retrain (`make train`) to measure the shared shift"
        )
        return 0.0
    versions = (
        sorted(scored["model_version"].dropna().astype(str).unique())
        if "model_version" in scored
        else []
    )
    if band["version"] is not None and versions and versions != [band["version"]]:
        console.print(
            f"[yellow]the file was scored by model version {', '.join(versions)}, the band comes from "
            f"version {band['version']} in {model_dir}[/yellow]: re-score with it, or pass --model"
        )
    sigma = float(band["sigma"])
    console.print(f"range: {band.get('description') or f'shared shift sigma {sigma:.3f} log-odds'}")
    if by == "quarter" and sigma:
        console.print(
            "range by quarter: the monthly shift moves each quarter as a whole (wider than needed "
            "if months move independently)"
        )
    return sigma


def _train_config(config_path: Path | None) -> TrainConfig:
    from winmodel.settings import TrainConfig, load_train_config

    if config_path is not None:
        return load_train_config(Path(config_path))
    if DEFAULT_TRAIN_CONFIG.exists():
        return load_train_config(DEFAULT_TRAIN_CONFIG)
    return TrainConfig()


def run_forecast(
    input_path: Path,
    *,
    by: Period = "month",
    out: Path | None = None,
    model_dir: Path | None = None,
    data: Path | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 42,
    console: Console | None = None,
) -> ForecastOutcome:
    """Roll a scored file up into expected bookings per close period; print it and write it to ``out``.

    The range includes the shared shift measured when the model was trained, read from the exported model
    folder ``model_dir`` (default: the champion's export, ``models/champion``). When the scored file has
    the horizon columns, the landed bookings of this month and this quarter follow, in three parts
    (already won, open deals, deals not yet created) from the CRM data at ``data`` (default: the score
    config's data); written beside ``out`` as ``<out>-landed``.
    """
    console = console or Console()
    scored, left_out = read_scored(Path(input_path))
    if model_dir is not None and not Path(model_dir).is_dir():
        raise InputError(
            Problem(
                file=str(model_dir),
                column=None,
                problem="--model must name an exported model folder (with FORECAST_BAND.json)",
                fix="pass a folder such as models/champion, or leave --model out",
            )
        )
    sigma = _band_of(
        scored,
        Path(model_dir) if model_dir else _train_config(None).tracking.export_dir,
        by,
        console,
    )
    scored, flagged = split_flagged(scored)
    table = forecast_by_period(scored, by=by, shift_sigma=sigma, draws=draws, seed=seed)
    console.print(_forecast_table(table, by, Path(input_path)))
    if len(flagged):
        console.print(
            f"[yellow]{len(flagged):,} deal(s) with an implausible amount (flagged at scoring) are left "
            f"out of these figures[/yellow], pipeline {_money(float(flagged['amount'].sum()))}: "
            + ", ".join(
                f"{deal} {_money(amount)} at {probability:.0%}"
                for deal, amount, probability in zip(
                    flagged["opportunity_id"].head(10),
                    flagged["amount"].head(10).astype(float),
                    flagged["win_probability"].head(10).astype(float),
                    strict=True,
                )
            )
            + "; correct their amounts and score again"
        )
    for note in outside_band_notes(table, scored):
        console.print(f"[yellow]{note}[/yellow]")
    if left_out:
        console.print(
            f"[yellow]{left_out:,} scored rows without amount, close date or probability were left out"
        )
    landed = _landed(scored, data, sigma, draws, seed, console)
    if out is not None:
        write_table_atomic(table, Path(out))
        console.print(f"wrote {out} (every digit of the amounts shown rounded above)")
        if landed is not None:
            landed_path = Path(out).with_name(f"{Path(out).stem}-landed{Path(out).suffix}")
            write_table_atomic(landed, landed_path)
            console.print(f"wrote {landed_path}")
    else:
        console.print("[dim]amounts rounded to 3 figures; --out FILE writes them in full[/dim]")
    return ForecastOutcome(table, Path(out) if out else None, left_out, landed)


def _landed(
    scored: pd.DataFrame,
    data: Path | None,
    sigma: float,
    draws: int,
    seed: int,
    console: Console,
) -> pd.DataFrame | None:
    """Give (and print) this month's and this quarter's landed bookings, or None when they cannot be made."""
    from winmodel.analysis.forecast import (
        LANDED_COLUMNS,
        landed_bookings,
        new_deal_bookings,
        period_of,
    )
    from winmodel.data.dataset import load_crm_data

    if "p_won_this_quarter" not in scored:
        console.print(
            "[yellow]no horizon columns in the scored file[/yellow]: landed bookings need a model with "
            "a horizon model (retrain with `make train`, then score again)"
        )
        return None
    if data is None:
        from winmodel.settings import ScoreConfig, load_score_config

        default = Path("pipelines/score.yaml")
        config = load_score_config(default) if default.exists() else ScoreConfig()
        data = config.data.path
    if not Path(data).exists():
        console.print(
            f"[yellow]no CRM data at {data}[/yellow]: landed bookings need the won deals and the "
            "creation history (pass --data)"
        )
        return None
    crm = load_crm_data(Path(data))
    opportunities = crm.opportunities
    as_of = crm.as_of
    closed = pd.to_datetime(opportunities["close_date"])
    records = []
    for by, column in (("month", "p_won_this_month"), ("quarter", "p_won_this_quarter")):
        period = period_of(pd.Series([as_of]), by).iloc[0]  # type: ignore[arg-type]
        won = opportunities["status"].eq("won") & (closed >= period.start_time) & (closed <= as_of)
        already = float(pd.to_numeric(opportunities.loc[won, "amount"], errors="coerce").sum())
        probability = pd.to_numeric(scored[column], errors="coerce").fillna(0.0).to_numpy()
        amount = scored["amount"].to_numpy(float)
        new = new_deal_bookings(opportunities, as_of, by=by)  # type: ignore[arg-type]
        result = landed_bookings(
            already, amount, probability, new, shift_sigma=sigma, draws=draws, seed=seed
        )
        records.append(
            {
                "period": str(period),
                "as_of": f"{as_of:%Y-%m-%d}",
                "already_won": result.already_won,
                "open_deals": len(amount),
                "open_pipeline": float(amount.sum()),
                "open_expected": result.open_expected,
                "new_deals_expected": new.mean,
                "new_deals_std": new.std,
                "expected": result.expected,
                "p10": result.p10,
                "p50": result.p50,
                "p90": result.p90,
            }
        )
    table = pd.DataFrame(records, columns=list(LANDED_COLUMNS))
    view = Table(
        title=f"Landed bookings as of {as_of:%Y-%m-%d}: what this month and this quarter will book "
        "(deals won in the period, whenever created)"
    )
    for name in (
        "period",
        "already won",
        "open deals x P(won in period)",
        "deals not yet created",
        "expected",
        "P10",
        "P50",
        "P90",
    ):
        view.add_column(name, justify="left" if name == "period" else "right")
    row: Any  # a record of the landed table: its fields are the table's columns
    for row in table.itertuples(index=False):
        view.add_row(
            row.period,
            _money(row.already_won),
            _money(row.open_expected),
            f"{_money(row.new_deals_expected)} ± {_money(row.new_deals_std)}",
            _money(row.expected),
            _money(row.p10),
            _money(row.p50),
            _money(row.p90),
        )
    console.print(view)
    return table


def outside_band_notes(table: pd.DataFrame, scored: pd.DataFrame) -> list[str]:
    """Give, for each period whose expected bookings fall outside its P10-P90, why: its largest deal."""
    notes = []
    months = pd.to_datetime(scored["close_date"]).dt.to_period("M").astype(str).to_numpy()
    weight = (scored["amount"] * scored["win_probability"]).to_numpy(dtype=float)
    ids = scored["opportunity_id"].astype(str).to_numpy()
    for row in table.to_dict("records"):
        if row["p10"] <= row["expected"] <= row["p90"] or not row["deals"]:
            continue
        mask = (
            np.ones(len(scored), dtype=bool)
            if row["period"] == "total"
            else months == row["period"]
        )
        if not mask.any() or weight[mask].sum() <= 0:
            continue
        top = int(np.flatnonzero(mask)[np.argmax(weight[mask])])
        share = float(weight[top] / weight[mask].sum())
        notes.append(
            f"{row['period']}: expected {_money(row['expected'])} lies outside P10-P90 "
            f"({_money(row['p10'])} - {_money(row['p90'])}) because one deal carries {share:.0%} of it "
            f"({ids[top]}: {_money(float(scored['amount'].to_numpy()[top]))} at "
            f"{float(scored['win_probability'].to_numpy()[top]):.0%}): the outcome is lopsided "
            "(that deal is won or not), so the mean is not a likely total"
        )
    return notes


def _forecast_table(table: pd.DataFrame, by: str, source: Path) -> Table:
    has_crm = table["crm_weighted"].notna().any()
    view = Table(
        title=f"Expected bookings by expected close {by} ({source.name}); "
        "P10-P90: 8 in 10 outcomes should fall in this range",
        caption="CRM: the CRM stage-weighted forecast (amount × the stage's probability)"
        if has_crm
        else None,
    )
    columns = ["period", "deals", "pipeline", "expected", "P10", "P50", "P90"]
    if has_crm:
        columns += ["CRM"]
    for column in columns:
        view.add_column(column, justify="left" if column == "period" else "right")
    row: Any  # a record of the forecast table: its fields are the table's columns
    for row in table.itertuples(index=False):
        cells = [
            row.period,
            f"{row.deals:,}",
            _money(row.pipeline_amount),
            _money(row.expected),
            _money(row.p10),
            _money(row.p50),
            _money(row.p90),
        ]
        if has_crm:
            cells.append(_money(row.crm_weighted))
        view.add_row(*cells, style="bold" if row.period == "total" else None)
    return view


def _stopwatch(console: Console, started: float) -> Callable[[str], None]:
    """Give a ``say`` that prints a message after the seconds since ``started`` (time.monotonic)."""

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {message}")

    return say


@dataclass(frozen=True)
class _ReplayInputs:
    """What both replays start from: the training config, the CRM history, the model and its rows."""

    config: TrainConfig
    crm: CRMData
    model: WinModel
    version: str
    model_label: str
    history: pd.DataFrame
    training_rows: pd.DataFrame


def _replay_inputs(
    data: Path,
    mapping: Path | None,
    model_uri: str | None,
    config_path: Path | None,
    needs_snapshots: str,
) -> _ReplayInputs:
    """Load the history and the model a replay refits; a flat export is refused with ``needs_snapshots``."""
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import add_history_features, build_training_rows
    from winmodel.mlops.registry import resolve_model
    from winmodel.settings import ScoreConfig

    config = _train_config(config_path)
    crm = load_crm_data(Path(data), mapping)
    if not crm.has_snapshots:
        raise InputError(
            Problem(
                file=crm.files.get("opportunities", str(data)),
                column=None,
                problem=needs_snapshots,
                fix="export the snapshots table too; a flat export only shows deals as they are today",
            )
        )
    model, version, used_uri = resolve_model(model_uri, ScoreConfig(tracking=config.tracking))
    assert crm.snapshots is not None  # has_snapshots: a table with rows
    history = add_history_features(crm.opportunities, crm.snapshots)
    training_rows, _ = build_training_rows(crm, config, history)
    return _ReplayInputs(
        config, crm, model, version, f"version {version} ({used_uri})", history, training_rows
    )


def run_forecast_backtest(
    data: Path,
    *,
    mapping: Path | None = None,
    model_uri: str | None = None,
    config_path: Path | None = None,
    by: Period = "month",
    periods: int = 8,
    max_open_share: float = 0.05,
    warmup_periods: int | None = None,
    out: Path | None = None,
    draws: int = DEFAULT_DRAWS,
    console: Console | None = None,
) -> BacktestOutcome:
    """Replay the last ``periods`` resolved periods of the history at ``data``; print and write the comparison.

    ``warmup_periods`` earlier periods (default the config's ``forecast.shift_months``) are replayed too,
    only to measure the band's shared shift.
    """
    console = console or Console()
    started = time.monotonic()
    say = _stopwatch(console, started)
    replay = _replay_inputs(
        data,
        mapping,
        model_uri,
        config_path,
        "a forecast replay needs the snapshot history (what each deal looked like on each day)",
    )
    config, crm, model, version = replay.config, replay.crm, replay.model, replay.version
    history, training_rows = replay.history, replay.training_rows
    say(f"model: {replay.model_label}; replaying {periods} {by}s up to {crm.as_of:%Y-%m-%d}")
    final_amount = crm.opportunities.set_index("opportunity_id")["amount"]
    backtest = backtest_forecast(
        model,
        training_rows,
        history,
        final_amount,
        config,
        as_of=crm.as_of,
        by=by,
        periods=periods,
        max_unresolved_share=max_open_share,
        warmup_periods=warmup_periods,
        draws=draws,
        seed=config.seed,
        progress=say,
    )
    console.print(_backtest_table(backtest, by))
    console.print(_summary_table(backtest))
    if out is not None:
        out = Path(out)
        write_table_atomic(backtest.periods, out)
        summary_path = out.with_name(f"{out.stem}-summary{out.suffix}")
        write_table_atomic(backtest.summary, summary_path)
        console.print(f"wrote {out} and {summary_path}")
    return BacktestOutcome(backtest, out, version, time.monotonic() - started)


def _backtest_table(backtest: ForecastBacktest, by: str) -> Table:
    view = Table(
        title=f"Forecast replay by {by}: what each method said on the first day vs what was won"
    )
    for column in (
        "period",
        "deals",
        "actual",
        "winmodel",
        "P10-P90",
        "in range",
        "stage-weighted",
        "P10-P90 ",
        "in range ",
    ):
        view.add_column(column, justify="left" if column == "period" else "right")
    wide = backtest.periods.pivot(index="period", columns="method")
    for period in wide.index:
        row = wide.loc[period]
        cells = [
            str(period),
            f"{int(row[('deals', 'winmodel')]):,}",
            _money(row[("actual", "winmodel")]),
        ]
        for method in ("winmodel", "stage_weighted"):
            if ("forecast", method) not in row.index or pd.isna(row[("forecast", method)]):
                cells += ["—", "—", "—"]
                continue
            cells += [
                _money(row[("forecast", method)]),
                f"{_money(row[('p10', method)])} – {_money(row[('p90', method)])}",
                "yes" if row[("covered", method)] else "no",
            ]
        view.add_row(*cells)
    return view


def _summary_table(backtest: ForecastBacktest) -> Table:
    view = Table(
        title="Replay summary (lower MAE is better; a P10-P90 band should cover about 80 % of periods)"
    )
    for column in (
        "method",
        "periods",
        "MAE",
        "MAE / mean actual",
        "bias",
        "P10-P90 coverage",
        "band width / forecast",
        "left out (open)",
    ):
        view.add_column(column, justify="left" if column == "method" else "right")
    row: Any  # a record of the replay summary: its fields are the table's columns
    for row in backtest.summary.itertuples(index=False):
        view.add_row(
            row.method,
            str(row.periods),
            _money(row.mae),
            f"{row.relative_mae:.1%}",
            _money(row.bias),
            f"{row.coverage_p10_p90:.0%}",
            f"{row.relative_band_width:.1%}",
            f"{row.unresolved_dropped:,}",
        )
    return view


@dataclass
class LandedBacktestOutcome:
    """The landed-bookings replay and where it was written."""

    backtest: LandedBacktest
    output: Path | None
    model_version: str
    seconds: float


def run_landed_backtest(
    data: Path,
    *,
    mapping: Path | None = None,
    model_uri: str | None = None,
    config_path: Path | None = None,
    periods: int = 12,
    warmup_periods: int = 6,
    refit_every: int = 3,
    out: Path | None = None,
    draws: int = DEFAULT_DRAWS,
    console: Console | None = None,
) -> LandedBacktestOutcome:
    """Replay the last ``periods`` complete months on landed bookings; print and write the comparison.

    See :func:`winmodel.analysis.replay.backtest_landed_bookings`.
    """
    console = console or Console()
    started = time.monotonic()
    say = _stopwatch(console, started)
    replay = _replay_inputs(
        data, mapping, model_uri, config_path, "a landed-bookings replay needs the snapshot history"
    )
    config, crm, model, version = replay.config, replay.crm, replay.model, replay.version
    history, training_rows = replay.history, replay.training_rows
    say(
        f"model: {replay.model_label}; replaying {periods} months of landed bookings "
        f"up to {crm.as_of:%Y-%m-%d} (+{warmup_periods} earlier months for the range)"
    )
    backtest = backtest_landed_bookings(
        model,
        training_rows,
        history,
        crm.opportunities,
        config,
        as_of=crm.as_of,
        periods=periods,
        warmup_periods=warmup_periods,
        refit_every=refit_every,
        draws=draws,
        seed=config.seed,
        progress=say,
    )
    console.print(_landed_summary_table(backtest))
    if out is not None:
        out = Path(out)
        write_table_atomic(backtest.periods, out)
        summary_path = out.with_name(f"{out.stem}-summary{out.suffix}")
        write_table_atomic(backtest.summary, summary_path)
        console.print(f"wrote {out} and {summary_path}")
    return LandedBacktestOutcome(backtest, out, version, time.monotonic() - started)


def _landed_summary_table(backtest: LandedBacktest) -> Table:
    view = Table(
        title="Landed-bookings replay: forecast on each month's first day vs every deal won in it "
        "(lower is better; P10-P90 should cover about 80 %)"
    )
    for column in (
        "method",
        "months",
        "MAE",
        "MAE / mean actual",
        "bias",
        "pinball P10",
        "pinball P50",
        "pinball P90",
        "P10-P90 coverage",
    ):
        view.add_column(column, justify="left" if column == "method" else "right")
    row: Any  # a record of the summary: its fields are the table's columns
    for row in backtest.summary.itertuples(index=False):
        view.add_row(
            row.method,
            str(row.periods),
            _money(row.mae),
            f"{row.relative_mae:.1%}",
            _money(row.bias),
            _money(row.pinball_p10),
            _money(row.pinball_p50),
            _money(row.pinball_p90),
            f"{row.coverage_p10_p90:.0%}",
        )
    return view
