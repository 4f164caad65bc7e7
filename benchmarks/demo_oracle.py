"""`make bench-demo-oracle`: winmodel against the oracle on the demo's open deals -> benchmarks/demo_oracle.md.

At the moment winmodel is used a deal is open, mid-life: its true chance of being won *eventually*
is the mean over its possible futures. The demo generator continues every deal open at ``today``
many times (``truth_timing``); with ``timing_months=24`` nearly every continuation resolves, so the
share won by the end of the 24th month is q = P(won eventually) (the share still open is reported).

The benchmark:

1. generates the demo exactly as ``make train`` does (``data.demo`` of pipelines/train.yaml: 20,000
   deals, seed 7, 36 months; only the truth's continuations are longer and more numerous, which
   leaves every other table unchanged);
2. trains winmodel on it with the default ``TrainConfig`` (``features.rows.build_training_rows``,
   ``modeling.train.train_win_model``, as benchmarks/quality.py does), and fits the peers of
   benchmarks/quality.py (``fit_peers``: HistGradientBoostingClassifier and LightGBM defaults, a
   logistic regression) on winmodel's own feature matrix and sample weights;
3. scores the deals open at ``today`` (``features.rows.open_deal_rows``) and compares with q. No
   outcome is realised for open deals, so the measure is the *expected* Brier under the truth,
   E[Brier(p)] = mean((p - q)^2 + q(1 - q)), and the oracle share
   1 - mean((p - q)^2) / mean((b - q)^2) with b the training base rate
   (``modeling.evaluate.expected_brier_oracle_share``; q's own sampling noise over the
   continuations is taken out);
4. splits the open deals by age (share of the typical cycle, the median created-to-close days of
   closed deals, elapsed on ``today``), and checks P(won by the end of month 5) of the horizon model
   (``modeling.horizon``) against the truth's ``p_won_by_end`` of month 5.

    python benchmarks/demo_oracle.py --out benchmarks/demo_oracle.md
    python benchmarks/demo_oracle.py --deals 2000 --months 18 --out /tmp/demo_oracle.md   # quick
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Before any OpenMP library loads (see benchmarks/quality.py); quality.py beside this file gives
# the peers.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from quality import _markdown, config_with, fit_peers

from winmodel.data.dataset import CRMData, load_crm_data
from winmodel.data.io import atomic_file, write_table_atomic
from winmodel.features.rows import (
    AS_OF,
    add_history_features,
    build_training_rows,
    final_state_columns,
    open_deal_rows,
)
from winmodel.modeling.evaluate import expected_brier, expected_brier_oracle_share
from winmodel.modeling.horizon import (
    fit_horizon_model,
    horizon_curves,
    observed_outcomes,
    open_rows_at,
    stage_curves,
)
from winmodel.modeling.train import train_win_model
from winmodel.settings import DemoData, TrainConfig, load_train_config
from winmodel.synth.generator import SyntheticHistory, generate_history

HERE = Path(__file__).resolve().parent
TRAIN_YAML = HERE.parent / "pipelines" / "train.yaml"

#: Months the truth's continuations run: long enough that nearly every open deal resolves.
TIMING_MONTHS = 24
#: Continuations per open deal (the generator's default is 200; more makes q less noisy).
REPLICATES = 1000
#: The horizon checked against the truth's p_won_by_end (month 0 is today's month).
HORIZON_MONTH = 5
#: Age bands: share of the typical cycle (median created-to-close days of closed deals) elapsed.
AGE_BANDS = (
    ("early (< 1/3 of a typical cycle)", 0.0, 1 / 3),
    ("mid-life (1/3 to 2/3)", 1 / 3, 2 / 3),
    ("late (2/3 to 1)", 2 / 3, 1.0),
    ("overdue (> 1 typical cycle)", 1.0, np.inf),
)
BOOTSTRAP = 400

log = logging.getLogger("bench-demo-oracle")


# --------------------------------------------------------------------------- the demo and its truth


def generate_demo(
    demo: DemoData, folder: Path, timing_months: int, replicates: int
) -> SyntheticHistory:
    """Give the demo history (with long continuations) and write its two tables into ``folder``."""
    history = generate_history(
        demo.deals,
        seed=demo.seed,
        months=demo.months,
        timing_months=timing_months,
        timing_replicates=replicates,
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_table_atomic(history.opportunities, folder / "opportunities.parquet")
    write_table_atomic(history.snapshots, folder / "snapshots.parquet")
    return history


def eventual_truth(timing: pd.DataFrame, horizon_month: int = HORIZON_MONTH) -> pd.DataFrame:
    """Give per open deal q = P(won by the last month), P(still open then) and P(won by ``horizon_month``)."""
    last = timing["month_offset"].max()
    final = timing[timing["month_offset"] == last].set_index("opportunity_id")
    at_horizon = timing[timing["month_offset"] == horizon_month].set_index("opportunity_id")
    return pd.DataFrame(
        {
            "q_eventual": final["p_won_by_end"],
            "p_open_at_end": (1.0 - final["p_won_by_end"] - final["p_lost_by_end"]).clip(lower=0),
            "q_horizon": at_horizon["p_won_by_end"].reindex(final.index),
        }
    )


# --------------------------------------------------------------------------- the methods


@dataclass
class Scored:
    """The open deals' rows, every method's P(won) and P(won by the horizon month), and the base rates."""

    rows: pd.DataFrame
    p_won: dict[str, np.ndarray]
    p_won_by_horizon: dict[str, np.ndarray]
    base_rate: float
    horizon_base_rate: float
    typical_cycle_days: float
    train_seconds: float


def score_open_deals(
    crm: CRMData,
    config: TrainConfig,
    decided_today: pd.Series,
    horizon_month: int = HORIZON_MONTH,
    say: Callable[[str], None] = print,
) -> Scored:
    """Give every method's predictions for the deals open on ``crm.as_of``."""
    training_rows, _ = build_training_rows(crm, config)
    opportunities = crm.opportunities
    started = time.perf_counter()
    result = train_win_model(
        training_rows,
        config,
        extra_features=[(f.name, f.kind) for f in crm.extra_features],
        progress=lambda message: None,
        final_state=final_state_columns(crm),
        open_deals=opportunities[opportunities["status"].eq("open")].assign(**{AS_OF: crm.as_of}),
        snapshot_columns=[] if crm.snapshots is None else list(crm.snapshots.columns),
    )
    train_seconds = time.perf_counter() - started
    say(f"winmodel trained in {train_seconds:.0f} s")
    model = result.model
    builder = model.feature_builder
    won = training_rows["status"].eq("won").to_numpy(int)
    weight = training_rows["sample_weight"].to_numpy(float)
    peers = fit_peers(
        builder.transform(training_rows),
        won,
        weight,
        builder.feature_names_,
        builder.categorical_features_,
        config.seed,
    )
    rows, _ = open_deal_rows(crm)
    matrix = builder.transform(rows)
    p_won = {"winmodel": model.predict_proba(rows)}
    for name, (predict, _seconds) in peers.items():
        p_won[f"{name} (defaults)" if name != "logistic_regression" else name] = predict(matrix)
    if "crm_probability" in rows:
        p_won["CRM stage probability"] = rows["crm_probability"].to_numpy(float) / 100.0
    # The generator's truth at the latest snapshot: the deal's chance if it were decided today.
    p_won["truth if decided today"] = rows["opportunity_id"].map(decided_today).to_numpy(float)

    assert crm.snapshots is not None  # the demo has snapshots
    history = add_history_features(opportunities, crm.snapshots)
    horizon = fit_horizon_model(
        model, history, crm.as_of, seed=config.seed, threads=config.model.threads
    )
    curves = horizon_curves(horizon, model, rows, as_of=crm.as_of)
    stage = stage_curves(history, crm.as_of, rows.assign(**{AS_OF: crm.as_of}))
    p_won_by_horizon = {
        "winmodel (horizon model)": curves.won[:, horizon_month],
        "CRM stage (Aalen-Johansen by stage)": stage[0][:, horizon_month],
    }
    closed = opportunities[opportunities["status"].ne("open")]
    cycle = float((closed["close_date"] - closed["created_date"]).dt.days.median())
    return Scored(
        rows=rows,
        p_won=p_won,
        p_won_by_horizon=p_won_by_horizon,
        base_rate=float(np.average(won, weights=weight)),
        horizon_base_rate=_horizon_base_rate(history, crm.as_of, horizon_month),
        typical_cycle_days=cycle,
        train_seconds=train_seconds,
    )


