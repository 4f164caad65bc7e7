"""Scoring chunks in worker processes side by side, one per core.

The numba explainer already uses every core, but reasons, decisions and feature
building are Python and pandas, which threads cannot share. Large inputs are
therefore cut into chunks (bounded memory) and scored by worker processes; the
result is the same, row for row, as scoring in one process.

Workers are *spawned*, not forked: LightGBM's and numba's OpenMP runtimes do
not survive a fork once used. Spawning has two traps, both handled here: the
workers must import the winmodel this process runs (loading an MLflow model puts
the copy logged with it on ``sys.path``), and they must not re-run the caller's
script (a script without an ``if __name__ == "__main__"`` guard would score again).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TypedDict

import pandas as pd

from winmodel.modeling.model import WinModel
from winmodel.scoring.reasons import Catalogue
from winmodel.scoring.score import score_deals
from winmodel.settings import ScoreConfig
from winmodel.timing import NO_TIMER, StageTimer, Timer

#: Below this many deals, starting worker processes (about 3 s each) costs more than it saves
#: (make bench: 100,000 deals took 11.1 s in two workers, 8.9 s in one process).
PARALLEL_MIN_ROWS = 250_000
#: Each worker gets at least this many deals.
MIN_ROWS_PER_WORKER = 25_000


def available_cores() -> int:
    """Give how many cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(config: ScoreConfig, rows: int) -> int:
    """Give how many processes should score ``rows`` deals: one for small inputs, else one per core.

    ``workers`` in the config overrides the core count; every worker gets at least
    MIN_ROWS_PER_WORKER deals.
    """
    if rows < PARALLEL_MIN_ROWS:
        return 1
    return max(1, min(config.workers or available_cores(), rows // MIN_ROWS_PER_WORKER))


def chunk_bounds(rows: int, chunk_rows: int, workers: int) -> list[tuple[int, int]]:
    """Give (start, stop) of equal chunks of at most ``chunk_rows``, in order.

    Their number is a multiple of ``workers`` (so the workers finish together) unless
    there are fewer rows than that.
    """
    if rows == 0:
        return []
    count = -(-rows // chunk_rows)
    count = -(-count // workers) * workers
    size = -(-rows // count)
    return [(start, min(start + size, rows)) for start in range(0, rows, size)]


class ChunkScorer:
    """Scores point-in-time rows chunk by chunk, in ``workers`` processes when more than one.

    Use as a context manager: the workers start on entry (so they load while the
    caller prepares its rows) and stop on exit.
    """

    def __init__(
        self,
        model: WinModel,
        config: ScoreConfig,
        catalogue: Catalogue,
        model_version: str,
        workers: int = 1,
    ):
        self.model, self.config, self.catalogue, self.version = (
            model,
            config,
            catalogue,
            model_version,
        )
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ChunkScorer:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.model, self.config, self.version),
            )
            with _spawn_safely():
                for _ in range(self.workers):  # one process starts per pending task
                    self._pool.submit(_ready)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def score(self, rows: pd.DataFrame, timer: Timer = NO_TIMER) -> pd.DataFrame:
        """Give the scored rows in input order (stage times from workers are summed over them)."""
        if rows.empty:
            return score_deals(self.model, rows, self.config, self.catalogue, self.version)
        if self._pool is None:
            return pd.concat(
                [
                    score_deals(
                        self.model,
                        rows.iloc[start:stop],
                        self.config,
                        self.catalogue,
                        self.version,
                        timer=timer,
                    )
                    for start, stop in chunk_bounds(len(rows), self.config.chunk_rows, 1)
                ],
                ignore_index=True,
            )
        bounds = chunk_bounds(len(rows), self.config.chunk_rows, self.workers)
        try:
            with (
                _spawn_safely()
            ):  # processes start on submit (Python 3.11: only there, without max_tasks_per_child)
                futures: list[Future[tuple[pd.DataFrame, dict[str, float]]]] = [
                    self._pool.submit(_score_chunk, rows.iloc[start:stop]) for start, stop in bounds
                ]
            parts: list[pd.DataFrame] = []
            for future in futures:
                part, seconds = future.result()
                parts.append(part)
                timer.add(seconds)
        except BrokenProcessPool as error:
            raise RuntimeError(
                f"a scoring worker process died or failed to start ({error}); its traceback, if any, is above. "
                f"If the machine is short of memory, lower chunk_rows (now {self.config.chunk_rows:,}) or set "
                f"workers: 1 in the score config; nothing was written"
            ) from error
        return pd.concat(parts, ignore_index=True)


_SPAWNING = threading.Lock()
_MISSING = object()


@contextmanager
def _spawn_safely() -> Iterator[None]:
    """While processes start: this winmodel first on ``sys.path``, and the caller's main module hidden.

    Spawn re-imports ``__main__`` in every worker, from its file (``python script.py``) or
    its module name (``python -m package.script``); both are hidden, so unguarded
    top-level code of the caller never runs again. One thread at a time.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with _SPAWNING:
        saved_path = list(sys.path)
        sys.path[:] = [root] + [
            entry for entry in saved_path if os.path.abspath(entry or ".") != root
        ]
        main = sys.modules.get("__main__")
        saved = (
            {name: getattr(main, name, _MISSING) for name in ("__file__", "__spec__")}
            if main
            else {}
        )
        for name, value in saved.items():
            if value is not _MISSING:
                if name == "__file__":
                    delattr(main, name)
                else:
                    setattr(main, name, None)
        try:
            yield
        finally:
            sys.path[:] = saved_path
            for name, value in saved.items():
                if value is not _MISSING:
                    setattr(main, name, value)


class _WorkerState(TypedDict, total=False):
    model: WinModel
    config: ScoreConfig
    version: str
    catalogue: Catalogue


#: What a worker process scores with, set by _start_worker when the process starts.
_WORKER: _WorkerState = {}


def _start_worker(model: WinModel, config: ScoreConfig, model_version: str) -> None:
    import numba

    from winmodel.scoring.reasons import load_catalogue

    numba.set_num_threads(1)  # one process per core already
    _WORKER.update(
        {
            "model": model,
            "config": config,
            "version": model_version,
            "catalogue": load_catalogue(config.language),
        }
    )
    model.explainer  # noqa: B018 - build the explainer's tables now, not inside the first chunk


def _ready() -> None:
    return None


def _score_chunk(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    timer = StageTimer()
    scored = score_deals(
        _WORKER["model"],
        rows,
        _WORKER["config"],
        _WORKER["catalogue"],
        _WORKER["version"],
        threads=1,
        timer=timer,
    )
    return scored, timer.seconds
