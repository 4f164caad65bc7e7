"""Scoring on Apache Spark: the pandas engine's :func:`~winmodel.scoring.score.score_deals` run per partition.

Nothing is re-implemented for Spark. :func:`score_spark_frame` hands every
Arrow batch of point-in-time rows to ``score_deals`` inside ``mapInPandas``,
so probabilities, reasons, next best milestone, recommendation and expected
value are exactly the pandas engine's. The fitted
:class:`~winmodel.modeling.model.WinModel` is pickled once on the driver, broadcast,
and unpickled once per Python worker. Percentiles need the whole pipeline: the
command line collects the scored rows and calls
:func:`~winmodel.scoring.score.finish_scores` (so ``--previous`` works too), and
:func:`add_percentiles` gives the same figures without collecting the rows.

The session is ``local[2]`` unless ``$SPARK_MASTER`` names a cluster (or a
session is already active, e.g. under ``spark-submit`` or in a notebook).
Executors need winmodel and its dependencies installed in the Python that
``PYSPARK_PYTHON`` names; in local mode that is always this interpreter.

:func:`probability_udf` is the other route: MLflow's ``spark_udf`` on the
logged pyfunc model, for probabilities only (no reasons), on the columns of
:func:`~winmodel.mlops.pyfunc.signature_frame`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from winmodel.errors import InputError, Problem
from winmodel.modeling.model import WinModel
from winmodel.scoring.reasons import Catalogue, load_catalogue
from winmodel.scoring.score import OUTPUT_COLUMNS, finish_scores, score_deals
from winmodel.settings import ScoreConfig
from winmodel.timing import NO_TIMER, Timer

if TYPE_CHECKING:
    from pyspark import Broadcast
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

log = logging.getLogger(__name__)

#: Names a cluster master (spark://host:7077, yarn, k8s://...); unset means local[2].
MASTER_ENV = "SPARK_MASTER"

LOCAL_MASTER = "local[2]"

#: Carries the input order through Spark so the collected rows come back in it.
ROW_ORDER = "_winmodel_row"

PERCENTILE = "percentile"

#: Rows scored on the driver to learn the output's columns and types.
PROTOTYPE_ROWS = 8

# PySpark 4.x announces on import that pandas >= 3 is "not fully supported yet"; the
# equality tests against the pandas engine are what tell whether winmodel's use of it works.
PANDAS_NOTICE = "PySpark does not yet fully support pandas"

warnings.filterwarnings("ignore", message=PANDAS_NOTICE, category=FutureWarning)


def require_spark() -> None:
    """Raise InputError saying what to install when pyspark or Java is missing."""
    problems = []
    try:
        import pyspark  # noqa: F401
    except ImportError:
        problems.append(
            Problem(
                file="--engine spark",
                column=None,
                problem="pyspark is not installed",
                fix="install the extra: pip install -e '.[spark]' (make setup does)",
            )
        )
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        problems.append(
            Problem(
                file="--engine spark",
                column=None,
                problem="Java is not installed (Spark runs on the JVM)",
                fix="install Java 17, e.g. apt-get install default-jre-headless, or set JAVA_HOME",
            )
        )
    if problems:
        raise InputError(problems)


def spark_session(master: str | None = None, app_name: str = "winmodel") -> SparkSession:
    """Give the active SparkSession, else a new one on ``master``, ``$SPARK_MASTER`` or local[2].

    In local mode the Python workers are this interpreter (``PYSPARK_PYTHON``,
    so they import the same pandas, pyarrow and winmodel), the driver binds to
    127.0.0.1, and the web UI is off. On a cluster those are left to the
    cluster's configuration (``spark-defaults.conf``, ``PYSPARK_PYTHON``).
    """
    require_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    master = master or os.environ.get(MASTER_ENV) or LOCAL_MASTER
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.debug.maxToStringFields", "200")
        .config("spark.executorEnv.OMP_WAIT_POLICY", "PASSIVE")
        .config("spark.executorEnv.MLFLOW_DISABLE_TELEMETRY", "true")
    )
    if master.startswith("local"):
        # Local workers must import exactly this environment; the system python lacks pandas.
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        builder = builder.config("spark.ui.enabled", "false").config(
            "spark.sql.shuffle.partitions", "4"
        )
        if not os.environ.get("SPARK_CONF_DIR"):  # else the user's own log4j2.properties rules
            builder = builder.config(
                "spark.driver.extraJavaOptions",
                f"-Dlog4j2.configurationFile=file:{_quiet_log_config()}",
            )
    started = time.monotonic()
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    logging.getLogger("py4j").setLevel(
        logging.WARNING
    )  # "Closing down clientserver connection" at exit
    log.info(
        "Spark %s session on %s started in %.1fs",
        session.version,
        master,
        time.monotonic() - started,
    )
    return session


def _quiet_log_config() -> Path:
    """Give a log4j2 file for a local driver: warnings only, without the known harmless ones."""
    path = Path(tempfile.gettempdir()) / "winmodel-spark-log4j2.properties"
    if not path.exists() or path.read_text(encoding="utf-8") != _LOG4J2:
        path.write_text(_LOG4J2, encoding="utf-8")
    return path


# Spark's default profile for shells prints three lines at start-up; this one says only what matters.
# NativeCodeLoader: no native Hadoop library (irrelevant here). TaskSetManager: rows sent from the
# driver travel inside their tasks on purpose, which it calls a "task of very large size".
_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = error
"""


