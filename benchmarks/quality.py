"""`make bench-quality`: winmodel against simple peers on many unseen worlds -> benchmarks/quality.md.

Each world comes from :mod:`winmodel.synth.worlds` (a seeded causal structure, exact truth at every
snapshot). For every world, one time-ordered split, the same rows for every method:

* training: the closed deals that closed before the cut-off (the newest 20 % of closed deals, by
  close date, are after it), as point-in-time rows (``features.rows.build_training_rows``);
* test: the newest 20 % of closed deals, scored as open deals at the snapshot nearest the middle
  of their life (a flat export: their one row), each deal once.

Methods: ``winmodel`` (``modeling.train.train_win_model`` with the default ``TrainConfig``: leakage
guard, search, backtest, calibration, exactly as ``winmodel train`` does), and three peers fitted on
the same feature matrix winmodel's ``FeatureBuilder`` builds from the same training rows, with the
same sample weights, so the comparison is about the learner: ``HistGradientBoostingClassifier`` and
``LGBMClassifier`` with their defaults (told which columns are categorical), and a logistic
regression (one-hot categories, scaled numbers: ``modeling.evaluate.fit_logistic_baseline``).

Worlds are split by seed into a *tuning* half (odd seeds: defaults may be chosen on these) and a
*confirm* half (even seeds), reported apart. The Maven CRM export (real, no truth) is added when
``../shared/datasets/maven_crm`` (beside the checkout) exists: log loss against the base rate only.

    python benchmarks/quality.py --out benchmarks/quality.md            # the whole family
    python benchmarks/quality.py --quick --out /tmp/quality.md          # 3 small worlds
    python benchmarks/quality.py --results new.csv --compare before=old.csv   # no run: paired
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

# Before any OpenMP library loads (libgomp reads these once): idle threads sleep instead of
# spinning, which on a shared 2-core machine otherwise costs the peers minutes per small world.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier

from winmodel.data.dataset import CRMData, load_crm_data
from winmodel.data.io import atomic_file, write_table_atomic
from winmodel.data.mapping import Mapping
from winmodel.errors import GateError
from winmodel.features.rows import AS_OF, build_training_rows, final_state_columns
from winmodel.mlops.gate import decide_promotion, gate_inputs
from winmodel.modeling.evaluate import (
    EPSILON,
    brier_skill_share,
    classification_metrics,
    evaluation_moments,
    fit_logistic_baseline,
    moment_label,
)
from winmodel.modeling.train import TrainingResult, describe_shape, train_win_model
from winmodel.settings import TrainConfig
from winmodel.synth.worlds import World, WorldSpec, draw_world_spec, generate_world

HERE = Path(__file__).resolve().parent
MAVEN = HERE.parent.parent / "shared" / "datasets" / "maven_crm"  # ../shared beside the checkout
MAVEN_MAPPING = HERE.parent / "pipelines" / "mappings" / "maven_crm.yaml"
TEST_SHARE = 0.2
#: Resamples of a world's test deals behind the oracle share's standard error.
BOOTSTRAP_DRAWS = 400
#: Draws of every world's oracle share behind the interval of their median.
MEDIAN_DRAWS = 4000
METHODS = ("winmodel", "hist_gradient_boosting", "lightgbm", "logistic_regression")
PEERS = METHODS[1:]
#: The `gate` fact of a world winmodel refuses to train on (followed by the reason).
NOT_TRAINED = "not trained"
#: A world's log loss moving less than this between two runs counts as unchanged (--compare).
SAME_WITHIN = 0.001

#: The family: seeds 1-16 with the knobs a seed draws, a few fixed so every kind of world is in
#: both halves (sizes 300 to 100,000, flat and snapshot exports, each drift, wide categoricals).
FAMILY_OVERRIDES: dict[int, dict[str, object]] = {
    1: {"deals": 300, "snapshots": True},
    2: {"deals": 400, "snapshots": False},
    3: {"drift": "segment_collapse", "deals": 6_000, "snapshots": True},
    4: {"drift": "segment_collapse", "deals": 6_000, "snapshots": False},
    5: {"deals": 100_000, "snapshots": False},
    6: {"deals": 12_000, "snapshots": True, "drift": "none"},
    7: {"drift": "new_competitor", "high_cardinality": True},
    8: {"drift": "segment_rise", "high_cardinality": True},
    9: {"win_rate": 0.16},
    10: {"win_rate": 0.68},
    11: {"drift": "segment_rise"},
    12: {"drift": "new_competitor"},
}
QUICK_OVERRIDES: dict[int, dict[str, object]] = {
    101: {"deals": 500, "snapshots": True, "win_rate": 0.45, "drift": "segment_collapse"},
    102: {"deals": 500, "snapshots": False, "win_rate": 0.4, "drift": "none"},
    103: {"deals": 500, "snapshots": True, "win_rate": 0.35, "high_cardinality": True},
}

log = logging.getLogger("bench-quality")


def family(quick: bool, deals_cap: int | None = None) -> list[WorldSpec]:
    """Give the worlds' knobs: the 16-world family, or the 3 quick ones (sizes capped if asked)."""
    chosen = (
        QUICK_OVERRIDES
        if quick
        else {seed: FAMILY_OVERRIDES.get(seed, {}) for seed in range(1, 17)}
    )
    return [world_spec(seed, overrides, deals_cap) for seed, overrides in chosen.items()]


