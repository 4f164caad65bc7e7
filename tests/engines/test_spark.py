"""Scoring on Spark gives the pandas engine's file: same rows, probabilities, reasons and percentiles.

One local[2] SparkSession serves the whole module. The Spark tests are skipped
only where Java is absent; pyspark itself is a dev dependency (``make setup``
installs the ``spark`` extra), so a missing pyspark fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from winmodel import cli
from winmodel.errors import InputError
from winmodel.features.rows import open_deal_rows
from winmodel.jobs.score import run_score
from winmodel.settings import ScoreConfig

QUIET = Console(stderr=True, quiet=True)
needs_java = pytest.mark.skipif(
    shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
    reason="Java is not installed: Spark runs on the JVM (apt-get install default-jre-headless)",
)


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip(
            "Java is not installed: Spark runs on the JVM (apt-get install default-jre-headless)"
        )
    from winmodel.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def open_rows(trained_project):
    from winmodel.data.dataset import load_crm_data

    return open_deal_rows(load_crm_data(trained_project.data))[0]


@pytest.fixture(scope="module")
def previous_file(open_rows, tmp_path_factory):
    """Give an earlier scored file: scores that make every trend occur, and one deal missing (new)."""
    rng = np.random.default_rng(17)
    earlier = pd.DataFrame(
        {
            "opportunity_id": open_rows["opportunity_id"].astype(str),
            "score": rng.integers(1, 100, size=len(open_rows)),
        }
    ).iloc[:-1]
    path = tmp_path_factory.mktemp("previous") / "previous.csv"
    earlier.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def both_engines(spark, trained_project, previous_file, tmp_path_factory):
    """Give the pandas engine's and the Spark engine's output files (the latter through the CLI)."""
    folder = tmp_path_factory.mktemp("engines")
    config = folder / "score.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "tracking": {
                    "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                    "experiment": "spark-test",
                }
            }
        ),
        encoding="utf-8",
    )
    with_pandas = folder / "pandas.csv"
    run_score(
        config_path=config,
        input_path=trained_project.data,
        output=with_pandas,
        model_uri=str(trained_project.export_dir),
        previous=previous_file,
        console=QUIET,
        log_to_mlflow=False,
    )
    with_spark = folder / "spark.csv"
    argv = [
        "winmodel",
        "score",
        "--engine",
        "spark",
        "--config",
        str(config),
        "--input",
        str(trained_project.data),
        "--output",
        str(with_spark),
        "--model",
        str(trained_project.export_dir),
        "--previous",
        str(previous_file),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as done:
            cli.main()
    assert done.value.code == 0
    return with_pandas, with_spark


@pytest.mark.spark
@needs_java
def test_spark_engine_writes_the_pandas_engines_file(both_engines):
    with_pandas, with_spark = both_engines
    expected, got = pd.read_csv(with_pandas), pd.read_csv(with_spark)
    assert len(got) > 500
    assert list(got.columns) == list(expected.columns)
    # Row for row: the same deals in the same order.
    assert got["opportunity_id"].tolist() == expected["opportunity_id"].tolist()
    np.testing.assert_allclose(
        got["win_probability"], expected["win_probability"], rtol=0, atol=1e-9
    )
    for column in (
        "reasons_for",
        "reasons_against",
        "next_best_milestone",
        "recommendation",
        "recommendation_reason",
        "band",
        "score",
        "percentile",
        "score_change",
        "trend",
    ):
        pd.testing.assert_series_equal(got[column], expected[column], check_names=True)
    assert set(got["trend"]) == {"up", "down", "flat", "new"}
    # Nothing else differs either: the two files are the same bytes.
    assert with_spark.read_bytes() == with_pandas.read_bytes()


@pytest.mark.spark
@needs_java
def test_score_spark_frame_gives_full_output_and_percentiles_without_collecting(
    spark, trained_project, open_rows, both_engines
):
    from winmodel.engines.spark import ROW_ORDER, rows_to_spark, score_spark_frame

    expected = pd.read_csv(both_engines[0]).drop(columns=["score_change", "trend"])
    # Shuffled over more partitions than cores: each worker scores several partitions with one model.
    spark_rows = rows_to_spark(spark, open_rows).repartition(5)
    scored = score_spark_frame(
        spark_rows, str(trained_project.export_dir), ScoreConfig(), model_version="1"
    )
    assert scored.columns[: len(expected.columns)] == list(expected.columns)
    got = scored.toPandas().sort_values(ROW_ORDER).drop(columns=ROW_ORDER).reset_index(drop=True)
    assert got["opportunity_id"].tolist() == expected["opportunity_id"].tolist()
    np.testing.assert_allclose(
        got["win_probability"], expected["win_probability"], rtol=0, atol=1e-9
    )
    np.testing.assert_array_equal(got["percentile"], expected["percentile"])
    for column in ("reasons_for", "reasons_against", "next_best_milestone", "recommendation"):
        assert got[column].fillna("").tolist() == expected[column].fillna("").tolist(), column


@pytest.mark.spark
@needs_java
def test_model_is_unpickled_once_per_python_worker(spark, both_engines):
    # After the scoring runs above (several partitions each, worker processes reused), every
    # worker reports how often it unpickled each broadcast model. The probe is a mapInPandas too:
    # Spark keeps separate worker pools for plain RDD functions and for Arrow functions.
    def loads(batches):
        import json
        import os

        from winmodel.engines.spark import WORKER_LOADS

        for batch in batches:
            yield pd.DataFrame(
                {"pid": [os.getpid()] * len(batch), "loads": json.dumps(WORKER_LOADS)}
            )

    reports = spark.range(8).repartition(8).mapInPandas(loads, "pid long, loads string").toPandas()
    counts = [count for text in reports["loads"] for count in json.loads(text).values()]
    assert counts, reports
    assert set(counts) == {1}, reports


@pytest.mark.spark
@needs_java
def test_mlflow_spark_udf_gives_the_same_probabilities(
    spark, trained_project, trained_model, open_rows, both_engines
):
    from winmodel.engines.spark import spark_probabilities

    got = spark_probabilities(spark, str(trained_project.export_dir), open_rows, trained_model)
    assert got["opportunity_id"].tolist() == open_rows["opportunity_id"].astype(str).tolist()
    np.testing.assert_allclose(
        got["win_probability"], trained_model.predict_proba(open_rows), rtol=0, atol=1e-9
    )
    scored = pd.read_csv(both_engines[0])
    np.testing.assert_allclose(got["win_probability"], scored["win_probability"], rtol=0, atol=5e-7)


def test_percentiles_from_counts_equal_pandas_ranks():
    from winmodel.engines.spark import _percentile_table
    from winmodel.scoring.score import finish_scores

    rng = np.random.default_rng(5)
    # Few distinct values, many ties (as isotonic calibration gives), plus one NaN.
    probability = np.append(rng.choice([0.05, 0.125, 0.3, 0.3333, 0.61, 0.9], size=997), np.nan)
    scored = pd.DataFrame(
        {
            "opportunity_id": [f"D{i}" for i in range(len(probability))],
            "win_probability": probability,
            "score": 1,
        }
    )
    expected = finish_scores(scored)
    counts = scored.groupby("win_probability", dropna=False).size().rename("count").reset_index()
    table = _percentile_table(counts)
    got = scored.merge(table, on="win_probability", how="left")["percentile"]
    np.testing.assert_array_equal(got.to_numpy(), expected["percentile"].to_numpy())


def test_unknown_engine_and_missing_java_are_reported(monkeypatch, tmp_path):
    with pytest.raises(InputError, match="unknown engine 'dask'"):
        run_score(
            config_path=None,
            input_path=tmp_path,
            output=tmp_path / "out.csv",
            engine="dask",
            console=QUIET,
            log_to_mlflow=False,
        )
    from winmodel.engines import spark

    monkeypatch.setattr(spark.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(InputError, match="Java is not installed") as raised:
        spark.require_spark()
    assert "default-jre-headless" in str(raised.value)