def _spark_type(dtype: Any) -> DataType:
    from pyspark.sql import types

    if pd.api.types.is_bool_dtype(dtype):
        return types.BooleanType()
    if pd.api.types.is_integer_dtype(dtype):
        return types.LongType()
    if pd.api.types.is_float_dtype(dtype):
        return types.DoubleType()
    if pd.api.types.is_datetime64_dtype(dtype):
        # Dates in winmodel are naive calendar days; NTZ keeps them free of any time zone.
        return types.TimestampNTZType()
    return types.StringType()


def spark_schema(frame: pd.DataFrame) -> StructType:
    """Give the Spark schema of a pandas frame (strings, booleans, longs, doubles, naive timestamps)."""
    from pyspark.sql import types

    return types.StructType(
        [
            types.StructField(str(name), _spark_type(dtype), nullable=True)
            for name, dtype in frame.dtypes.items()
        ]
    )


def rows_to_spark(spark: SparkSession, rows: pd.DataFrame, keep_order: bool = True) -> DataFrame:
    """Give point-in-time rows as a Spark DataFrame (with their position in ``_winmodel_row``)."""
    if keep_order:
        rows = rows.assign(**{ROW_ORDER: np.arange(len(rows), dtype="int64")})
    plain = rows.copy()
    for name, dtype in plain.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            plain[name] = plain[name].astype("object").where(plain[name].notna(), None)
    return spark.createDataFrame(plain, schema=spark_schema(plain))


def _restore_rows(
    batch: pd.DataFrame, booleans: tuple[str, ...], timestamps: tuple[str, ...]
) -> pd.DataFrame:
    """Give an Arrow batch with the contract's pandas types back (nullable booleans, datetime64[ns])."""
    changes: dict[str, pd.Series] = {
        name: batch[name].astype("boolean") for name in booleans if name in batch
    }
    changes.update(
        {name: batch[name].astype("datetime64[ns]") for name in timestamps if name in batch}
    )
    return batch.assign(**changes) if changes else batch