def world_spec(seed: int, overrides: dict[str, object], deals_cap: int | None) -> WorldSpec:
    """Give a world's knobs from its seed and overrides, its size capped if asked."""
    spec = draw_world_spec(seed, **overrides)
    if deals_cap is not None and spec.deals > deals_cap:
        spec = draw_world_spec(seed, **{**overrides, "deals": deals_cap})
    return spec


def half_of(seed: int) -> str:
    """Give the world's half: tuning (odd seeds) or confirm (even seeds)."""
    return "tuning" if seed % 2 else "confirm"


# --------------------------------------------------------------------------- one world


def write_world(world: World, folder: Path) -> Mapping:
    """Write the world as a canonical export (with its truth) and give the mapping that reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    write_table_atomic(world.opportunities, folder / "opportunities.parquet")
    if world.snapshots is not None:
        write_table_atomic(world.snapshots, folder / "snapshots.parquet")
        assert world.truth_snapshots is not None
        write_table_atomic(world.truth_snapshots, folder / "truth_snapshots.parquet")
    write_table_atomic(world.truth, folder / "truth.parquet")
    mapping = {"name": world.spec.name, "fixed_fields": list(world.fixed_fields)}
    with atomic_file(folder / "mapping.yaml") as stream:
        stream.write(yaml.safe_dump(mapping, sort_keys=False).encode())
    return Mapping(name=world.spec.name, fixed_fields=list(world.fixed_fields))


@dataclass
class Split:
    """The training rows, the test rows (one per deal) and the cut-off between them."""

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp
    open_at_cutoff: pd.DataFrame


def split_by_time(crm: CRMData, config: TrainConfig) -> Split:
    """Give the time-ordered split: the newest 20 % of closed deals are scored at mid-life."""
    rows, _ = build_training_rows(crm, config)
    closes = rows.groupby("opportunity_id")["close_date"].first().sort_values(kind="stable")
    cutoff = closes.iloc[int(len(closes) * (1 - TEST_SHARE))]
    train = rows[rows["close_date"] < cutoff].reset_index(drop=True)
    later = rows[rows["close_date"] >= cutoff].reset_index(drop=True)
    moments = evaluation_moments(later)
    middle = moment_label(0.5)
    test = later[moments[middle][0]] if middle in moments else later
    opportunities = crm.opportunities
    open_at_cutoff = opportunities[
        (opportunities["created_date"] < cutoff)
        & (opportunities["status"].eq("open") | (opportunities["close_date"] >= cutoff))
    ].assign(**{AS_OF: cutoff})
    return Split(train, test.reset_index(drop=True), cutoff, open_at_cutoff)


def fit_peers(
    matrix: np.ndarray,
    won: np.ndarray,
    weight: np.ndarray,
    names: list[str],
    categorical: list[str],
    seed: int,
) -> dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]]:
    """Give each peer's predict function and its training seconds, fitted on the same matrix."""
    mask = np.array([name in categorical for name in names])
    fitted: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {}
    started = time.perf_counter()
    hist = HistGradientBoostingClassifier(
        categorical_features=mask if mask.any() else None, random_state=seed
    ).fit(matrix, won, sample_weight=weight)
    fitted["hist_gradient_boosting"] = (
        lambda x: hist.predict_proba(x)[:, 1],
        time.perf_counter() - started,
    )
    started = time.perf_counter()
    booster = lgb.LGBMClassifier(random_state=seed, verbose=-1, n_jobs=2).fit(
        pd.DataFrame(matrix, columns=names),
        won,
        sample_weight=weight,
        categorical_feature=[i for i, flag in enumerate(mask) if flag] or "auto",
    )
    fitted["lightgbm"] = (
        lambda x: np.asarray(booster.predict_proba(pd.DataFrame(x, columns=names)))[:, 1],
        time.perf_counter() - started,
    )
    started = time.perf_counter()
    logistic = fit_logistic_baseline(
        pd.DataFrame(matrix, columns=names), won, weight, categorical, seed
    )
    fitted["logistic_regression"] = (
        lambda x: logistic.predict_proba(pd.DataFrame(x, columns=names))[:, 1],
        time.perf_counter() - started,
    )
    return fitted


