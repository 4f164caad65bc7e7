"""The triage job: how much of the expected margin the pursue list holds, today or replayed.

``run_triage`` judges a scored file against the generator's truth (the demo's ``truth`` table).
``run_triage_backtest`` replays past months with the champion's recipe refitted at each month's
start (see :mod:`winmodel.analysis.triage`), chooses the decision table's thresholds that met the
scoring config's ``triage`` targets, and prints them for ``pipelines/score.yaml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from winmodel.analysis.triage import (
    ReplayedDeals,
    TriageBacktest,
    backtest_triage,
    generator_truth,
    judge_triage,
    replay_open_deals,
)
from winmodel.data.io import read_table, write_table_atomic
from winmodel.errors import InputError, Problem
from winmodel.settings import ScoreConfig, load_score_config

TRUTH_FILES = ("truth.parquet", "truth.csv")
DEFAULT_SCORE_CONFIG = Path("pipelines/score.yaml")


@dataclass
class TriageOutcome:
    """The replay (or today's judgement) and where it was written."""

    backtest: TriageBacktest | None
    judged: dict[str, float] | None
    output: Path | None
    seconds: float


def _score_config(path: Path | None) -> ScoreConfig:
    if path is not None:
        return load_score_config(Path(path))
    if DEFAULT_SCORE_CONFIG.exists():
        return load_score_config(DEFAULT_SCORE_CONFIG)
    return ScoreConfig()


def truth_file(data: Path) -> Path | None:
    """Give the generator's truth table beside a demo export, or None (a real CRM has none)."""
    folder = Path(data) if Path(data).is_dir() else Path(data).parent
    return next((folder / name for name in TRUTH_FILES if (folder / name).is_file()), None)


def run_triage(input_path: Path, data: Path, *, console: Console | None = None) -> TriageOutcome:
    """Judge the pursue list of a scored file on the generator's truth (``truth`` beside ``data``)."""
    console = console or Console()
    started = time.monotonic()
    found = truth_file(data)
    if found is None:
        raise InputError(
            Problem(
                file=str(data),
                column=None,
                problem="no truth table here: only the generated demo history has one",
                fix="judge a real pipeline with `winmodel triage --backtest --data PATH`, which "
                "replays past months against what was won",
            )
        )
    scored = read_table(Path(input_path))
    truth = read_table(found).set_index("opportunity_id")
    missing = [c for c in ("opportunity_id", "recommendation", "amount") if c not in scored]
    if missing:
        raise InputError(
            Problem(
                file=str(input_path),
                column=", ".join(missing),
                problem="the scored file lacks the columns triage needs",
                fix="pass a file written by `winmodel score`",
            )
        )
    true_probability = pd.to_numeric(
        scored["opportunity_id"].map(truth["true_probability"]), errors="coerce"
    ).to_numpy()
    amount = pd.to_numeric(scored["amount"], errors="coerce").to_numpy()
    expected_margin = pd.to_numeric(scored["expected_margin"], errors="coerce").to_numpy()
    probability = pd.to_numeric(scored["win_probability"], errors="coerce").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = np.where(
            probability * amount > 0, expected_margin / (probability * amount), np.nan
        )
    judged = judge_triage(
        true_probability * amount * margin,
        scored["recommendation"].eq("pursue").to_numpy(),
        expected_margin,
        amount,
    )
    console.print(_judged_table(judged, f"{Path(input_path).name} on the generator's truth"))
    return TriageOutcome(None, judged, None, time.monotonic() - started)


def run_triage_backtest(
    data: Path,
    *,
    mapping: Path | None = None,
    model_uri: str | None = None,
    config_path: Path | None = None,
    train_config_path: Path | None = None,
    periods: int = 6,
    out: Path | None = None,
    choose: bool = True,
    console: Console | None = None,
) -> TriageOutcome:
    """Replay the last ``periods`` months; choose and print the decision table's thresholds; write the figures."""
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import add_history_features, build_training_rows
    from winmodel.jobs.forecast import _train_config
    from winmodel.mlops.registry import resolve_model

    console = console or Console()
    started = time.monotonic()

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {message}")

    score_config = _score_config(config_path)
    train_config = _train_config(train_config_path)
    crm = load_crm_data(Path(data), mapping)
    if not crm.has_snapshots or crm.snapshots is None:
        raise InputError(
            Problem(
                file=crm.files.get("opportunities", str(data)),
                column=None,
                problem="a triage replay needs the snapshot history (what each deal looked like on each day)",
                fix="export the snapshots table too; a flat export only shows deals as they are today",
            )
        )
    model, version, used_uri = resolve_model(model_uri, ScoreConfig(tracking=train_config.tracking))
    found = truth_file(data)
    measure = "the generator's truth" if found is not None else "what was won"
    say(f"model: version {version} ({used_uri}); replaying {periods} months, judged on {measure}")
    history = add_history_features(crm.opportunities, crm.snapshots)
    training_rows, _ = build_training_rows(crm, train_config, history)
    final_amount = crm.opportunities.set_index("opportunity_id")["amount"]
    replayed: ReplayedDeals = replay_open_deals(
        model,
        training_rows,
        history,
        final_amount,
        train_config,
        score_config,
        as_of=crm.as_of,
        periods=periods,
        truth=generator_truth(crm.as_of) if found is not None else None,
        progress=say,
    )
    backtest = backtest_triage(replayed, score_config, choose=choose)
    console.print(_periods_table(backtest, measure))
    rules = backtest.rules
    if choose:
        console.print(
            "thresholds that met the triage targets (pursue list holding "
            f"{score_config.triage.pursue_margin_share:.0%} of the value, declines at most "
            f"{score_config.triage.decline_margin_share:.0%}); for pipelines/score.yaml:\n"
            "recommendation:\n"
            f"  decline_below_probability: {rules.decline_below_probability:g}\n"
            f"  pursue_min_expected_margin: {rules.pursue_min_expected_margin:.0f}\n"
            "  qualify_min_red_flags: "
            + ("null" if rules.qualify_min_red_flags is None else str(rules.qualify_min_red_flags))
        )
    if out is not None:
        out = Path(out)
        write_table_atomic(backtest.periods, out)
        trials = out.with_name(f"{out.stem}-trials{out.suffix}")
        write_table_atomic(backtest.trials, trials)
        console.print(f"wrote {out} and {trials}")
    return TriageOutcome(backtest, None, out, time.monotonic() - started)


def _share(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.1%}"


def _judged_table(judged: dict[str, float], title: str) -> Table:
    view = Table(title=f"Triage: {title}")
    view.add_column("figure")
    view.add_column("value", justify="right")
    rows = (
        ("deals", f"{judged['deals']:,.0f}"),
        ("pursued", f"{judged['pursued']:,.0f} ({_share(judged['pursued_share'])})"),
        ("pursue list / oracle's best deals of that number", _share(judged["pursue_vs_oracle"])),
        (
            "ranking by the model's expected margin / oracle",
            _share(judged["expected_margin_rank_vs_oracle"]),
        ),
        ("ranking by amount / oracle", _share(judged["amount_rank_vs_oracle"])),
        ("pursue list / pursuing everything", _share(judged["pursue_vs_everything"])),
    )
    for name, value in rows:
        view.add_row(name, value)
    return view


def _periods_table(backtest: TriageBacktest, measure: str) -> Table:
    view = Table(
        title=f"Triage replay, judged on {measure}: the expected margin the pursue list held"
    )
    for column in (
        "month",
        "deals",
        "pursued",
        "pursue / oracle",
        "margin rank / oracle",
        "amount rank / oracle",
        "pursue / everything",
    ):
        view.add_column(column, justify="left" if column == "month" else "right")
    for record in backtest.periods.to_dict("records"):
        view.add_row(
            str(record["period"]),
            f"{float(record['deals']):,.0f}",
            f"{float(record['pursued']):,.0f} ({_share(float(record['pursued_share']))})",
            _share(float(record["pursue_vs_oracle"])),
            _share(float(record["expected_margin_rank_vs_oracle"])),
            _share(float(record["amount_rank_vs_oracle"])),
            _share(float(record["pursue_vs_everything"])),
            style="bold" if record["period"] == "mean" else None,
        )
    return view
