"""Scoring in worker processes: same rows as one process, safe to start from any script."""

from __future__ import annotations

import itertools
import pickle
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from winmodel.data.dataset import load_crm_data
from winmodel.engines.parallel import (
    MIN_ROWS_PER_WORKER,
    PARALLEL_MIN_ROWS,
    ChunkScorer,
    chunk_bounds,
    worker_count,
)
from winmodel.errors import InputError, Problem
from winmodel.features.rows import open_deal_rows
from winmodel.scoring.reasons import load_catalogue
from winmodel.settings import ScoreConfig


@pytest.mark.parametrize(
    ("rows", "chunk_rows", "workers"),
    [(1, 100, 2), (999, 100, 2), (1_000, 100, 2), (1_001, 100, 3), (250_000, 100_000, 2)],
)
def test_chunks_cover_every_row_once_in_order_and_balance_the_workers(rows, chunk_rows, workers):
    bounds = chunk_bounds(rows, chunk_rows, workers)
    assert bounds[0][0] == 0 and bounds[-1][1] == rows
    assert all(stop == next_start for (_, stop), (next_start, _) in itertools.pairwise(bounds))
    assert all(0 < stop - start <= chunk_rows for start, stop in bounds)
    if rows >= chunk_rows * workers:
        assert len(bounds) % workers == 0


def test_small_inputs_stay_in_one_process_and_the_config_caps_workers():
    config = ScoreConfig()
    assert worker_count(config, PARALLEL_MIN_ROWS - 1) == 1
    assert worker_count(config.model_copy(update={"workers": 1}), 1_000_000) == 1
    assert worker_count(config.model_copy(update={"workers": 2}), PARALLEL_MIN_ROWS) == 2
    many = config.model_copy(update={"workers": 10_000})
    assert worker_count(many, PARALLEL_MIN_ROWS) == PARALLEL_MIN_ROWS // MIN_ROWS_PER_WORKER
    assert 1 <= worker_count(config, 1_000_000) <= 100


def test_input_errors_cross_process_boundaries_with_their_report():
    error = InputError(
        Problem(file="a.csv", column="amount", problem="negative amount", fix="fix it", rows=3)
    )
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, InputError)
    assert str(copy) == str(error) and copy.report == error.report


def test_worker_processes_give_the_same_rows_as_one_process(trained_model, trained_project):
    # Four chunks of 100 deals: every worker scores two, in order.
    rows = open_deal_rows(load_crm_data(trained_project.data))[0].head(400)
    config = ScoreConfig(chunk_rows=100)
    catalogue = load_catalogue()
    with ChunkScorer(trained_model, config, catalogue, "7", workers=1) as scorer:
        alone = scorer.score(rows)
    with ChunkScorer(trained_model, config, catalogue, "7", workers=2) as scorer:
        side_by_side = scorer.score(rows)
    assert len(chunk_bounds(len(rows), config.chunk_rows, 2)) >= 4
    pd.testing.assert_frame_equal(alone, side_by_side)


@pytest.mark.parametrize("run_as", ["path", "module"])
def test_a_script_without_a_main_guard_scores_once(trained_project, tmp_path, run_as):
    """Spawned workers must not run the caller's script again (it would score, and spawn, again)."""
    package = tmp_path / "jobs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    script = package / "score_it.py"
    script.write_text(
        textwrap.dedent(f"""
        from winmodel.data.dataset import load_crm_data
        from winmodel.features.rows import open_deal_rows
        from winmodel.engines.parallel import ChunkScorer
        from winmodel.settings import ScoreConfig
        from winmodel.scoring.reasons import load_catalogue
        from winmodel.mlops.registry import load_win_model

        model = load_win_model({str(trained_project.export_dir)!r})
        rows = open_deal_rows(load_crm_data({str(trained_project.data)!r}))[0].head(300)
        with ChunkScorer(model, ScoreConfig(chunk_rows=100), load_catalogue(), "1", workers=2) as scorer:
            print("scored", len(scorer.score(rows)), "of", len(rows))
    """)
    )
    command = (
        [sys.executable, str(script)]
        if run_as == "path"
        else [sys.executable, "-m", "jobs.score_it"]
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("scored")]
    assert len(lines) == 1
    _, scored, _, total = lines[0].split()
    assert scored == total
