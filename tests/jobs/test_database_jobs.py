"""The database example end to end: `make demo-db`, then train and score with the shipped DuckDB configs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from winmodel.settings import load_score_config, load_train_config

ROOT = Path(__file__).parents[2]


def test_the_shipped_duckdb_configs_read_and_write_the_same_database():
    train = load_train_config(ROOT / "pipelines" / "train-duckdb.yaml")
    score = load_score_config(ROOT / "pipelines" / "score-duckdb.yaml")
    assert train.data.source == score.data.source == "duckdb:///data/demo.duckdb"
    assert score.output == "duckdb:///data/demo.duckdb#scores"
    assert train.tracking.registered_model == score.tracking.registered_model == "winmodel-duckdb"
    assert train.tracking.export_dir == Path("models/winmodel-duckdb")


def _winmodel(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winmodel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
        },
    )


@pytest.mark.slow
def test_demo_db_then_train_and_score_from_duckdb(tmp_path, make_train_config):
    """What `make demo-db` runs, a (fast) training from the database, then the shipped scoring config."""
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines")
    made = _winmodel(
        ["generate", "--deals", "2500", "--out", "duckdb:///data/demo.duckdb"], tmp_path
    )
    assert made.returncode == 0, made.stderr
    config = make_train_config(
        tmp_path,
        tmp_path / "unused",
        data__source="duckdb:///data/demo.duckdb",
        tracking__tracking_uri=None,
        tracking__registered_model="winmodel-duckdb",
        tracking__export_dir=None,
    )
    trained = _winmodel(["train", "--config", str(config)], tmp_path)
    assert trained.returncode == 0 and "Traceback" not in trained.stderr, trained.stderr
    assert (tmp_path / "models" / "winmodel-duckdb" / "MLmodel").exists()

    scored = _winmodel(["score", "--config", "pipelines/score-duckdb.yaml"], tmp_path)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr
    assert "to duckdb:///data/demo.duckdb#scores" in scored.stderr
    with duckdb.connect(str(tmp_path / "data" / "demo.duckdb"), read_only=True) as connection:
        open_deals = connection.execute(
            "SELECT count(*) FROM opportunities WHERE status = 'open'"
        ).fetchone()
        rows = connection.execute(
            "SELECT count(*), min(win_probability), max(win_probability) FROM scores"
        ).fetchone()
        tables = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
    assert open_deals is not None and rows is not None
    assert rows[0] == open_deals[0] and 0 < rows[1] <= rows[2] < 1
    assert tables == {
        "opportunities",
        "snapshots",
        "truth",
        "truth_timing",
        "scores",
    }  # no staging table left
