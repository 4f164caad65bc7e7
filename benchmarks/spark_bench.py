"""Spark against the pandas engine on the same deals (called by benchmarks/run.py)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from winmodel.engines.spark import _load_model, score_rows_on_spark, spark_session
from winmodel.scoring.reasons import load_catalogue
from winmodel.scoring.score import finish_scores, score_deals
from winmodel.settings import ScoreConfig


def _median_seconds(run, repeats: int) -> tuple[float, list[float]]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), seconds


def _tile_rows(rows: pd.DataFrame, deals: int) -> pd.DataFrame:
    """Give ``deals`` rows made of copies of ``rows``, each copy a distinct deal (for load tests).

    Copies get their own opportunity ids and an amount 0.01 % higher per copy,
    so no two rows have the same features: scoring explains each distinct row
    once, and exact copies would make the test measure that shortcut instead.
    """
    copies = -(-deals // max(len(rows), 1))
    tiled = pd.concat([rows] * copies, ignore_index=True).head(deals)
    copy = np.repeat(np.arange(copies), len(rows))[:deals]
    ids = tiled["opportunity_id"].astype("str") + pd.Series(copy, dtype="int64").map("-{:d}".format)
    return tiled.assign(
        opportunity_id=ids.astype("str"), amount=tiled["amount"] * (1 + copy * 1e-4)
    )


def benchmark_spark(
    input_path: str | Path,
    model_path: str | Path,
    repeats: int = 3,
    deals: int | None = None,
    include_pandas: bool = True,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """Give the scoring throughput of the Spark engine (and the pandas engine) on one export.

    The open deals of ``input_path`` are built once (the same for both
    engines) and, with ``deals``, copied up to that many; then each engine
    scores them ``repeats`` times, from point-in-time rows in memory to the
    finished pipeline in memory (no file I/O). Figures are medians. The Spark
    session start is reported apart (``session_start_s``) and one run before
    the timed ones warms the workers up (``spark_first_run_s``).
    """
    from winmodel.data.dataset import load_crm_data
    from winmodel.features.rows import open_deal_rows

    config = ScoreConfig()
    model = _load_model(model_path)
    catalogue = load_catalogue(config.language)
    rows, _ = open_deal_rows(load_crm_data(Path(input_path)))
    if deals is not None:
        rows = _tile_rows(rows, deals)

    def run_pandas() -> pd.DataFrame:
        chunks = [
            score_deals(
                model, rows.iloc[start : start + config.chunk_rows], config, catalogue, "bench"
            )
            for start in range(0, len(rows), config.chunk_rows)
        ]
        return finish_scores(pd.concat(chunks, ignore_index=True))

    started = time.perf_counter()
    spark = spark or spark_session()
    session_start = time.perf_counter() - started

    def run_spark() -> pd.DataFrame:
        return score_rows_on_spark(rows, model, config, "bench", spark=spark)

    first_run, _ = _median_seconds(run_spark, 1)
    spark_median, spark_runs = _median_seconds(run_spark, repeats)
    result: dict[str, Any] = {
        "deals": len(rows),
        "repeats": repeats,
        "master": spark.sparkContext.master,
        "spark_version": spark.version,
        "session_start_s": round(session_start, 2),
        "spark_first_run_s": round(first_run, 2),
        "spark_runs_s": [round(s, 2) for s in spark_runs],
        "spark_median_s": round(spark_median, 2),
        "spark_deals_per_s": round(len(rows) / spark_median, 1),
    }
    if include_pandas:
        pandas_median, pandas_runs = _median_seconds(run_pandas, repeats)
        result.update(
            {
                "pandas_runs_s": [round(s, 2) for s in pandas_runs],
                "pandas_median_s": round(pandas_median, 2),
                "pandas_deals_per_s": round(len(rows) / pandas_median, 1),
                "spark_over_pandas_throughput": round(pandas_median / spark_median, 2),
            }
        )
    return result