def _schema_kinds(schema: StructType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from pyspark.sql import types

    booleans = tuple(f.name for f in schema.fields if isinstance(f.dataType, types.BooleanType))
    timestamps = tuple(
        f.name
        for f in schema.fields
        if isinstance(f.dataType, types.TimestampType | types.TimestampNTZType | types.DateType)
    )
    return booleans, timestamps


def like(frame: pd.DataFrame, prototype: pd.DataFrame) -> pd.DataFrame:
    """Give ``frame`` with the dtypes of ``prototype`` wherever they differ (after a trip through Arrow)."""
    changes: dict[str, pd.Series] = {}
    # The frames' column names are texts.
    for name, dtype in cast(Iterable[tuple[str, Any]], prototype.dtypes.items()):
        if name in frame and frame[name].dtype != dtype:
            values = frame[name]
            if pd.api.types.is_object_dtype(dtype):
                values = values.astype(object).where(values.notna(), None)
                changes[name] = values
            else:
                changes[name] = values.astype(dtype)
    return frame.assign(**changes) if changes else frame


#: Models unpickled in this Python process, by the digest of their bytes (one per worker).
_WORKER_MODELS: dict[str, WinModel] = {}

#: How many times this process unpickled a model (the tests check it stays at one per worker).
WORKER_LOADS: dict[str, int] = {}


def _worker_model(digest: str, broadcast: Broadcast[bytes]) -> WinModel:
    model = _WORKER_MODELS.get(digest)
    if model is None:
        model = pickle.loads(broadcast.value)
        _WORKER_MODELS[digest] = model
        WORKER_LOADS[digest] = WORKER_LOADS.get(digest, 0) + 1
    return model


def _load_model(model: WinModel | str | Path) -> WinModel:
    if isinstance(model, WinModel):
        return model
    from winmodel.mlops.registry import load_win_model

    return load_win_model(str(model))


def _score_batches(
    batches: Iterator[pd.DataFrame],
    *,
    digest: str,
    broadcast: Broadcast[bytes],
    config: ScoreConfig,
    catalogue: Catalogue,
    model_version: str,
    threads: int,
    booleans: tuple[str, ...],
    timestamps: tuple[str, ...],
    columns: tuple[str, ...],
) -> Iterator[pd.DataFrame]:
    """Score each Arrow batch of a partition with the pandas engine (runs in the Python worker)."""
    model = _worker_model(digest, broadcast)
    for batch in batches:
        rows = _restore_rows(batch, booleans, timestamps)
        order = rows.pop(ROW_ORDER) if ROW_ORDER in rows else None
        scored = score_deals(model, rows, config, catalogue, model_version, threads)
        if order is not None:
            scored[ROW_ORDER] = order.to_numpy()
        yield scored.reindex(columns=list(columns))


def score_spark_frame(
    spark_df: DataFrame,
    model_uri_or_path: WinModel | str | Path,
    config: ScoreConfig,
    model_version: str,
    *,
    percentiles: bool = True,
    catalogue: Catalogue | None = None,
    prototype: pd.DataFrame | None = None,
) -> DataFrame:
    """Give the scored deals of a Spark DataFrame of point-in-time rows, as a Spark DataFrame.

    ``spark_df`` holds one point-in-time row per open deal, with the columns
    :func:`winmodel.jobs.score.open_deal_rows` builds (see :func:`rows_to_spark`).
    Every batch is scored by :func:`winmodel.scoring.score.score_deals`; the output
    schema is declared from the pandas output of the first rows. The model may
    be an MLflow model URI, a local model folder, or an already loaded
    :class:`~winmodel.modeling.model.WinModel`. With ``percentiles`` the percentile
    within the whole frame is added (:func:`add_percentiles`, equal to
    :func:`~winmodel.scoring.score.finish_scores`) and the columns are in the scored
    file's order; a ``_winmodel_row`` column of the input is passed through.
    ``prototype`` is the pandas output of a few of the rows when the caller
    has it (saves a Spark job).
    """
    spark = spark_df.sparkSession
    model = _load_model(model_uri_or_path)
    catalogue = catalogue or load_catalogue(config.language)
    threads = int(cast(str, spark.conf.get("spark.task.cpus", "1")))  # a text: a default is given
    booleans, timestamps = _schema_kinds(spark_df.schema)

    if prototype is None:
        # The output schema is whatever score_deals gives for these columns, found on a few rows.
        head = _restore_rows(spark_df.limit(PROTOTYPE_ROWS).toPandas(), booleans, timestamps)
        prototype = score_deals(
            model,
            head.drop(columns=ROW_ORDER, errors="ignore"),
            config,
            catalogue,
            model_version,
            threads,
        )
    if ROW_ORDER in spark_df.columns:
        prototype = prototype.assign(**{ROW_ORDER: np.zeros(len(prototype), dtype="int64")})
    schema = spark_schema(prototype)

    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(payload).hexdigest()
    broadcast = spark.sparkContext.broadcast(payload)
    score = functools.partial(
        _score_batches,
        digest=digest,
        broadcast=broadcast,
        config=config,
        catalogue=catalogue,
        model_version=model_version,
        threads=threads,
        booleans=booleans,
        timestamps=timestamps,
        columns=tuple(prototype.columns),
    )
    scored = spark_df.mapInPandas(score, schema=schema)
    return add_percentiles(scored) if percentiles else scored


def _percentile_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Give the percentile of each distinct probability from how many deals have it (pandas' average rank)."""
    counts = counts.dropna(subset=["win_probability"])
    counts = counts[np.isfinite(counts["win_probability"])].sort_values("win_probability")
    total = counts["count"].sum()
    below_and_tied = counts["count"].cumsum()
    average_rank = below_and_tied - (counts["count"] - 1) / 2
    # The very expression of finish_scores (rank / count, then x100 rounded by numpy).
    # np.round gives a Series for a Series (numpy's stubs say an array).
    percentile = cast(pd.Series, np.round(100 * (average_rank.astype("float64") / total), 1))
    return pd.DataFrame(
        {
            "win_probability": counts["win_probability"].to_numpy(dtype="float64"),
            PERCENTILE: percentile.to_numpy(dtype="float64"),
        }
    )


def add_percentiles(scored: DataFrame) -> DataFrame:
    """Give the scored deals with their percentile within the whole frame, as finish_scores computes it.

    Only the distinct probabilities and their counts reach the driver (a few
    thousand rows at most: probabilities are rounded to six decimals), so the
    deals themselves are never collected. ``scored`` is persisted (memory, then
    disk) so that the deals are scored once, not once for the counts and once
    for the result; ``spark.catalog.clearCache()`` frees it.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions

    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    counts = scored.groupBy("win_probability").count().toPandas()
    table = _percentile_table(counts)
    lookup = scored.sparkSession.createDataFrame(table, schema=spark_schema(table))
    joined = scored.drop(PERCENTILE).join(
        functions.broadcast(lookup), on="win_probability", how="left"
    )
    ordered = [c for c in OUTPUT_COLUMNS if c in joined.columns]
    return joined.select(*ordered, *[c for c in joined.columns if c not in ordered])


def score_rows_on_spark(
    rows: pd.DataFrame,
    model: WinModel | str | Path,
    config: ScoreConfig,
    model_version: str,
    previous: pd.DataFrame | None = None,
    spark: SparkSession | None = None,
    timer: Timer = NO_TIMER,
) -> pd.DataFrame:
    """Give the scored pipeline of pandas point-in-time rows, scored on Spark: the pandas engine's frame.

    The rows go to Spark, are scored there by :func:`score_spark_frame`, and
    come back in their order with the pandas engine's dtypes; percentiles and
    the comparison with ``previous`` are then :func:`~winmodel.scoring.score.finish_scores`.
    """
    spark = spark or spark_session()
    model = _load_model(model)
    catalogue = load_catalogue(config.language)
    # A few rows scored here give the output schema and the pandas dtypes to undo Arrow's conversions.
    prototype = score_deals(model, rows.head(PROTOTYPE_ROWS), config, catalogue, model_version)
    with timer.stage("spark"):
        spark_rows = rows_to_spark(spark, rows)
        scored = score_spark_frame(
            spark_rows,
            model,
            config,
            model_version,
            percentiles=False,
            catalogue=catalogue,
            prototype=prototype,
        ).toPandas()
    scored = (
        scored.sort_values(ROW_ORDER, kind="stable").drop(columns=ROW_ORDER).reset_index(drop=True)
    )
    return finish_scores(like(scored, prototype), previous)


def probability_udf(spark: SparkSession, model_uri: str) -> Callable[..., Column]:
    """Give MLflow's ``spark_udf`` of a winmodel pyfunc model: calibrated P(won) as a double.

    Call it on the columns of :func:`~winmodel.mlops.pyfunc.signature_frame` (see
    :func:`spark_probabilities`). It gives the probability only; reasons,
    milestones and recommendations come from :func:`score_spark_frame`.
    """
    import mlflow.pyfunc

    udf: Callable[..., Column] = mlflow.pyfunc.spark_udf(
        spark, model_uri, result_type="double", env_manager="local"
    )
    return udf


def spark_probabilities(
    spark: SparkSession, model_uri: str, rows: pd.DataFrame, model: WinModel | None = None
) -> pd.DataFrame:
    """Give ``opportunity_id`` and ``win_probability`` of rows scored by MLflow's spark_udf."""
    from pyspark.sql import functions

    from winmodel.mlops.pyfunc import signature_frame

    model = model or _load_model(model_uri)
    inputs = signature_frame(model, rows)
    frame = inputs.assign(
        opportunity_id=rows["opportunity_id"].astype("str").to_numpy(),
        **{ROW_ORDER: np.arange(len(rows), dtype="int64")},
    )
    spark_frame = rows_to_spark(spark, frame, keep_order=False)
    udf = probability_udf(spark, model_uri)
    scored = spark_frame.select(
        ROW_ORDER,
        "opportunity_id",
        udf(*[functions.col(name) for name in inputs.columns]).alias("win_probability"),
    )
    result = scored.toPandas().sort_values(ROW_ORDER, kind="stable")
    return result.drop(columns=ROW_ORDER).reset_index(drop=True)
