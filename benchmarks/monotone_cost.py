"""The skill cost of the monotone constraints, measured on one history in one run.

Trains the recipe of a training config twice on the same rows, with ``model.monotone`` true and
false, and prints the holdout figures of both (every pre-close snapshot, each deal weighing one:
the headline of ``make train``) and the oracle's share of skill when the data folder holds the
generator's truth::

    .venv/bin/python benchmarks/monotone_cost.py --config pipelines/train.yaml --data data/demo

No MLflow run and no registration: only :func:`winmodel.modeling.train.train_win_model`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from winmodel.data.dataset import load_crm_data
from winmodel.features.rows import build_training_rows
from winmodel.modeling.train import train_win_model
from winmodel.settings import load_train_config


def measure(config_path: Path, data: Path) -> list[dict[str, object]]:
    """Give one record per setting: holdout ROC AUC, Brier, log loss, ECE and the oracle share."""
    config = load_train_config(config_path)
    crm = load_crm_data(data)
    rows, _ = build_training_rows(crm, config)
    truth_file = data / "truth.parquet"
    oracle = None
    if truth_file.exists():
        truth = pd.read_parquet(truth_file)
        oracle = truth.set_index("opportunity_id")["true_probability"]
    records = []
    for monotone in (False, True):
        settings = config.model_copy(
            update={"model": config.model.model_copy(update={"monotone": monotone})}
        )
        started = time.monotonic()
        result = train_win_model(rows, settings, oracle_probability=oracle)
        metrics = result.holdout_metrics.set_index("method").loc["winmodel"]
        records.append(
            {
                "monotone": monotone,
                "roc_auc": round(float(metrics["roc_auc"]), 4),
                "brier": round(float(metrics["brier"]), 4),
                "log_loss": round(float(metrics["log_loss"]), 4),
                "ece": round(float(metrics["ece"]), 4),
                "oracle_skill_share": round(
                    result.oracle.get("oracle_skill_share", float("nan")), 4
                ),
                "shape": result.shape.model_dump(),
                "trees": result.model.booster.num_trees(),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        print(json.dumps(records[-1]), flush=True)
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("pipelines/train.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    arguments = parser.parse_args()
    measure(arguments.config, arguments.data)