def _horizon_base_rate(history: pd.DataFrame, as_of: pd.Timestamp, horizon_month: int) -> float:
    """Give the share of deals open a year before ``as_of`` that were won by the end of month ``horizon_month``.

    The constant a forecaster without a model would use: seen from the same day of the year
    before (its months are all complete), the deals open then and how many were won that soon.
    """
    then = pd.Timestamp(as_of) - pd.DateOffset(months=12)
    rows = open_rows_at(history, then).assign(**{AS_OF: then})
    won_by, _ = observed_outcomes(rows, as_of)
    return float(won_by[:, horizon_month].mean())


# --------------------------------------------------------------------------- the figures


def age_bands(rows: pd.DataFrame, as_of: pd.Timestamp, typical_cycle_days: float) -> np.ndarray:
    """Give each open deal's age band (a label of :data:`AGE_BANDS`)."""
    elapsed = (pd.Timestamp(as_of) - rows["created_date"]).dt.days.to_numpy(float)
    share = elapsed / typical_cycle_days
    labels = np.empty(len(rows), dtype=object)
    for label, low, high in AGE_BANDS:
        labels[(share >= low) & (share < high)] = label
    return labels


def oracle_table(
    predictions: dict[str, np.ndarray],
    truth: np.ndarray,
    base_rate: float,
    groups: np.ndarray,
    replicates: int,
    seed: int,
    base_label: str = "base rate (training)",
) -> pd.DataFrame:
    """Give per method and group (plus all deals): deals, expected Brier, oracle share and its s.e.

    The standard error is a bootstrap over deals (the same resamples for every method).
    """
    rng = np.random.default_rng(seed)
    records = []
    for group in ["all open deals", *[label for label, _, _ in AGE_BANDS]]:
        members = np.ones(len(truth), dtype=bool) if group == "all open deals" else groups == group
        index = np.flatnonzero(members)
        if not index.size:
            continue
        draws = rng.integers(0, index.size, (BOOTSTRAP, index.size))
        q = truth[index]
        for method, probability in predictions.items():
            p = probability[index]
            share = expected_brier_oracle_share(p, q, base_rate, replicates=replicates)
            resampled = [
                expected_brier_oracle_share(p[d], q[d], base_rate, replicates=replicates)
                for d in draws
            ]
            records.append(
                {
                    "deals": group,
                    "n": int(index.size),
                    "method": method,
                    "expected Brier": expected_brier(p, q),
                    "oracle share": share,
                    "s.e.": float(np.nanstd(resampled, ddof=1)),
                    "mean p": float(p.mean()),
                    "mean q": float(q.mean()),
                }
            )
        records.append(
            {
                "deals": group,
                "n": int(index.size),
                "method": base_label,
                "expected Brier": expected_brier(np.full(index.size, base_rate), q),
                "oracle share": 0.0,
                "s.e.": np.nan,
                "mean p": base_rate,
                "mean q": float(q.mean()),
            }
        )
        records.append(
            {
                "deals": group,
                "n": int(index.size),
                "method": "oracle (q)",
                "expected Brier": expected_brier(q, q),
                "oracle share": 1.0,
                "s.e.": np.nan,
                "mean p": float(q.mean()),
                "mean q": float(q.mean()),
            }
        )
    return pd.DataFrame(records)