def _oracle(world: World | None, test: pd.DataFrame) -> np.ndarray | None:
    if world is None:
        return None
    if world.truth_snapshots is not None:
        truth = world.truth_snapshots.rename(columns={"snapshot_date": AS_OF})
        found = test[["opportunity_id", AS_OF]].merge(
            truth, on=["opportunity_id", AS_OF], how="left"
        )
        return found["true_probability"].to_numpy(float)
    prior = world.truth.set_index("opportunity_id")["prior_probability"]
    return test["opportunity_id"].map(prior).to_numpy(float)


def first_gate(result: TrainingResult, train: pd.DataFrame, config: TrainConfig) -> str:
    """Give the gate's verdict on this training as a first one (no champion): promoted or refused.

    The same inputs as ``winmodel train`` gives the gate (:func:`winmodel.mlops.gate.gate_inputs`).
    """
    inputs = gate_inputs(result, train, config.gate)
    decision = decide_promotion(
        inputs.challenger, None, config.gate, inputs.base_rate_brier, inputs.pooled
    )
    return "promoted" if decision.promote else "refused"


def evaluate_world(
    label: str, crm: CRMData, world: World | None, config: TrainConfig
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Give one record per method on the world's test deals, and the world's facts."""
    split = split_by_time(crm, config)
    started = time.perf_counter()
    result = train_win_model(
        split.train,
        config,
        extra_features=[(f.name, f.kind) for f in crm.extra_features],
        progress=lambda message: None,
        final_state=final_state_columns(crm),
        open_deals=split.open_at_cutoff,
        snapshot_columns=[] if crm.snapshots is None else list(crm.snapshots.columns),
    )
    winmodel_seconds = time.perf_counter() - started
    builder = result.model.feature_builder
    train_won = split.train["status"].eq("won").to_numpy(int)
    train_weight = split.train["sample_weight"].to_numpy(float)
    peers = fit_peers(
        builder.transform(split.train),
        train_won,
        train_weight,
        builder.feature_names_,
        builder.categorical_features_,
        config.seed,
    )
    test_matrix = builder.transform(split.test)
    won = split.test["status"].eq("won").to_numpy(int)
    predictions = {"winmodel": result.model.predict_proba(split.test)}
    seconds = {"winmodel": winmodel_seconds}
    for name, (predict, fit_seconds) in peers.items():
        predictions[name] = predict(test_matrix)
        seconds[name] = fit_seconds
    base_rate = float(np.average(train_won, weights=train_weight))
    base = classification_metrics(won, np.full(len(won), base_rate))
    oracle = _oracle(world, split.test)
    oracle_metrics = None if oracle is None else classification_metrics(won, oracle)
    records: list[dict[str, object]] = []
    reference_loss = _deal_log_loss(won, predictions["winmodel"])
    share_se = (
        {method: np.nan for method in predictions}
        if oracle is None
        else oracle_share_se(won, predictions, base_rate, oracle, seed=config.seed)
    )
    for method, probability in predictions.items():
        metrics = classification_metrics(won, probability)
        difference = _deal_log_loss(won, probability) - reference_loss
        records.append(
            {
                "world": label,
                "method": method,
                "roc_auc": metrics["roc_auc"],
                "brier": metrics["brier"],
                "log_loss": metrics["log_loss"],
                "ece": metrics["ece"],
                "oracle_share": np.nan
                if oracle_metrics is None
                else brier_skill_share(base["brier"], metrics["brier"], oracle_metrics["brier"]),
                # Bootstrap over the test deals (the same resamples for every method).
                "oracle_share_se": share_se[method],
                "log_loss_vs_base": metrics["log_loss"] / base["log_loss"],
                "train_seconds": seconds[method],
                # Paired standard error of (peer - winmodel) per-deal log loss: "within noise".
                "loss_gap": float(difference.mean()),
                "loss_gap_se": float(difference.std(ddof=1) / np.sqrt(len(difference))),
            }
        )
    facts: dict[str, object] = {
        "world": label,
        "train_deals": int(split.train["opportunity_id"].nunique()),
        "test_deals": len(split.test),
        "test_win_rate": float(won.mean()),
        "cutoff": f"{split.cutoff:%Y-%m-%d}",
        "base_log_loss": base["log_loss"],
        "oracle_log_loss": np.nan if oracle_metrics is None else oracle_metrics["log_loss"],
        "oracle_auc": np.nan if oracle_metrics is None else oracle_metrics["roc_auc"],
        "shape": describe_shape(result.shape),
        "calibration": result.model.calibrator.method_,
        # A refused model is registered as challenger only: no champion, nothing exported.
        "gate": first_gate(result, split.train, config),
        # model.search_seconds is wall time: on a loaded machine fewer candidates are tried.
        "candidates_tried": len(result.search),
        # Segments the newest months said the model lags (modeling.segment_shift), with the shift.
        "segment_shifts": "; ".join(
            f"{s['dimension']}={s['value']} {s['logit_shift']:+.2f}"
            for s in result.model.metadata.get("segment_shifts", [])
        ),
    }
    if world is not None and world.drifted is not None:
        facts.update(_drift_check(world, split.test, won, predictions, oracle))
        facts.update(drift_evidence(split.train, *world.drifted))
    return records, facts


def oracle_share_se(
    won: np.ndarray,
    predictions: dict[str, np.ndarray],
    base_rate: float,
    oracle: np.ndarray,
    *,
    seed: int,
    draws: int = BOOTSTRAP_DRAWS,
) -> dict[str, float]:
    """Give each method's oracle share's standard error: its spread over resamples of the test deals.

    A world's test deals are one draw of its outcomes; on 50-250 deals the share moves by a tenth
    or more from one draw to the next. Every method is judged on the same resamples.
    """
    won = np.asarray(won, dtype=float)
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, len(won), size=(draws, len(won)))

    def mean_squared_error(probability: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(probability, dtype=float), EPSILON, 1 - EPSILON)
        squared = (won - clipped) ** 2
        return np.asarray(squared[resamples].mean(axis=1))

    base = mean_squared_error(np.full(len(won), base_rate))
    gap = base - mean_squared_error(oracle)
    return {
        method: float(np.std((base - mean_squared_error(p)) / gap, ddof=1))
        for method, p in predictions.items()
    }


def median_interval(results: pd.DataFrame, method: str, seed: int = 0) -> tuple[float, float]:
    """Give the 90 % interval of the median oracle share over worlds, from each world's noise.

    Each world's share is drawn from normal(share, s.e.) (:func:`oracle_share_se`), independently
    across worlds; the median is taken per draw.
    """
    part = results[results["method"].eq(method)].dropna(subset=["oracle_share", "oracle_share_se"])
    if part.empty:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.normal(
        part["oracle_share"].to_numpy(float),
        part["oracle_share_se"].to_numpy(float),
        size=(MEDIAN_DRAWS, len(part)),
    )
    low, high = np.quantile(np.median(draws, axis=1), [0.05, 0.95])
    return float(low), float(high)


def _deal_log_loss(won: np.ndarray, probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    return np.asarray(-(won * np.log(p) + (1 - won) * np.log(1 - p)))


def _drift_check(
    world: World,
    test: pd.DataFrame,
    won: np.ndarray,
    predictions: dict[str, np.ndarray],
    oracle: np.ndarray | None = None,
) -> dict[str, object]:
    """Give the drifted segment's observed win rate and mean predictions among the test deals.

    With the truth, also its mean true probability (``drift_oracle``: what a perfect model would
    predict) and the observed rate's standard error under it (``drift_observed_se``): on a few
    deals the observed rate is far from the truth's by chance alone.
    """
    assert world.drifted is not None
    column, value, since = world.drifted
    segment = (test[column].astype("str") == value).to_numpy() & (
        test["created_date"] >= since
    ).to_numpy()
    facts: dict[str, object] = {
        "drifted_segment": f"{column}={value} since {since:%Y-%m-%d}",
        "drift_deals": int(segment.sum()),
    }
    if segment.any():
        facts["drift_observed"] = float(won[segment].mean())
        if oracle is not None and np.isfinite(oracle[segment]).all():
            truth = oracle[segment]
            facts["drift_observed_se"] = float(np.sqrt(np.sum(truth * (1 - truth))) / len(truth))
            facts["drift_oracle"] = float(truth.mean())
        for method, probability in predictions.items():
            facts[f"drift_{method}"] = float(probability[segment].mean())
    return facts


def drift_evidence(
    train: pd.DataFrame, column: str, value: str, since: pd.Timestamp
) -> dict[str, object]:
    """Give what the training deals could show of the drift: the segment's deals created since it.

    Of the segment's training deals (closed before the cut-off), those created since the drift
    began (``drift_train_deals``; quick closers, as every deal created lately is) against those
    created before: the two-proportion z of their win rates (``drift_train_z``, pooled standard
    error). The z is blank for a value that did not exist before (a new competitor), with no deal
    created since, and where every deal of the segment won or every one lost. A model can learn
    the drift only from these deals. The z is raw (other features not held fixed) and is not the
    test winmodel's segment shift runs (the holdout's closes against the model's scores).
    """
    deals = train.drop_duplicates("opportunity_id")
    in_segment = (deals[column].astype("str") == value).to_numpy()
    lately = (deals["created_date"] >= since).to_numpy()
    won = deals["status"].eq("won").to_numpy()
    after, before = won[in_segment & lately], won[in_segment & ~lately]
    facts: dict[str, object] = {"drift_train_deals": len(after), "drift_train_z": np.nan}
    if len(after) and len(before):
        pooled = (after.sum() + before.sum()) / (len(after) + len(before))
        se = np.sqrt(pooled * (1 - pooled) * (1 / len(after) + 1 / len(before)))
        if se > 0:
            facts["drift_train_z"] = float((after.mean() - before.mean()) / se)
    return facts


#: The issue's drift target: the drifted segment's mean prediction within this of its observed rate.
DRIFT_TOLERANCE = 0.05


#: Drift columns that are facts of the segment, not a method's mean prediction.
DRIFT_FACT_COLUMNS = (
    "drift_deals",
    "drift_observed",
    "drift_observed_se",
    "drift_train_deals",
    "drift_train_z",
)


def drift_within(drifted: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Give per method (and the oracle): the drift worlds within tolerance, of those it has a mean for."""
    observed = drifted["drift_observed"]
    methods = [c for c in drifted.columns if c.startswith("drift_") and c not in DRIFT_FACT_COLUMNS]
    counts = {}
    for method in methods:
        known = drifted[method].notna() & observed.notna()
        close = (drifted[method] - observed).abs() <= DRIFT_TOLERANCE
        counts[method.removeprefix("drift_")] = (int((close & known).sum()), int(known.sum()))
    return counts


# --------------------------------------------------------------------------- the report


def _median_table(results: pd.DataFrame) -> str:
    columns = ["roc_auc", "brier", "log_loss", "oracle_share", "ece", "train_seconds"]
    medians = results.groupby("method", sort=False)[columns].median().reindex(list(METHODS))
    return _markdown(medians.reset_index(), digits=4)


def _median_noise(results: pd.DataFrame) -> list[str]:
    """Give the sentence on how far the median oracle share could move with other test deals."""
    if "oracle_share_se" not in results or results["oracle_share_se"].isna().all():
        return []
    intervals = {method: median_interval(results, method) for method in METHODS}
    return [
        "Median oracle share, 90 % interval from the test deals' noise (each world's share drawn "
        "from normal(share, its bootstrap s.e.); worlds independent): "
        + ", ".join(f"{m} [{low:.3f}, {high:.3f}]" for m, (low, high) in intervals.items())
        + ".",
        "",
    ]


def _wins_table(results: pd.DataFrame) -> str:
    table = results.pivot(index="world", columns="method", values="log_loss")
    gaps = results.pivot(index="world", columns="method", values="loss_gap")
    noise = results.pivot(index="world", columns="method", values="loss_gap_se")
    rows = []
    for peer in PEERS:
        better = int((table["winmodel"] < table[peer]).sum())
        worse_beyond_noise = int(((gaps[peer] < 0) & (gaps[peer].abs() > 2 * noise[peer])).sum())
        rows.append(
            {
                "peer": peer,
                "worlds": len(table),
                "winmodel better log loss": better,
                "peer better by > 2 s.e.": worse_beyond_noise,
            }
        )
    return _markdown(pd.DataFrame(rows))


def _markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _gate_sentences(facts: pd.DataFrame) -> list[str]:
    """Give the lines under the worlds table: worlds not trained on, and the gate's refusals.

    Every training's verdict, the Maven export's included (the worlds table has worlds only).
    """
    refused = facts.loc[facts["gate"].eq("refused"), "world"].tolist()
    untrained = facts.loc[facts["gate"].str.startswith(NOT_TRAINED), "world"].tolist()
    lines = []
    if untrained:
        lines += [
            f"winmodel refuses to train on {len(untrained)} world(s), left out of every "
            f"figure above: {', '.join(untrained)} (the reason is in the `gate` column).",
            "",
        ]
    trained = len(facts) - len(untrained)
    lines += [
        (
            f"The gate refuses {len(refused)} of {trained} trainings (each on its older "
            f"deals, as a first model): {', '.join(refused)}. `winmodel train` would make "
            "none of them champion and export nothing (each version stays a challenger). "
            "Their figures are the refused models', not the base rate's."
        )
        if refused
        else f"The gate promotes all {trained} trainings (each on its older deals, as a "
        "first model).",
        "",
    ]
    return lines


def render(
    results: pd.DataFrame,
    facts: pd.DataFrame,
    specs: Sequence[WorldSpec],
    wall_seconds: float,
    command: str,
    load: str = "",
) -> str:
    """Give the markdown report."""
    synthetic = results[results["half"] != "real"]
    lines = [
        "# Quality on unseen worlds (`make bench-quality`)",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` on "
        f"{platform.node() or 'this machine'} ({os.cpu_count()} cores, shared); "
        f"**total wall time {wall_seconds / 60:.1f} min**{load}.",
        "",
        "Each world is drawn by `winmodel.synth.worlds` from its seed (causal structure, size, "
        "export shape, balance, drift, blanks, wide categoricals). Split: the newest 20 % of closed "
        "deals (by close date) are the test deals, scored once each at the snapshot nearest the "
        "middle of their life (flat exports: their one row); everything trains on the deals closed "
        "before. Peers are fitted on winmodel's own feature matrix and sample weights; "
        "`winmodel` is `train_win_model` with the default config (search, calibration, all of it). "
        "Oracle share = (Brier of the base rate - Brier) / (Brier of the base rate - Brier of the "
        "true probability at that snapshot). Odd seeds are the tuning half, even seeds the confirm "
        "half. Training seconds for winmodel include its search and backtest.",
        "",
    ]
    for title, part in (
        ("All worlds", synthetic),
        ("Tuning half", synthetic[synthetic["half"] == "tuning"]),
        ("Confirm half", synthetic[synthetic["half"] == "confirm"]),
    ):
        if part.empty:
            continue
        lines += [
            f"## {title}: medians over {part['world'].nunique()} worlds",
            "",
            _median_table(part),
            "",
            *_median_noise(part),
            "Log loss, winmodel against each peer (same test deals):",
            "",
            _wins_table(part),
            "",
        ]
    lines += ["## The worlds", ""]
    spec_rows = pd.DataFrame(
        [
            {
                "world": spec.name,
                "half": half_of(spec.seed),
                "deals": spec.deals,
                "export": "snapshots" if spec.snapshots else "flat",
                "target win rate": spec.win_rate,
                "signal": spec.signal,
                "label noise": spec.label_noise,
                "drift": spec.drift,
                "blank share": spec.missing_share,
                "wide categorical": spec.high_cardinality,
            }
            for spec in specs
        ]
    )
    worlds = spec_rows.merge(facts, on="world", how="left") if len(spec_rows) else facts
    lines += [_markdown(worlds, digits=3), ""]
    if "gate" in facts:
        lines += _gate_sentences(facts)
    lines += ["## Every world, every method", ""]
    lines += [_markdown(results.drop(columns=["half"]), digits=4), ""]
    drift_columns = [c for c in facts.columns if c.startswith("drift")]
    if drift_columns and "drifted_segment" in facts:
        drifted = facts.dropna(subset=["drifted_segment"])[["world", *drift_columns]]
        lines += [
            "## Drift worlds: the drifted segment among the test deals",
            "",
            "Mean predicted probability against the observed win rate of the segment that "
            "collapsed, rose or appeared in the newest months.",
            "",
            _markdown(drifted, digits=3),
            "",
        ]
        if "drift_observed" in drifted:
            counts = drift_within(drifted)
            lines += [
                f"Within {DRIFT_TOLERANCE} of the observed win rate (worlds): "
                + ", ".join(f"{method} {hit} of {of}" for method, (hit, of) in counts.items())
                + ". `drift_oracle` is the segment's mean true probability at the scored "
                "snapshot (a perfect model's prediction) and `drift_observed_se` the observed "
                "rate's standard error under it: on a few deals the observed rate misses even the "
                "truth by chance. `drift_train_deals` are the segment's training deals created "
                "since the drift began, and `drift_train_z` their win rate against the segment's "
                "earlier deals' (two-proportion z, raw; blank for a new value, or where the "
                "segment's deals all won or all lost): all a model could learn the drift from.",
                "",
            ]
    return "\n".join(lines)


def compare_runs(runs: dict[str, pd.DataFrame]) -> str:
    """Give winmodel's medians and log-loss wins per run and half, on the worlds all runs share."""
    shared = set.intersection(*(set(frame["world"]) for frame in runs.values()))
    rows = []
    for label, frame in runs.items():
        frame = frame[frame["world"].isin(shared)]
        for half in ("tuning", "confirm", "real"):
            part = frame[frame["half"] == half]
            if part.empty:
                continue
            mine = part[part["method"] == "winmodel"].set_index("world")
            hist = part[part["method"] == "hist_gradient_boosting"].set_index("world")
            logistic = part[part["method"] == "logistic_regression"].set_index("world")
            rows.append(
                {
                    "run": label,
                    "half": half,
                    "worlds": len(mine),
                    "median log loss": mine["log_loss"].median(),
                    "median log loss / base": mine["log_loss_vs_base"].median(),
                    "median oracle share": mine["oracle_share"].median(),
                    "median ECE": mine["ece"].median(),
                    "median AUC": mine["roc_auc"].median(),
                    "beats HistGB (log loss)": int(
                        (mine["log_loss"] < hist["log_loss"].reindex(mine.index)).sum()
                    ),
                    "beats logistic (log loss)": int(
                        (mine["log_loss"] < logistic["log_loss"].reindex(mine.index)).sum()
                    ),
                    "median winmodel seconds": mine["train_seconds"].median(),
                }
            )
    lines = [
        "## Before / after (winmodel only, same worlds)",
        "",
        _markdown(pd.DataFrame(rows), digits=4),
        "",
    ]
    (label, current), *earlier = runs.items()
    paired = [
        {"against": other, **change}
        for other, frame in earlier
        for change in paired_changes(current, frame)
    ]
    if paired:
        lines += [
            f"Paired, world by world: winmodel's log loss in {label} minus the earlier run's on "
            f"each world both hold. A world counts as better or worse from {SAME_WITHIN} of log "
            "loss; the mean change has its standard error over the worlds (the worlds' own "
            "spread, not the test deals' noise).",
            "",
            _markdown(pd.DataFrame(paired), digits=4),
            "",
        ]
    return "\n".join(lines)


def paired_changes(current: pd.DataFrame, earlier: pd.DataFrame) -> list[dict[str, object]]:
    """Give winmodel's per-world log-loss change (current - earlier) per half: counts, mean, s.e.

    One row per half the two runs share, and one for all their synthetic worlds together (the
    real export has no half of its own to pool with). ``largest`` names the biggest moves.
    """

    def losses(frame: pd.DataFrame) -> pd.DataFrame:
        mine = frame[frame["method"] == "winmodel"]
        return mine.drop_duplicates("world", keep="last").set_index("world")[["half", "log_loss"]]

    now, before = losses(current), losses(earlier)
    shared = now.index.intersection(before.index)
    change = (now.loc[shared, "log_loss"] - before.loc[shared, "log_loss"]).rename("change")
    halves = now.loc[shared, "half"]
    groups = [(half, halves == half) for half in ("tuning", "confirm", "real")]
    groups.append(("all synthetic", halves.isin(["tuning", "confirm"])))
    rows = []
    for half, chosen in groups:
        part = change[chosen].dropna()
        if part.empty or (half == "all synthetic" and halves[chosen].nunique() < 2):
            continue
        moved = part[part.abs() >= SAME_WITHIN].sort_values(key=np.abs, ascending=False)
        rows.append(
            {
                "half": half,
                "worlds": len(part),
                "better": int((part <= -SAME_WITHIN).sum()),
                "worse": int((part >= SAME_WITHIN).sum()),
                "same": int((part.abs() < SAME_WITHIN).sum()),
                "mean change": float(part.mean()),
                "s.e.": float(part.std(ddof=1) / np.sqrt(len(part))) if len(part) > 1 else np.nan,
                "largest": "; ".join(f"{world} {value:+.4f}" for world, value in moved[:3].items()),
            }
        )
    return rows


# --------------------------------------------------------------------------- main


def config_with(settings: Sequence[str]) -> TrainConfig:
    """Give the default TrainConfig with ``section.key=value`` overrides (values read as YAML)."""
    tree: dict[str, object] = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = yaml.safe_load(value)
    return TrainConfig.model_validate(tree)


def run(
    specs: Sequence[WorldSpec],
    workdir: Path,
    maven: Path | None,
    config: TrainConfig,
    say: Callable[[str], None] = print,
    done: Callable[[pd.DataFrame, pd.DataFrame], object] = lambda records, facts: None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every method's record on every world (and the Maven export) and the worlds' facts.

    Worlds run smallest first; ``done`` gets the results so far after each one (a partial report).
    """
    records: list[dict[str, object]] = []
    facts: list[dict[str, object]] = []
    for spec in sorted(specs, key=lambda spec: (spec.deals, spec.seed)):
        started = time.perf_counter()
        world = generate_world(spec)
        folder = workdir / spec.name
        mapping = write_world(world, folder)
        crm = load_crm_data(folder, mapping)
        try:
            world_records, world_facts = evaluate_world(spec.name, crm, world, config)
        except GateError as error:
            # winmodel refuses to train on this history (too few won or lost deals, say): the
            # world is listed with the reason, no method is measured on it.
            facts.append({"world": spec.name, "gate": f"{NOT_TRAINED}: {error}"})
            say(f"{spec.name}: not trained ({error})")
            continue
        for record in world_records:
            record["half"] = half_of(spec.seed)
        records += world_records
        facts.append(world_facts)
        share = {r["method"]: r["oracle_share"] for r in world_records}
        say(
            f"{spec.name}: {time.perf_counter() - started:.0f}s, oracle share "
            + ", ".join(f"{m} {v:.3f}" for m, v in share.items())
        )
        done(pd.DataFrame(records), pd.DataFrame(facts))
    if maven is not None and maven.exists():
        started = time.perf_counter()
        crm = load_crm_data(maven, MAVEN_MAPPING)
        maven_records, maven_facts = evaluate_world("maven_crm (real)", crm, None, config)
        for record in maven_records:
            record["half"] = "real"
        records += maven_records
        facts.append(maven_facts)
        say(f"maven: {time.perf_counter() - started:.0f}s")
    return pd.DataFrame(records), pd.DataFrame(facts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; give the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "quality.md")
    parser.add_argument("--quick", action="store_true", help="3 small worlds, no Maven")
    parser.add_argument("--workdir", type=Path, default=None, help="where worlds are written")
    parser.add_argument("--max-deals", type=int, default=None, help="cap every world's size")
    parser.add_argument("--no-maven", action="store_true")
    parser.add_argument(
        "--worlds",
        type=int,
        nargs="+",
        default=None,
        metavar="SEED",
        help="only these seeds (seeds outside the 16-world family draw fresh worlds)",
    )
    parser.add_argument("--maven-only", action="store_true", help="only the Maven export")
    parser.add_argument(
        "--half", choices=("all", "tuning", "confirm"), default="all", help="only these worlds"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training setting, e.g. model.refit_on_all_closed=true",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=CSV",
        help="earlier runs' results to set beside this one (before/after of a change)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="CSV",
        help="no run: set this earlier run's results beside the --compare ones (printed)",
    )
    args = parser.parse_args(argv)
    compared = [(item, *item.partition("=")[::2]) for item in args.compare]
    labels = [label for _, label, _ in compared]
    for item, label, path in compared:
        if not label or not path or not Path(path).is_file():
            parser.error(f"--compare {item}: give LABEL=CSV, the CSV of an earlier run")
        if labels.count(label) > 1:
            parser.error(f"--compare: the label {label} is given twice; give each run its own")
    # Read once: the report is rewritten after every world.
    earlier = {label: pd.read_csv(path) for _, label, path in compared}
    if args.results is not None:
        if not args.compare:
            parser.error("--results needs at least one --compare LABEL=CSV to set it beside")
        if not args.results.is_file():
            parser.error(f"--results {args.results}: no such file")
        if args.results.name in earlier:
            parser.error(f"--compare: a label other than {args.results.name}, please")
        print(compare_runs({args.results.name: pd.read_csv(args.results), **earlier}))
        return 0
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("winmodel").setLevel(logging.WARNING)
    specs = [
        spec
        for spec in family(args.quick, args.max_deals)
        if args.half in ("all", half_of(spec.seed))
        and (args.worlds is None or spec.seed in args.worlds)
    ]
    # Seeds outside the family: fresh worlds, drawn the same way (held out from every choice).
    known = {spec.seed for spec in family(args.quick)}
    for seed in args.worlds or []:
        if seed not in known and args.half in ("all", half_of(seed)):
            specs.append(world_spec(seed, {}, args.max_deals))
    maven = None if args.quick or args.no_maven or args.half != "all" or args.worlds else MAVEN
    if args.maven_only:
        specs, maven = [], MAVEN
    config = config_with(args.set)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    command = "python benchmarks/quality.py " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )

    def write(results: pd.DataFrame, facts: pd.DataFrame, finished: bool = False) -> float:
        wall = time.perf_counter() - started
        load = f" (load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} now)"
        if not finished:
            load += f"; PARTIAL: {facts['world'].nunique()} of {len(specs)} worlds so far"
        report = render(results, facts, specs, wall, command.strip(), load)
        if args.compare:
            report += "\n" + compare_runs({"this run": results, **earlier})
        with atomic_file(args.out) as stream:
            stream.write(report.encode())
        write_table_atomic(results, args.out.with_suffix(".csv"))
        return wall

    with tempfile.TemporaryDirectory(prefix="worlds-") as temporary:
        workdir = args.workdir or Path(temporary)
        results, facts = run(
            specs, workdir, maven, config, say=lambda line: print(line, flush=True), done=write
        )
    if results.empty:
        print("no world could be trained on: no report written", file=sys.stderr)
        return 1
    wall = write(results, facts, finished=True)
    print(f"wrote {args.out} ({wall / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