def render(
    eventual: pd.DataFrame,
    horizon: pd.DataFrame,
    facts: dict[str, str],
    command: str,
    timing_months: int = TIMING_MONTHS,
) -> str:
    """Give the markdown report."""
    winmodel = eventual[eventual["method"] == "winmodel"].set_index("deals")
    parts = [
        f"{100 * row['oracle share']:.1f} % (s.e. {100 * row['s.e.']:.1f}) on "
        + (f"all {row['n']} open deals" if group == "all open deals" else f"the {row['n']} {group}")
        for group, row in winmodel.iterrows()
        if group in ("all open deals", AGE_BANDS[1][0])
    ]
    lines = [
        "# The demo's oracle share at the moment of scoring (`make bench-demo-oracle`)",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` on "
        f"{platform.node() or 'this machine'} ({os.cpu_count()} cores, shared); "
        f"**wall time {facts['wall time']}** (load average {facts['load']}).",
        "",
        "**Share of the oracle's expected-Brier skill on P(won eventually) that winmodel "
        f"reaches: {', '.join(parts)}.** Horizon: P(won eventually), i.e. won by the end of month "
        f"{timing_months - 1} from today (month 0 is today's month); P(won by the end of month "
        f"{HORIZON_MONTH}) is in the second table.",
        "",
        "## Set-up",
        "",
        *[f"- {key}: {value}" for key, value in facts.items() if key not in ("wall time", "load")],
        "",
        "Expected Brier under the truth: mean((p - q)^2 + q(1 - q)); oracle share = "
        "1 - mean((p - q)^2) / mean((b - q)^2), b = the training base rate "
        "(`winmodel.modeling.evaluate.expected_brier_oracle_share`). q is the share of the "
        "continuations won; its sampling noise (q(1 - q) / continuations on average) is taken out "
        "of both squared errors (the raw figure is lower by about that noise over "
        "mean((b - q)^2)). s.e.: bootstrap over deals. Ages: share of a typical cycle (the median "
        "created-to-close days of closed deals) elapsed on today. `truth if decided today` is the "
        "generator's `truth.true_probability` of the open deal (its chance were it decided on its "
        "latest snapshot), the yardstick training's own oracle share uses: the gap to q is the "
        "progress still to come.",
        "",
        "## P(won eventually), by deal age",
        "",
        _markdown(eventual),
        "",
        f"## P(won by the end of month {HORIZON_MONTH}) (month 0 is today's month)",
        "",
        "Against the truth's `p_won_by_end` of the same month. The base rate b is the share of the "
        "deals open on the same day a year earlier that were won that soon (from the data, not "
        "the truth). winmodel's horizon curve is anchored to its P(won); the CRM row is the "
        "stage's Aalen-Johansen curve.",
        "",
        _markdown(horizon),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; give the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "demo_oracle.md")
    parser.add_argument("--config", type=Path, default=TRAIN_YAML, help="its data.demo is used")
    parser.add_argument("--deals", type=int, default=None, help="override data.demo.deals")
    parser.add_argument("--months", type=int, default=None, help="override data.demo.months")
    parser.add_argument("--timing-months", type=int, default=TIMING_MONTHS)
    parser.add_argument("--replicates", type=int, default=REPLICATES)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training setting (TrainConfig), e.g. model.monotone=false; the demo's "
        "size comes from --deals, --months and --config, not from here",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("winmodel").setLevel(logging.WARNING)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    command = "python benchmarks/demo_oracle.py " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    demo = load_train_config(args.config).data.demo
    demo = demo.model_copy(
        update={
            key: value
            for key, value in (("deals", args.deals), ("months", args.months))
            if value is not None
        }
    )
    if demo.months < 18:
        parser.error("--months: at least 18 (the horizon's base rate looks a year back)")
    config = config_with(args.set)
    with tempfile.TemporaryDirectory(prefix="demo-oracle-") as temporary:
        history = generate_demo(demo, Path(temporary), args.timing_months, args.replicates)
        crm = load_crm_data(Path(temporary))
    print(f"generated {demo.deals:,} deals ({time.perf_counter() - started:.0f} s)", flush=True)
    assert history.truth_timing is not None
    truth = eventual_truth(history.truth_timing)
    decided_today = history.truth.set_index("opportunity_id")["true_probability"]
    scored = score_open_deals(crm, config, decided_today, say=lambda line: print(line, flush=True))
    ids = scored.rows["opportunity_id"]
    missing = set(ids) ^ set(truth.index)
    if missing:
        raise SystemExit(f"the open deals and the truth's deals differ: {sorted(missing)[:5]}")
    truth = truth.loc[ids]
    groups = age_bands(scored.rows, crm.as_of, scored.typical_cycle_days)
    eventual = oracle_table(
        scored.p_won,
        truth["q_eventual"].to_numpy(float),
        scored.base_rate,
        groups,
        args.replicates,
        config.seed,
    )
    horizon = oracle_table(
        scored.p_won_by_horizon,
        truth["q_horizon"].to_numpy(float),
        scored.horizon_base_rate,
        np.array(["all open deals"] * len(ids), dtype=object),
        args.replicates,
        config.seed,
        base_label="base rate (a year earlier)",
    )
    horizon = horizon[horizon["deals"] == "all open deals"].drop(columns=["deals"])
    open_at_end = truth["p_open_at_end"]
    raw_share = expected_brier_oracle_share(
        scored.p_won["winmodel"], truth["q_eventual"].to_numpy(float), scored.base_rate
    )
    wall = time.perf_counter() - started
    settings = "`TrainConfig` with " + ", ".join(args.set) if args.set else "default `TrainConfig`"
    facts = {
        "demo": f"{demo.deals:,} deals, seed {demo.seed}, {demo.months} months "
        f"(`data.demo` of {args.config.name}), today {crm.as_of:%Y-%m-%d}",
        "truth": f"{args.replicates} continuations of each open deal over {args.timing_months} "
        f"calendar months; still open at the end: {open_at_end.mean():.4%} of the "
        f"continuations ({int((open_at_end > 0.5 / args.replicates).sum())} of {len(ids)} deals "
        "have any)",
        "winmodel": f"{settings} (seed {config.seed}), trained in "
        f"{scored.train_seconds:.0f} s on the closed deals' point-in-time rows",
        "winmodel, all open deals, q's noise left in": f"{raw_share:.4f} (the brief's formula "
        "as is: a lower bound)",
        "training base rate b": f"{scored.base_rate:.4f} (sample-weighted, as in quality.py)",
        "typical cycle": f"{scored.typical_cycle_days:.0f} days (median, closed deals)",
        f"base rate of P(won by month {HORIZON_MONTH})": f"{scored.horizon_base_rate:.4f}",
        "wall time": f"{wall / 60:.1f} min",
        "load": f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
    }
    report = render(eventual, horizon, facts, command.strip(), args.timing_months)
    with atomic_file(args.out) as stream:
        stream.write(report.encode())
    write_table_atomic(
        pd.concat(
            [
                eventual.assign(target="won eventually"),
                horizon.assign(target=f"won by the end of month {HORIZON_MONTH}"),
            ]
        ),
        args.out.with_suffix(".csv"),
    )
    print(f"wrote {args.out} ({wall / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
